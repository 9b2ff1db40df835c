//! Headers and hosts: security headers on every answer, allowed `Host` values, and requests
//! with more than one `Authorization` header.

use reqwest::{Method, StatusCode};

use crate::helpers::{header, send, spawn_app, text_body};

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
