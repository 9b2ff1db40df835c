//! station-api: the Django REST framework "Station" API from the IoT textbook, in Rust.
//!
//! Reading order: [`startup`] wires everything; [`api`] speaks HTTP and owns the routes, each
//! registered once with its documentation; [`auth`] decides who may call; [`pagination`] cuts any
//! list into pages; [`domain`] holds the rules a reading must satisfy; [`db`] is the only module
//! that speaks SQL; [`error`] is where failures become responses; [`hex`] spells bytes as text;
//! [`transfer`] reads and writes readings in bulk (export, import); [`changes`] hands committed
//! changes to event streams; [`openapi`] adds what every
//! documented operation shares; [`metrics`] counts what operators scrape; [`cli`] and
//! [`accounts`] are the command line; [`allocator`] tunes the system allocator at start-up.

pub mod accounts;
pub mod allocator;
pub mod api;
pub mod auth;
pub mod changes;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod hex;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod startup;
pub mod telemetry;
pub mod transfer;
