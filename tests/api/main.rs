//! Black-box tests: each starts the real `Application` on port 0 over a fresh SQLite file and
//! talks HTTP to it. One binary, so the crate and harness compile once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod cli;
mod concurrency;
mod generated;

mod auth;
mod pagination;
mod protocol;
mod stations;
mod validation;
