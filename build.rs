//! Tells the test suite which database servers it was built to run on: with `TEST_POSTGRES_URL`
//! or `TEST_MYSQL_URL` unset, the PostgreSQL or MariaDB variants of the black-box tests are
//! marked ignored (with the reason), so `cargo test`'s own summary says what did not run instead
//! of counting them as passed. Nothing in the service itself depends on these.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for (variable, cfg) in [
        ("TEST_POSTGRES_URL", "station_test_postgres"),
        ("TEST_MYSQL_URL", "station_test_mysql"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={variable}");
        if std::env::var(variable).is_ok_and(|url| !url.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
