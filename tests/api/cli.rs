//! The `station-api` binary as a user runs it: user commands, first start, and shutdown.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};

use crate::helpers::{ADMIN, TestDatabase, spawn_app};
use crate::process::{
    BINARY, Server, lines_until, port_of, run, start_server, station_api, text, wait_for,
    with_service_environment,
};
use station_test_macros::backend_test;

/// A new, empty database on the current test's engine.
fn fresh_database() -> TestDatabase {
    TestDatabase::fresh()
}

#[test]
fn every_command_has_help() {
    for command in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["createsuperuser", "--help"],
        vec!["createuser", "--help"],
        vec!["changepassword", "--help"],
        vec!["deleteuser", "--help"],
        vec!["listusers", "--help"],
        vec!["createtoken", "--help"],
        vec!["listtokens", "--help"],
        vec!["revoketoken", "--help"],
        vec!["import", "--help"],
        vec!["export", "--help"],
        vec!["prune", "--help"],
        vec!["backup", "--help"],
        vec!["openapi", "--help"],
    ] {
        let output = Command::new(BINARY).args(&command).output().unwrap();
        assert!(output.status.success(), "{command:?}");
        assert!(
            text(&output.stdout).contains("Usage: station-api"),
            "{command:?}"
        );
    }
    let top = text(&Command::new(BINARY).arg("--help").output().unwrap().stdout);
    assert!(top.contains("createsuperuser") && top.contains("--database-url"));
}

#[test]
fn help_never_shows_the_database_url_from_the_environment() {
    for command in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
    ] {
        let output = Command::new(BINARY)
            .args(&command)
            .env("DATABASE_URL", "postgres://app:hunter2@db.internal/station")
            .output()
            .unwrap();
        let help = text(&output.stdout);
        assert!(help.contains("[env: DATABASE_URL]"), "{command:?}: {help}");
        assert!(!help.contains("hunter2"), "{command:?}");
        assert!(!help.contains("db.internal"), "{command:?}");
    }
}

#[backend_test]
async fn migrate_applies_the_migrations_once() {
    let database = fresh_database();

    let first = run(&database.url, &["migrate"], "");
    let second = run(&database.url, &["migrate"], "");

    assert!(first.status.success());
    // SQLite has two more: its bulk inserts log their changes per statement, and its indexes
    // leave out the id it ends every index with anyway.
    let migrations = match crate::helpers::Backend::current() {
        crate::helpers::Backend::Sqlite => 11,
        crate::helpers::Backend::Postgres | crate::helpers::Backend::Mysql => 9,
    };
    assert_eq!(
        text(&first.stdout).trim(),
        format!("Applied {migrations} migration(s).")
    );
    assert_eq!(text(&second.stdout).trim(), "Applied 0 migration(s).");
}

#[backend_test]
async fn users_are_created_listed_and_deleted() {
    let database = fresh_database();

    let superuser = run(
        &database.url,
        &["createsuperuser", "--username", "root"],
        "root-password\n",
    );
    let staff = run(
        &database.url,
        &["createuser", "--username", "device.7", "--staff"],
        "device-password\n",
    );
    let regular = run(
        &database.url,
        &["createuser", "--username", "reader"],
        "reader-password\n",
    );

    assert!(superuser.status.success(), "{}", text(&superuser.stderr));
    assert!(staff.status.success(), "{}", text(&staff.stderr));
    assert!(regular.status.success(), "{}", text(&regular.stderr));
    let listing = text(&run(&database.url, &["listusers"], "").stdout);
    let row = |name: &str| {
        listing
            .lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("{name} missing from:\n{listing}"))
    };
    assert_eq!(row("root"), ["root", "yes", "yes", "yes"]);
    assert_eq!(row("device.7"), ["device.7", "yes", "no", "yes"]);
    assert_eq!(row("reader"), ["reader", "no", "no", "yes"]);

    let deleted = run(&database.url, &["deleteuser", "--username", "reader"], "");
    assert!(deleted.status.success());
    assert!(!text(&run(&database.url, &["listusers"], "").stdout).contains("reader"));
}

#[backend_test]
async fn bad_user_commands_fail_with_a_message_and_change_nothing() {
    let database = fresh_database();
    run(
        &database.url,
        &["createsuperuser", "--username", "root"],
        "root-password\n",
    );

    let duplicate = run(
        &database.url,
        &["createsuperuser", "--username", "root"],
        "other-password\n",
    );
    let short = run(
        &database.url,
        &["createuser", "--username", "shorty"],
        "short\n",
    );
    let bad_name = run(
        &database.url,
        &["createuser", "--username", "has space"],
        "long-enough\n",
    );
    let missing = run(
        &database.url,
        &["changepassword", "--username", "ghost"],
        "long-enough\n",
    );
    let delete_missing = run(&database.url, &["deleteuser", "--username", "ghost"], "");

    for (output, message) in [
        (&duplicate, "already exists"),
        (&short, "too short"),
        (&bad_name, "valid username"),
        (&missing, "no user named"),
        (&delete_missing, "no user named"),
    ] {
        assert!(!output.status.success());
        assert!(
            text(&output.stderr).contains(message),
            "expected {message:?} in {:?}",
            text(&output.stderr)
        );
    }
    let listing = text(&run(&database.url, &["listusers"], "").stdout);
    assert_eq!(
        listing.lines().count(),
        2,
        "header and root only:\n{listing}"
    );
}

#[backend_test]
async fn a_password_is_never_taken_from_the_command_line() {
    let database = fresh_database();

    let output = run(
        &database.url,
        &[
            "createsuperuser",
            "--username",
            "root",
            "--password",
            "secret-secret",
        ],
        "",
    );

    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--password"));
}

#[test]
fn the_openapi_command_prints_the_committed_document() {
    let output = Command::new(BINARY).arg("openapi").output().unwrap();

    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"))
            .unwrap();
    assert_eq!(text(&output.stdout), committed);
}

#[backend_test]
async fn changepassword_from_another_process_takes_effect_at_once() {
    let app = spawn_app().await;
    let stations = |user: &str, password: &str| {
        app.anonymous(Method::GET, "/station/")
            .basic_auth(user, Some(password.to_owned()))
            .send()
    };
    // The old password is verified and cached by the server.
    assert_eq!(
        stations(ADMIN.0, ADMIN.1).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        stations(ADMIN.0, ADMIN.1).await.unwrap().status(),
        StatusCode::OK
    );

    let changed = run(
        &app.database_url,
        &["changepassword", "--username", ADMIN.0],
        "a-brand-new-password\n",
    );

    assert!(changed.status.success(), "{}", text(&changed.stderr));
    assert_eq!(
        stations(ADMIN.0, ADMIN.1).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        stations(ADMIN.0, "a-brand-new-password")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[backend_test]
async fn deleteuser_from_another_process_takes_effect_at_once() {
    let app = spawn_app().await;
    let response = app.get("/station/").await;
    assert_eq!(response.status(), StatusCode::OK);

    let deleted = run(
        &app.database_url,
        &["deleteuser", "--username", ADMIN.0],
        "",
    );

    assert!(deleted.status.success());
    assert_eq!(
        app.get("/station/").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Whether `password` lets the admin in at `base`.
async fn admin_gets_in(base: &str, password: &str) -> bool {
    reqwest::Client::new()
        .get(format!("{base}/"))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .unwrap()
        .status()
        == StatusCode::OK
}

/// `serve` on `port` under a pseudo-terminal (`script`), as someone runs it by hand: its standard
/// output and error both arrive as the returned server's `stdout`. It is its own process group,
/// which [`stop_group`] signals.
fn serve_on_a_terminal(database_url: &str, port: u16) -> Server {
    let command = format!("exec {BINARY} serve --bind 127.0.0.1:{port}");
    let mut script = Command::new("script");
    script
        .args(["-qfec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    with_service_environment(&mut script, database_url);
    script.env("RUST_LOG", "info");
    Server::of(script.spawn().expect("script(1) runs"))
}

/// Sends SIGTERM to `server`'s process group and waits for it to end.
fn stop_group(server: Server) -> std::process::ExitStatus {
    let group = format!("-{}", server.child.id());
    let sent = Command::new("kill")
        .args(["-TERM", "--", &group])
        .status()
        .unwrap();
    assert!(sent.success());
    server.wait_for_exit()
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[backend_test]
async fn the_first_start_on_a_terminal_prints_an_admin_password_that_works_once() {
    let database = fresh_database();
    let port = free_port();
    let server = serve_on_a_terminal(&database.url, port);

    let password_line = wait_for(&server.stdout, "password:").expect("generated password shown");
    let password = password_line.split_whitespace().last().unwrap().to_owned();
    assert!(wait_for(&server.stdout, "changepassword --username admin").is_some());
    assert!(wait_for(&server.stdout, "station-api listening").is_some());
    let base = format!("http://127.0.0.1:{port}");

    assert!(admin_gets_in(&base, &password).await);
    assert!(stop_group(server).success());

    // A second start finds the admin and prints no new password.
    let again = serve_on_a_terminal(&database.url, port);
    let started = lines_until(&again.stdout, "station-api listening");
    assert!(
        !started.iter().any(|line| line.contains("password:")),
        "{started:#?}"
    );
    assert!(stop_group(again).success());
}

#[backend_test]
async fn the_first_start_takes_the_admin_password_from_a_file_and_prints_it_nowhere() {
    let database = fresh_database();
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("admin-password");
    let password = "correct horse battery staple";
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let mut command = station_api(&database.url);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("STATION_ADMIN_PASSWORD_FILE", &file)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = Server::of(command.spawn().unwrap());

    let started = lines_until(&server.stderr, "station-api listening");
    let base = format!("http://127.0.0.1:{}", port_of(started.last().unwrap()));

    assert!(admin_gets_in(&base, password).await);
    assert!(!admin_gets_in(&base, &format!("{password}\n")).await);
    assert!(
        started
            .iter()
            .any(|line| line.contains("admin password file")),
        "{started:#?}"
    );
    let printed: Vec<String> = server
        .stdout
        .try_iter()
        .chain(server.stderr.try_iter())
        .collect();
    assert!(server.signal_and_wait("-TERM").success());
    assert!(
        !started
            .iter()
            .chain(&printed)
            .any(|line| line.contains("horse")),
        "{started:#?} {printed:#?}"
    );
}

#[backend_test]
async fn without_a_terminal_or_a_password_file_no_password_is_made_up_or_printed() {
    let database = fresh_database();
    let server = start_server(&database.url);

    let started = lines_until(&server.stderr, "station-api listening");
    assert!(
        server.stdout.try_recv().is_err(),
        "nothing on standard output"
    );
    assert!(server.signal_and_wait("-TERM").success());

    assert!(
        started
            .iter()
            .any(|line| line.contains("createsuperuser") && line.contains("--admin-password-file")),
        "{started:#?}"
    );
    let users = run(&database.url, &["listusers"], "");
    assert!(users.status.success());
    assert!(
        !text(&users.stdout).contains("admin"),
        "{}",
        text(&users.stdout)
    );
}

#[backend_test]
async fn an_unreadable_or_too_short_password_file_stops_the_start_naming_the_file() {
    let database = fresh_database();
    let secrets = tempfile::tempdir().unwrap();
    let missing = secrets.path().join("missing");
    let short = secrets.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();

    for (file, cause) in [(&missing, "No such file"), (&short, "too short")] {
        let file = file.to_str().unwrap();
        let output = run(
            &database.url,
            &[
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--admin-password-file",
                file,
            ],
            "",
        );
        let error = text(&output.stderr);

        assert!(!output.status.success(), "{error}");
        assert!(error.contains(file) && error.contains(cause), "{error}");
        assert!(!error.contains("abc"), "{error}");
    }
    let users = run(&database.url, &["listusers"], "");
    assert!(!text(&users.stdout).contains("admin"));
}

#[backend_test]
async fn user_commands_exit_cleanly_every_time() {
    // A process that exited while a pool thread was still connecting used to crash inside the
    // client library now and then; one run in twenty is not enough to see it.
    let database = fresh_database();
    for n in 0..20 {
        let created = run(
            &database.url,
            &["createuser", "--username", &format!("user{n}")],
            "a-password-for-them\n",
        );
        assert!(
            created.status.success(),
            "run {n}: {:?} {}",
            created.status,
            text(&created.stderr)
        );
    }
}

#[backend_test]
async fn tokens_are_created_listed_and_revoked_from_the_command_line() {
    // Arrange: a running server, and the CLI on its database.
    let app = spawn_app().await;
    let url = app.database_url.clone();

    // Act
    let created = run(
        &url,
        &[
            "createtoken",
            "--label",
            "pi-kitchen",
            "--scope",
            "write",
            "--scope",
            "read",
            "--station",
            "Kitchen",
            "--expires-in-days",
            "30",
        ],
        "",
    );

    // Assert: the key alone on stdout, and it works at once.
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout).trim().to_owned();
    assert_eq!(text(&created.stdout), format!("{key}\n"));
    let post = app
        .anonymous(Method::POST, "/station/")
        .header("authorization", format!("Token {key}"))
        .json(&crate::helpers::reading("Kitchen"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::CREATED);
    let listing = text(&run(&url, &["listtokens"], "").stdout);
    let row: Vec<&str> = listing
        .lines()
        .nth(1)
        .expect("one token listed")
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..5],
        ["1", "pi-kitchen", "read,write", "Kitchen", &key[..8]]
    );
    assert!(!listing.contains(&key));

    let revoked = run(&url, &["revoketoken", "--id", "1"], "");
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let refused = app
        .anonymous(Method::GET, "/station/")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        text(&run(&url, &["listtokens"], "").stdout).lines().count(),
        1
    );
}

#[backend_test]
async fn bad_token_commands_fail_with_a_message_and_store_nothing() {
    let database = fresh_database();
    run(&database.url, &["migrate"], "");

    let no_scope = run(&database.url, &["createtoken", "--label", "pi"], "");
    let bad_scope = run(
        &database.url,
        &["createtoken", "--label", "pi", "--scope", "admin"],
        "",
    );
    let blank = run(
        &database.url,
        &["createtoken", "--label", " ", "--scope", "read"],
        "",
    );
    let missing = run(&database.url, &["revoketoken", "--id", "7"], "");

    for failed in [&no_scope, &bad_scope, &blank, &missing] {
        assert!(!failed.status.success());
        assert!(text(&failed.stdout).is_empty());
    }
    assert!(text(&blank.stderr).contains("label: This field may not be blank."));
    assert!(text(&missing.stderr).contains("there is no token with id 7"));
    let listing = text(&run(&database.url, &["listtokens"], "").stdout);
    assert_eq!(listing.lines().count(), 1, "{listing}");
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let database = TestDatabase::fresh_on(crate::databases::Backend::Sqlite);
    let directory = tempfile::tempdir().unwrap();
    // Both outputs are more than a pipe holds, so the writer meets the closed pipe.
    let readings = directory.path().join("readings.csv");
    let mut csv = String::from("name,timestamp,temperature,lat,lon\n");
    for n in 0..3_000 {
        csv.push_str(&format!(
            "Station {n},{},21.5,30.733315,76.779418\n",
            1_393_926_310 + n
        ));
    }
    std::fs::write(&readings, csv).unwrap();
    let imported = run(&database.url, &["import", readings.to_str().unwrap()], "");
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let errors = directory.path().join("stderr");
    for command in ["openapi", "export"] {
        let script = format!(
            "set -o pipefail; '{BINARY}' {command} 2>'{}' | head -c 10 >/dev/null; echo $?; cat '{}'",
            errors.display(),
            errors.display()
        );
        let output = Command::new("bash")
            .args(["-c", &script])
            .env("DATABASE_URL", &database.url)
            .output()
            .unwrap();
        assert_eq!(
            text(&output.stdout),
            "0\n",
            "{command}: {}",
            text(&output.stderr)
        );
    }
}
