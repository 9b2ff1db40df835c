//! Invariants: types that can only hold valid values. Nothing here knows about HTTP or SQL.

pub mod aggregate;
pub mod bulk;
pub mod listing;
pub mod station;
pub mod token;
pub mod user;
