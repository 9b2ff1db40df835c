//! Authentication and permission: DRF's basic-auth messages with an RFC 7235 challenge, the
//! staff-only rule, the credentials cache, and the throttle on failed logins.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::json;
use station_api::accounts::{self, Role};
use station_api::auth::password::{HashCost, PasswordHasher};
use station_api::db::user_repository;
use station_api::domain::user::{NewPassword, Username};

use crate::helpers::{
    ADMIN, CHEAP_HASHING, TestApp, VIEWER, assert_detail, basic_authorization, header, json_body,
    reads_that_find_rows_and_reads_that_find_none, send, spawn_app, spawn_app_with,
};
use station_test_macros::backend_test;

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const INVALID: &str = "Invalid username/password.";
const CHALLENGE: &str = "Basic realm=\"station-api\"";

/// A GET of the station list with `authorization` as the raw header value.
fn with_authorization(app: &TestApp, authorization: &str) -> RequestBuilder {
    app.anonymous(Method::GET, "/station/")
        .header("authorization", authorization)
}

/// A GET of the station list with these basic credentials.
fn as_user(app: &TestApp, username: &str, password: &str) -> RequestBuilder {
    app.anonymous(Method::GET, "/station/")
        .basic_auth(username, Some(password))
}

/// Asserts a 401 with the challenge and `detail`.
async fn assert_unauthorized(response: Response, detail: &str) {
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some(CHALLENGE)
    );
    assert_detail(response, StatusCode::UNAUTHORIZED, detail).await;
}

/// Asserts a 429 whose message and `Retry-After` name the same whole number of seconds, at most
/// `refill` away.
async fn assert_throttled(response: Response, refill: Duration) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "vary").as_deref(), Some("Accept"));
    assert!(header(&response, "allow").is_some());
    let retry_after: u64 = header(&response, "retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(
        (1..=refill.as_secs()).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(
        json_body(response).await,
        json!({"detail": format!(
            "Request was throttled. Expected available in {retry_after} seconds."
        )})
    );
}

fn username(name: &str) -> Username {
    Username::parse(name).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Messages

#[backend_test]
async fn no_credentials_get_401_with_a_basic_challenge() {
    // Arrange
    let app = spawn_app().await;

    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/station/"),
        (Method::POST, "/station/"),
        (Method::GET, "/station/1/"),
        (Method::DELETE, "/station/1/"),
    ] {
        // Act
        let response = send(app.anonymous(method, path)).await;

        // Assert
        assert_unauthorized(response, NOT_PROVIDED).await;
    }
}

#[backend_test]
async fn another_scheme_counts_as_no_credentials() {
    // Arrange
    let app = spawn_app().await;

    // `Token` and `Bearer` are device tokens' schemes (tests/api/tokens.rs).
    for authorization in ["Digest username=\"admin\"", "Negotiate abc.def.ghi", ""] {
        // Act
        let response = send(with_authorization(&app, authorization)).await;

        // Assert
        assert_unauthorized(response, NOT_PROVIDED).await;
    }
}

#[backend_test]
async fn each_malformed_basic_header_gets_its_drf_message() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        ("Basic", "Invalid basic header. No credentials provided."),
        ("Basic   ", "Invalid basic header. No credentials provided."),
        (
            "Basic a b",
            "Invalid basic header. Credentials string should not contain spaces.",
        ),
        (
            "Basic !!!notbase64",
            "Invalid basic header. Credentials not correctly base64 encoded.",
        ),
        // "admin" with no colon
        (
            "Basic YWRtaW4=",
            "Invalid basic header. Credentials not correctly base64 encoded.",
        ),
    ];

    for (authorization, message) in cases {
        // Act
        let response = send(with_authorization(&app, authorization)).await;

        // Assert
        assert_unauthorized(response, message).await;
    }
}

#[backend_test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let wrong_password = send(as_user(&app, ADMIN.0, "not-the-password")).await;
    let unknown_user = send(as_user(&app, "nobody", ADMIN.1)).await;
    let empty_password = send(as_user(&app, ADMIN.0, "")).await;

    // Assert
    assert_unauthorized(wrong_password, INVALID).await;
    assert_unauthorized(unknown_user, INVALID).await;
    assert_unauthorized(empty_password, INVALID).await;
}

#[backend_test]
async fn a_401_never_depends_on_whether_the_path_exists() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/station/99/", "/station/abc/", "/station/?page=99"] {
        // Act
        let response = send(
            app.anonymous(Method::GET, path)
                .basic_auth(ADMIN.0, Some("wrong-password")),
        )
        .await;

        // Assert
        assert_unauthorized(response, INVALID).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Who may call

#[backend_test]
async fn an_active_staff_user_may_use_the_api() {
    // Arrange
    let app = spawn_app().await;
    app.add_user("operator", "operator-password", Role::Staff);

    // Act
    let superuser = send(as_user(&app, ADMIN.0, ADMIN.1)).await;
    let staff = send(as_user(&app, "operator", "operator-password")).await;

    // Assert
    assert_eq!(superuser.status(), StatusCode::OK);
    assert_eq!(staff.status(), StatusCode::OK);
}

#[backend_test]
async fn a_user_who_is_not_staff_gets_403() {
    // Arrange
    let app = spawn_app().await;

    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/station/"),
        (Method::POST, "/station/"),
        (Method::GET, "/station/1/"),
    ] {
        // Act
        let response = send(app.viewer(method, path)).await;

        // Assert
        assert_detail(
            response,
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
        .await;
    }
}

#[backend_test]
async fn the_scheme_is_case_insensitive_and_the_password_may_hold_colons() {
    // Arrange: DRF splits the credentials at the first colon.
    let app = spawn_app().await;
    app.add_user("colon", "pass:word:with:colons", Role::Staff);
    let lowercase = basic_authorization(ADMIN).replace("Basic ", "basic ");

    // Act
    let colons = send(as_user(&app, "colon", "pass:word:with:colons")).await;
    let scheme = send(with_authorization(&app, &lowercase)).await;

    // Assert
    assert_eq!(colons.status(), StatusCode::OK);
    assert_eq!(scheme.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// The credentials cache

#[backend_test]
async fn a_changed_password_takes_effect_at_once() {
    // Arrange: the old password has been verified, so it is cached.
    let app = spawn_app().await;
    assert_eq!(
        send(as_user(&app, ADMIN.0, ADMIN.1)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(as_user(&app, ADMIN.0, ADMIN.1)).await.status(),
        StatusCode::OK
    );

    // Act
    accounts::change_password(
        &app.database,
        &PasswordHasher::new(CHEAP_HASHING).unwrap(),
        &username(ADMIN.0),
        &NewPassword::parse("a-brand-new-password".to_owned()).unwrap(),
    )
    .unwrap();

    // Assert
    let old = send(as_user(&app, ADMIN.0, ADMIN.1)).await;
    assert_unauthorized(old, INVALID).await;
    let new = send(as_user(&app, ADMIN.0, "a-brand-new-password")).await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[backend_test]
async fn a_deleted_user_is_refused_at_once() {
    // Arrange: the password has been verified, so it is cached.
    let app = spawn_app().await;
    app.add_user("leaver", "leaver-password", Role::Staff);
    let before = send(as_user(&app, "leaver", "leaver-password")).await;
    assert_eq!(before.status(), StatusCode::OK);

    // Act
    accounts::delete(&app.database, &username("leaver")).unwrap();

    // Assert
    let after = send(as_user(&app, "leaver", "leaver-password")).await;
    assert_unauthorized(after, INVALID).await;
    assert_eq!(
        send(as_user(&app, ADMIN.0, ADMIN.1)).await.status(),
        StatusCode::OK
    );
}

#[backend_test]
async fn a_user_recreated_with_the_same_name_needs_the_new_password() {
    // Arrange
    let app = spawn_app().await;
    app.add_user("reused", "first-password", Role::Staff);
    assert_eq!(
        send(as_user(&app, "reused", "first-password"))
            .await
            .status(),
        StatusCode::OK
    );
    accounts::delete(&app.database, &username("reused")).unwrap();

    // Act
    app.add_user("reused", "second-password", Role::Regular);

    // Assert
    let old = send(as_user(&app, "reused", "first-password")).await;
    assert_unauthorized(old, INVALID).await;
    let new = send(as_user(&app, "reused", "second-password")).await;
    assert_eq!(new.status(), StatusCode::FORBIDDEN);
}

/// Sets a column of `name`'s account directly in the database, as an administrator would.
fn set_account_flags(app: &TestApp, name: &str, staff: bool, active: bool) {
    use diesel::prelude::*;
    use station_api::db::schema::users;

    let name = name.to_owned();
    let changed = app
        .database
        .write_blocking(move |conn| {
            diesel::update(users::table.filter(users::username.eq(name)))
                .set((users::is_staff.eq(staff), users::is_active.eq(active)))
                .execute(conn)
        })
        .unwrap();
    assert_eq!(changed, 1);
}

/// One request of every shape a handler can take: a query, a write, a lookup before a bad
/// body, and none at all (the root, OPTIONS, a 405, a non-integer id).
fn every_kind_of_request(app: &TestApp, user: (&str, &str), station: &str) -> Vec<RequestBuilder> {
    let (name, password) = user;
    let detail = format!("/station/{station}/");
    [
        app.anonymous(Method::GET, "/station/"),
        app.anonymous(Method::GET, &detail),
        app.anonymous(Method::POST, "/station/")
            .json(&crate::helpers::reading("intruder")),
        app.anonymous(Method::PUT, &detail)
            .json(&json!({"name": ""})),
        app.anonymous(Method::PUT, &detail)
            .json(&crate::helpers::reading("replaced")),
        app.anonymous(Method::PATCH, &detail)
            .json(&json!({"temperature": 1.5})),
        app.anonymous(Method::PATCH, &detail).json(&json!({})),
        app.anonymous(Method::DELETE, &detail),
        app.anonymous(Method::GET, "/"),
        app.anonymous(Method::OPTIONS, "/station/"),
        app.anonymous(Method::PATCH, "/station/"),
        app.anonymous(Method::GET, "/station/not-a-number/"),
    ]
    .into_iter()
    .map(|request| request.basic_auth(name, Some(password)))
    .collect()
}

/// What can happen to an account whose password a process remembers, and the status every request
/// with that password gets afterwards.
const ACCOUNT_CHANGES: [(&str, StatusCode); 3] = [
    ("demoted", StatusCode::FORBIDDEN),
    ("deactivated", StatusCode::UNAUTHORIZED),
    ("deleted", StatusCode::UNAUTHORIZED),
];

/// Applies one of [`ACCOUNT_CHANGES`] to `user`'s account, behind the service's back.
fn change_account(app: &TestApp, change: &str, user: &str) {
    match change {
        "demoted" => set_account_flags(app, user, false, true),
        "deactivated" => set_account_flags(app, user, true, false),
        "deleted" => accounts::delete(&app.database, &username(user)).unwrap(),
        other => panic!("no such account change: {other}"),
    }
}

#[backend_test]
async fn remembered_credentials_stop_working_on_every_request_once_the_account_changes() {
    for (change, status) in ACCOUNT_CHANGES {
        // Arrange: the password is verified and remembered. Every request fails once the account
        // is gone: more of them than the throttle's default burst of failed logins.
        let app = spawn_app_with(|settings| settings.auth.throttle.burst = 100).await;
        let user = ("worker", "worker-password");
        app.add_user(user.0, user.1, Role::Staff);
        let station = app.create_station(&crate::helpers::reading("kept")).await;
        let id = station["id"].to_string();
        for request in every_kind_of_request(&app, user, &id) {
            let before = send(request).await;
            assert!(
                before.status().is_success() || before.status().is_client_error(),
                "{change}: {}",
                before.status()
            );
            assert_ne!(before.status(), StatusCode::UNAUTHORIZED, "{change}");
            assert_ne!(before.status(), StatusCode::FORBIDDEN, "{change}");
        }
        // The DELETE above removed the reading; put one back for the next round of requests.
        let station = app.create_station(&crate::helpers::reading("kept")).await;
        let id = station["id"].to_string();
        let stored = app.all_stations().await;

        // Act
        change_account(&app, change, user.0);

        // Assert: every request is refused, and nothing was written or deleted.
        for request in every_kind_of_request(&app, user, &id) {
            let after = send(request).await;
            assert_eq!(after.status(), status, "{change}: {}", after.url());
            if status == StatusCode::UNAUTHORIZED {
                assert_unauthorized(after, INVALID).await;
            }
        }
        assert_eq!(app.all_stations().await, stored, "{change}");
    }
}

#[backend_test]
async fn an_account_changed_under_remembered_credentials_is_refused_by_reads_that_find_nothing_too()
{
    for (change, status) in ACCOUNT_CHANGES {
        // Arrange: the password is verified and remembered; one reading exists.
        let app = spawn_app().await;
        let user = ("reader", "reader-password");
        app.add_user(user.0, user.1, Role::Staff);
        let id = app.create_station(&crate::helpers::reading("kept")).await["id"].to_string();
        let reads = reads_that_find_rows_and_reads_that_find_none(&id, "kept");
        for (path, answered) in &reads {
            let before = send(
                app.anonymous(Method::GET, path)
                    .basic_auth(user.0, Some(user.1)),
            )
            .await;
            assert_eq!(before.status(), *answered, "{path}");
        }

        // Act
        change_account(&app, change, user.0);

        // Assert: refused, whether or not the read found anything.
        for (path, _) in &reads {
            let after = send(
                app.anonymous(Method::GET, path)
                    .basic_auth(user.0, Some(user.1)),
            )
            .await;
            assert_eq!(after.status(), status, "{change}: {path}");
        }
    }
}

#[backend_test]
async fn a_new_hash_of_the_same_password_is_verified_again_by_reads_that_find_rows() {
    // Arrange: the password is verified and remembered; one reading exists.
    let app = spawn_app().await;
    let created = app.create_station(&crate::helpers::reading("kept")).await;
    let detail = format!("/station/{}/", created["id"]);
    assert_eq!(json_body(app.get(&detail).await).await, created);

    for path in [detail.as_str(), "/station/"] {
        // Act: the same password, hashed again (a new salt), under the remembered credentials.
        accounts::change_password(
            &app.database,
            &PasswordHasher::new(CHEAP_HASHING).unwrap(),
            &username(ADMIN.0),
            &NewPassword::parse(ADMIN.1.to_owned()).unwrap(),
        )
        .unwrap();

        // Assert: verified again, and the read is answered in full.
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = json_body(response).await;
        if path == "/station/" {
            assert_eq!(body["count"], 1);
            assert_eq!(body["results"], json!([created]));
        } else {
            assert_eq!(body, created);
        }
    }
    // And with a wrong password, the new hash refuses it.
    accounts::change_password(
        &app.database,
        &PasswordHasher::new(CHEAP_HASHING).unwrap(),
        &username(ADMIN.0),
        &NewPassword::parse("another-password".to_owned()).unwrap(),
    )
    .unwrap();
    assert_unauthorized(app.get(&detail).await, INVALID).await;
}

#[backend_test]
async fn a_password_set_again_to_the_same_value_keeps_working() {
    // Arrange: the password is verified and remembered against its stored hash.
    let app = spawn_app().await;
    assert_eq!(
        send(as_user(&app, ADMIN.0, ADMIN.1)).await.status(),
        StatusCode::OK
    );

    // Act: the same password, hashed again, so the stored hash (its salt) changes.
    accounts::change_password(
        &app.database,
        &PasswordHasher::new(CHEAP_HASHING).unwrap(),
        &username(ADMIN.0),
        &NewPassword::parse(ADMIN.1.to_owned()).unwrap(),
    )
    .unwrap();

    // Assert: verified again against the new hash, on a query and on a write.
    assert_eq!(
        send(as_user(&app, ADMIN.0, ADMIN.1)).await.status(),
        StatusCode::OK
    );
    accounts::change_password(
        &app.database,
        &PasswordHasher::new(CHEAP_HASHING).unwrap(),
        &username(ADMIN.0),
        &NewPassword::parse(ADMIN.1.to_owned()).unwrap(),
    )
    .unwrap();
    app.create_station(&crate::helpers::reading("after a reset"))
        .await;
    assert_eq!(json_body(app.get("/station/").await).await["count"], 1);
}

// ---------------------------------------------------------------------------------------------
// The throttle

/// A server that allows 3 failed logins and then one more a minute.
async fn spawn_throttled_app(trust_proxy: bool) -> TestApp {
    spawn_app_with(|settings| {
        settings.auth.throttle.burst = 3;
        settings.auth.throttle.refill_every = REFILL;
        settings.http.trust_proxy = trust_proxy;
    })
    .await
}

const REFILL: Duration = Duration::from_secs(60);

/// Sends three wrong passwords for `user`, each answered 401.
async fn fail_three_times(app: &TestApp, user: &str) {
    for _ in 0..3 {
        let response = send(as_user(app, user, "wrong-password")).await;
        assert_unauthorized(response, INVALID).await;
    }
}

#[backend_test]
async fn after_the_burst_of_failures_even_an_unverified_right_password_gets_429() {
    // Arrange
    let app = spawn_throttled_app(false).await;
    fail_three_times(&app, ADMIN.0).await;

    // Act
    let right_password = send(as_user(&app, ADMIN.0, ADMIN.1)).await;
    let wrong_password = send(as_user(&app, ADMIN.0, "wrong-password")).await;

    // Assert
    assert_throttled(right_password, REFILL).await;
    assert_throttled(wrong_password, REFILL).await;
}

#[backend_test]
async fn a_previously_verified_password_is_not_throttled() {
    // Arrange: the admin logs in, then someone guesses the admin's password.
    let app = spawn_throttled_app(false).await;
    assert_eq!(
        send(as_user(&app, ADMIN.0, ADMIN.1)).await.status(),
        StatusCode::OK
    );
    fail_three_times(&app, ADMIN.0).await;

    // Act
    let admin = send(as_user(&app, ADMIN.0, ADMIN.1)).await;
    let guess = send(as_user(&app, ADMIN.0, "another-guess")).await;

    // Assert: the guesser cannot lock the admin out, and is still throttled.
    assert_eq!(admin.status(), StatusCode::OK);
    assert_throttled(guess, REFILL).await;
}

#[backend_test]
async fn another_username_from_the_same_client_is_throttled_too() {
    // Arrange
    let app = spawn_throttled_app(false).await;
    fail_three_times(&app, ADMIN.0).await;

    // Act
    let viewer = send(as_user(&app, VIEWER.0, VIEWER.1)).await;
    let unknown = send(as_user(&app, "someone-else", "password")).await;

    // Assert
    assert_throttled(viewer, REFILL).await;
    assert_throttled(unknown, REFILL).await;
}

#[backend_test]
async fn malformed_headers_do_not_count_as_failed_logins() {
    // Arrange
    let app = spawn_throttled_app(false).await;
    for _ in 0..5 {
        let response = send(with_authorization(&app, "Basic !!!")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = send(app.anonymous(Method::GET, "/station/")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    // Act
    let admin = send(as_user(&app, ADMIN.0, ADMIN.1)).await;

    // Assert
    assert_eq!(admin.status(), StatusCode::OK);
}

/// `request` as if it came through the proxy from `client`.
fn from_client(request: RequestBuilder, client: &str) -> RequestBuilder {
    request.header("x-forwarded-for", client)
}

#[backend_test]
async fn guesses_at_one_username_from_many_clients_never_lock_its_owner_out() {
    // Arrange: behind a trusted proxy, five clients each use up their allowance guessing the
    // admin's password. The server is fresh: it has never verified the admin's password, so
    // nothing it remembers can let the admin in.
    let app = spawn_throttled_app(true).await;
    for client in [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
        "192.0.2.4",
        "192.0.2.5",
    ] {
        for _ in 0..3 {
            let response = send(from_client(as_user(&app, ADMIN.0, "wrong"), client)).await;
            assert_unauthorized(response, INVALID).await;
        }
        let response = send(from_client(as_user(&app, ADMIN.0, "wrong"), client)).await;
        assert_throttled(response, REFILL).await;
    }

    // Act: the admin, from an address of their own.
    let admin = send(from_client(as_user(&app, ADMIN.0, ADMIN.1), "198.51.100.9")).await;
    let guess = send(from_client(as_user(&app, ADMIN.0, "wrong"), "198.51.100.9")).await;

    // Assert: the right password gets in; a wrong one from there is simply wrong.
    assert_eq!(admin.status(), StatusCode::OK);
    assert_unauthorized(guess, INVALID).await;
}

#[backend_test]
async fn concurrent_guesses_from_one_client_cannot_outrun_its_allowance() {
    // Arrange: 64 wrong passwords from one client, all in flight at once. Each once passed the
    // check before any of them had been counted as a failure.
    let app = spawn_throttled_app(false).await;
    let guesses = (0..64).map(|n| send(as_user(&app, ADMIN.0, &format!("guess-{n}"))));

    // Act
    let responses = futures_util::future::join_all(guesses).await;

    // Assert: the allowance of three, and no more, was verified.
    let statuses: Vec<StatusCode> = responses.iter().map(Response::status).collect();
    let verified = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((verified, throttled), (3, 61), "{statuses:?}");
}

#[backend_test]
async fn a_password_hashed_at_another_cost_is_rehashed_at_the_configured_one_when_it_is_verified() {
    // Arrange: an account whose hash is costlier than the configured cost (and so than the
    // decoy unknown names are checked against, which made its name tell by timing).
    let app = spawn_app().await;
    let stronger = PasswordHasher::new(HashCost {
        memory_kib: 256,
        iterations: 2,
        parallelism: 1,
    })
    .unwrap();
    accounts::create(
        &app.database,
        &stronger,
        &username("strong"),
        &NewPassword::parse("strong-password".to_owned()).unwrap(),
        Role::Superuser,
    )
    .unwrap();
    let stored_hash = |app: &TestApp| {
        app.database
            .blocking(|conn| user_repository::find_by_username(conn, "strong"))
            .unwrap()
            .unwrap()
            .password_hash
    };
    assert!(stored_hash(&app).contains("$m=256,t=2,p=1$"));

    // Act
    let response = send(as_user(&app, "strong", "strong-password")).await;

    // Assert: in, and stored at the configured cost; another instance, which remembers nothing,
    // verifies the new hash.
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        stored_hash(&app).contains("$m=64,t=1,p=1$"),
        "{}",
        stored_hash(&app)
    );
    let other = app.another_instance().await;
    let response = send(
        app.client
            .get(format!("{other}/station/"))
            .basic_auth("strong", Some("strong-password")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[backend_test]
async fn failures_from_one_client_throttle_that_client_only_behind_a_trusted_proxy() {
    // Arrange: one client guesses three different usernames.
    let app = spawn_throttled_app(true).await;
    for user in ["alice", "bob", "carol"] {
        let response = send(from_client(as_user(&app, user, "wrong"), "192.0.2.7")).await;
        assert_unauthorized(response, INVALID).await;
    }

    // Act
    let same_client = send(from_client(as_user(&app, VIEWER.0, VIEWER.1), "192.0.2.7")).await;
    let other_client = send(from_client(as_user(&app, VIEWER.0, VIEWER.1), "192.0.2.8")).await;

    // Assert
    assert_throttled(same_client, REFILL).await;
    assert_eq!(other_client.status(), StatusCode::FORBIDDEN);
}

#[backend_test]
async fn forwarded_addresses_are_ignored_for_the_throttle_unless_the_proxy_is_trusted() {
    // Arrange: three usernames guessed, each claiming a different forwarded address.
    let app = spawn_throttled_app(false).await;
    for (user, client) in [
        ("alice", "192.0.2.1"),
        ("bob", "192.0.2.2"),
        ("carol", "192.0.2.3"),
    ] {
        let response = send(from_client(as_user(&app, user, "wrong"), client)).await;
        assert_unauthorized(response, INVALID).await;
    }

    // Act
    let viewer = send(from_client(as_user(&app, VIEWER.0, VIEWER.1), "192.0.2.4")).await;

    // Assert: the real peer address made all three attempts.
    assert_throttled(viewer, REFILL).await;
}

/// Sets `user`'s password to `password` behind the service's back, as `changepassword` does.
fn set_password(app: &TestApp, user: &str, password: &str) {
    let hasher = PasswordHasher::new(CHEAP_HASHING).expect("hasher");
    accounts::change_password(
        &app.database,
        &hasher,
        &username(user),
        &NewPassword::parse(password.to_owned()).expect("password"),
    )
    .unwrap();
}

#[backend_test]
async fn a_create_under_a_remembered_password_that_was_changed_is_refused_and_writes_nothing() {
    // Arrange: the old password is verified and remembered.
    let app = spawn_app().await;
    let user = ("writer", "old-password");
    app.add_user(user.0, user.1, Role::Staff);
    let create = |password: &str| {
        app.anonymous(Method::POST, "/station/")
            .basic_auth(user.0, Some(password.to_owned()))
            .json(&crate::helpers::reading("Oslo"))
    };
    assert_eq!(send(create(user.1)).await.status(), StatusCode::CREATED);
    let stored = app.all_stations().await;

    // Act
    set_password(&app, user.0, "new-password");

    // Assert: the old password writes nothing; the new one writes one reading.
    assert_unauthorized(send(create(user.1)).await, INVALID).await;
    assert_eq!(app.all_stations().await, stored);
    assert_eq!(
        send(create("new-password")).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.all_stations().await.len(), stored.len() + 1);
}

/// A PUT, a PATCH and a DELETE of the reading at `detail` with `user`'s password.
fn changes_of(app: &TestApp, detail: &str, user: (&str, &str)) -> [RequestBuilder; 3] {
    let (name, password) = (user.0, Some(user.1.to_owned()));
    [
        app.anonymous(Method::PUT, detail)
            .json(&crate::helpers::reading("replaced")),
        app.anonymous(Method::PATCH, detail)
            .json(&json!({"temperature": 1.5})),
        app.anonymous(Method::DELETE, detail),
    ]
    .map(|request| request.basic_auth(name, password.clone()))
}

#[backend_test]
async fn changes_under_a_remembered_password_that_was_changed_are_refused_and_change_nothing() {
    // Arrange: the old password is verified and remembered by a change of the reading.
    let app = spawn_app().await;
    let user = ("editor", "old-password");
    app.add_user(user.0, user.1, Role::Staff);
    let detail = format!(
        "/station/{}/",
        app.create_station(&crate::helpers::reading("Oslo")).await["id"]
    );
    let [put, ..] = changes_of(&app, &detail, user);
    assert_eq!(send(put).await.status(), StatusCode::OK);
    let stored = app.all_stations().await;

    // Act
    set_password(&app, user.0, "new-password");

    // Assert: the old password changes nothing; the new one changes the reading.
    for change in changes_of(&app, &detail, user) {
        assert_unauthorized(send(change).await, INVALID).await;
    }
    assert_eq!(app.all_stations().await, stored);
    let statuses = {
        let mut statuses = Vec::new();
        for change in changes_of(&app, &detail, (user.0, "new-password")) {
            statuses.push(send(change).await.status());
        }
        statuses
    };
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::OK, StatusCode::NO_CONTENT]
    );
    assert!(app.all_stations().await.is_empty());
}

#[backend_test]
async fn changes_under_a_remembered_password_set_again_are_verified_again_and_applied() {
    // Arrange: the password is verified and remembered.
    let app = spawn_app().await;
    let user = ("editor", "same-password");
    app.add_user(user.0, user.1, Role::Staff);
    let id = app.create_station(&crate::helpers::reading("Oslo")).await["id"].clone();
    let detail = format!("/station/{id}/");
    assert_eq!(
        send(
            app.anonymous(Method::GET, &detail)
                .basic_auth(user.0, Some(user.1))
        )
        .await
        .status(),
        StatusCode::OK
    );
    let [put, patch, delete] = changes_of(&app, &detail, user);

    // Act and assert: after each new hash of the same password, a change is turned away by the
    // stored hash it remembered, admitted once the password is verified again, and applied.
    set_password(&app, user.0, user.1);
    let replaced = json_body(send(put).await).await;
    assert_eq!(
        (replaced["id"].clone(), replaced["name"].clone()),
        (id.clone(), json!("replaced"))
    );
    set_password(&app, user.0, user.1);
    let patched = json_body(send(patch).await).await;
    assert_eq!(patched["temperature"], 1.5);
    assert_eq!(app.all_stations().await, [patched]);
    set_password(&app, user.0, user.1);
    assert_eq!(send(delete).await.status(), StatusCode::NO_CONTENT);
    assert!(app.all_stations().await.is_empty());
}

#[backend_test]
async fn a_create_under_a_remembered_password_set_again_is_verified_again_and_written_once() {
    // Arrange: the password is verified and remembered.
    let app = spawn_app().await;
    let user = ("writer", "same-password");
    app.add_user(user.0, user.1, Role::Staff);
    let create = || {
        app.anonymous(Method::POST, "/station/")
            .basic_auth(user.0, Some(user.1))
            .json(&crate::helpers::reading("Oslo"))
    };
    assert_eq!(send(create()).await.status(), StatusCode::CREATED);

    // Act: the same password stored again (a new hash), then a create with it.
    set_password(&app, user.0, user.1);
    let response = send(create()).await;

    // Assert: refused by the stored hash it remembered, admitted once verified again, and
    // written once.
    assert_eq!(response.status(), StatusCode::CREATED);
    let stations = app.all_stations().await;
    assert_eq!(stations.len(), 2);
    assert_eq!(stations[1]["name"], "Oslo");
}
