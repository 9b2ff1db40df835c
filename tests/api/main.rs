//! Black-box tests: each starts the real `Application` on port 0 over a fresh database and talks
//! HTTP to it. `#[backend_test]` runs a test on SQLite, PostgreSQL and MySQL/MariaDB (the server
//! engines when `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` are set). One binary, so the crate and
//! harness compile once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod databases;
mod helpers;
mod limits;
mod listing;
mod metrics;
mod process;
mod raw;

mod cli;
mod concurrency;
mod device;
mod durability_sync;
mod exit;
mod expect_continue;
mod generated;
mod headers;
mod home;
mod malformed;

mod aggregate;
mod auth;
mod bulk;
mod compression;
mod conditional;
mod cors;
mod idempotency;
mod latest;
mod pagination;
mod protocol;
mod request_ids;
mod reverse_proxy;
mod routes;
mod schema_parity;
mod slow_clients;
mod startup_errors;
mod stations;
mod stream;
mod tokens;
mod transfer;
mod validation;
