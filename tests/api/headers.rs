//! Headers and hosts: security headers on every answer, allowed `Host` values, and requests
//! with more than one `Authorization` header.

use reqwest::{Method, StatusCode};

use crate::helpers::{
    ADMIN, TestDatabase, assert_detail, basic_authorization, header, reading, send, spawn_app,
    spawn_app_with, text_body,
};
use crate::process::{lines_until, start_server};

const INVALID_HOST: &str = "Invalid Host header.";

#[actix_web::test]
async fn every_response_says_nosniff() {
    // Arrange
    let app = spawn_app().await;
    let station = app.seed_stations(1).await.remove(0);
    let detail = crate::helpers::station_path(&station);
    let requests = [
        app.anonymous(Method::GET, "/healthz"),
        app.anonymous(Method::GET, "/readyz"),
        app.anonymous(Method::GET, "/swagger-ui/"),
        app.anonymous(Method::GET, "/api-docs/openapi.json"),
        app.anonymous(Method::GET, "/no-such-path/"),
        app.anonymous(Method::GET, "/station"),
        app.anonymous(Method::GET, "/station/"),
        app.admin(Method::GET, "/"),
        app.admin(Method::GET, "/station/"),
        app.admin(Method::GET, &detail),
        app.admin(Method::PATCH, "/station/"),
        app.admin(Method::OPTIONS, "/station/"),
    ];

    for request in requests {
        // Act
        let response = send(request).await;

        // Assert
        assert_eq!(
            header(&response, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{} {}",
            response.url(),
            response.status()
        );
    }
}

#[actix_web::test]
async fn api_answers_are_private_and_revalidated_errors_included() {
    // Arrange
    let app = spawn_app().await;
    let station = app.seed_stations(1).await.remove(0);
    let detail = crate::helpers::station_path(&station);
    let requests = [
        app.admin(Method::GET, "/"),
        app.admin(Method::GET, "/station/"),
        app.admin(Method::GET, &detail),
        app.admin(Method::HEAD, &detail),
        app.admin(Method::GET, "/station/999/"),
        app.admin(Method::PATCH, "/station/"),
        app.anonymous(Method::GET, "/station/"),
        app.anonymous(Method::GET, "/"),
        app.viewer(Method::GET, &detail),
    ];

    for request in requests {
        // Act
        let response = send(request).await;

        // Assert
        assert_eq!(
            header(&response, "cache-control").as_deref(),
            Some("private, no-cache"),
            "{} {}",
            response.url(),
            response.status()
        );
    }
}

#[actix_web::test]
async fn swagger_ui_may_not_be_framed_and_loads_only_its_own_files() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/swagger-ui/", "/swagger-ui/swagger-ui-bundle.js"] {
        // Act
        let response = send(app.anonymous(Method::GET, path)).await;

        // Assert
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&response, "x-frame-options").as_deref(),
            Some("DENY")
        );
        let policy = header(&response, "content-security-policy").expect("a policy");
        let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
        for expected in [
            "frame-ancestors 'none'",
            "script-src 'self'",
            "default-src 'self'",
        ] {
            assert!(directives.contains(&expected), "{policy}");
        }
    }
    // The page itself must work under that policy: its scripts and styles are its own files, and
    // it has no inline script.
    let page = text_body(send(app.anonymous(Method::GET, "/swagger-ui/")).await).await;
    for reference in page
        .split(['"', '\''])
        .filter(|part| part.ends_with(".js") || part.ends_with(".css"))
    {
        assert!(!reference.contains("//"), "{reference} is not served by us");
        let url = app.url(&format!(
            "/swagger-ui/{}",
            reference.trim_start_matches("./")
        ));
        let file = send(app.client.get(url)).await;
        assert_eq!(file.status(), StatusCode::OK, "{reference}");
    }
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.to_lowercase().contains("<style"), "{page}");
}

#[actix_web::test]
async fn only_allowed_hosts_are_served_as_django_compares_them() {
    // Arrange
    let app = spawn_app_with(|settings| {
        settings.http.allowed_hosts = vec!["api.example.com".into(), ".example.org".into()];
    })
    .await;

    for host in [
        "api.example.com",
        "API.EXAMPLE.COM:8000",
        "example.org",
        "a.b.example.org:443",
    ] {
        // Act
        let response = send(app.admin(Method::GET, "/").header("host", host)).await;

        // Assert
        assert_eq!(response.status(), StatusCode::OK, "{host}");
        let root: serde_json::Value = response.json().await.unwrap();
        assert!(
            root["station"]
                .as_str()
                .unwrap()
                .starts_with(&format!("http://{host}/")),
            "{root}"
        );
    }
    for host in ["evil.com", "example.com", "notexample.org", "127.0.0.1"] {
        let response = send(app.admin(Method::GET, "/").header("host", host)).await;
        assert_detail(response, StatusCode::BAD_REQUEST, INVALID_HOST).await;
    }
}

#[actix_web::test]
async fn a_host_not_allowed_is_turned_away_before_anything_else() {
    // Arrange
    let app = spawn_app_with(|settings| {
        settings.http.allowed_hosts = vec!["api.example.com".into()];
    })
    .await;
    let evil = |request: reqwest::RequestBuilder| request.header("host", "evil.com");

    // Act
    let created = send(evil(app.admin(Method::POST, "/station/")).json(&reading("Evil"))).await;
    let anonymous = send(evil(app.anonymous(Method::GET, "/station/"))).await;
    let unknown = send(evil(app.anonymous(Method::GET, "/no-such-path/"))).await;
    let redirect = send(evil(app.anonymous(Method::GET, "/station"))).await;
    let health = send(evil(app.anonymous(Method::GET, "/healthz"))).await;

    // Assert
    for response in [created, anonymous, unknown, redirect, health] {
        assert_detail(response, StatusCode::BAD_REQUEST, INVALID_HOST).await;
    }
    let stored = app
        .client
        .get(app.url("/station/"))
        .header("host", "api.example.com")
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.json::<serde_json::Value>().await.unwrap()["count"],
        0
    );
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_forwarded_host_is_the_one_checked() {
    // Arrange
    let app = spawn_app_with(|settings| {
        settings.http.trust_proxy = true;
        settings.http.allowed_hosts = vec!["api.example.com".into()];
    })
    .await;
    let request = |forwarded: &str| {
        app.anonymous(Method::GET, "/healthz")
            .header("host", "api.example.com")
            .header("x-forwarded-host", forwarded)
    };

    // Act
    let forged = send(request("evil.com")).await;
    let proxied = send(
        app.anonymous(Method::GET, "/healthz")
            .header("host", "internal:8000")
            .header("x-forwarded-host", "api.example.com"),
    )
    .await;

    // Assert
    assert_detail(forged, StatusCode::BAD_REQUEST, INVALID_HOST).await;
    assert_eq!(proxied.status(), StatusCode::OK);
}

#[actix_web::test]
async fn without_allowed_hosts_the_start_up_log_says_every_host_is_accepted() {
    // Arrange
    let database = TestDatabase::fresh();

    // Act
    let server = start_server(&database.url);
    let start_up = lines_until(&server.stderr, "station-api listening");

    // Assert
    assert!(
        start_up
            .iter()
            .any(|line| line.contains("every Host header is accepted")),
        "{start_up:#?}"
    );
}

#[actix_web::test]
async fn two_authorization_headers_are_a_bad_request_before_authentication() {
    // Arrange
    let app = spawn_app().await;
    let admin = basic_authorization(ADMIN);
    let cases = [
        (admin.clone(), admin.clone()),
        (admin.clone(), "Basic bm9ib2R5Om5vcGU=".to_owned()),
        ("Basic bm9ib2R5Om5vcGU=".to_owned(), admin.clone()),
    ];

    for (first, second) in cases {
        // Act
        let response = send(
            app.anonymous(Method::POST, "/station/")
                .header("authorization", first)
                .header("authorization", second)
                .json(&reading("Twice")),
        )
        .await;

        // Assert
        assert_detail(
            response,
            StatusCode::BAD_REQUEST,
            "Multiple Authorization headers.",
        )
        .await;
    }
    assert_eq!(app.all_stations().await.len(), 0);
}
