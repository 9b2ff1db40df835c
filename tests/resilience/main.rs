//! The service against a database that goes away, and a service that is killed mid-write. These
//! tests stop and start database servers, so they live in their own binary (Cargo runs test
//! binaries one after another) and take turns inside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../api/databases.rs"]
mod databases;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../api/process.rs"]
mod process;

mod durability;
mod outage;

/// Held by each test here, so one test's outage never lands in another test.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
