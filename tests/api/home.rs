//! `/home/`: the page and its assets come from the binary, behind staff credentials unless
//! `--public-home`, which opens the page and the reads it makes and nothing else. (What the page
//! shows is tested in a real browser: `web/tests/`.)

use reqwest::{Method, StatusCode};
use station_test_macros::backend_test;

use crate::helpers::{TestApp, header, reading, send, spawn_app, spawn_app_with, text_body};
use crate::process::{run, text};

/// The `/home/assets/…` paths `page` loads (scripts, styles, icons).
fn asset_paths(page: &str) -> Vec<String> {
    page.split(['"', '\''])
        .filter(|part| part.starts_with("/home/assets/"))
        .map(str::to_owned)
        .collect()
}

#[backend_test]
async fn the_page_asks_for_staff_credentials_and_serves_everything_it_loads_itself() {
    let app = spawn_app().await;

    let anonymous = send(app.anonymous(Method::GET, "/home/")).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&anonymous, "www-authenticate").as_deref(),
        Some("Basic realm=\"station-api\"")
    );
    for path in ["/home/config.json", "/station/latest/", "/station/stream/"] {
        let response = send(app.anonymous(Method::GET, path)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }

    let response = send(app.admin(Method::GET, "/home/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/html")
    );
    let policy = header(&response, "content-security-policy").unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:;",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert_eq!(
        header(&response, "x-frame-options").as_deref(),
        Some("DENY")
    );
    let etag = header(&response, "etag").unwrap();
    let page = text_body(response).await;
    assert!(page.contains("<h1"), "{page}");

    let assets = asset_paths(&page);
    assert!(
        assets.iter().any(|path| path.ends_with(".js")),
        "{assets:?}"
    );
    assert!(
        assets.iter().any(|path| path.ends_with(".css")),
        "{assets:?}"
    );
    for path in &assets {
        let asset = send(app.admin(Method::GET, path)).await;
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        let expected = if path.ends_with(".js") {
            "text/javascript"
        } else if path.ends_with(".css") {
            "text/css"
        } else {
            ""
        };
        let content_type = header(&asset, "content-type").unwrap();
        assert!(content_type.starts_with(expected), "{path}: {content_type}");
        assert!(
            header(&asset, "cache-control")
                .unwrap()
                .contains("immutable")
        );
    }

    // Revalidation, and no file outside what was built.
    let unchanged = send(
        app.admin(Method::GET, "/home/")
            .header("If-None-Match", &etag),
    )
    .await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    let missing = send(app.admin(Method::GET, "/home/assets/nothing-here.js")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let escape = send(app.admin(Method::GET, "/home/assets/..%2F..%2FCargo.toml")).await;
    assert_eq!(escape.status(), StatusCode::NOT_FOUND);

    let config = send(app.admin(Method::GET, "/home/config.json")).await;
    assert_eq!(config.status(), StatusCode::OK);
    let config: serde_json::Value = config.json().await.unwrap();
    assert_eq!(config["map_tile_url"], serde_json::Value::Null);
    assert_eq!(config["reading_interval_seconds"], 10);
}

#[backend_test]
async fn a_viewer_who_is_not_staff_may_not_see_the_page() {
    let app = spawn_app().await;
    let response = send(app.viewer(Method::GET, "/home/")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[backend_test]
async fn a_public_home_opens_the_page_and_its_reads_and_nothing_else() {
    let app = spawn_app_with(|settings| settings.http.home.public = true).await;
    let created = app.create_station(&reading("Kitchen")).await;

    let page = send(app.anonymous(Method::GET, "/home/")).await;
    assert_eq!(page.status(), StatusCode::OK);
    for path in asset_paths(&text_body(page).await) {
        let asset = send(app.anonymous(Method::GET, &path)).await;
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
    }
    let latest: serde_json::Value = send(app.anonymous(Method::GET, "/station/latest/"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(latest["results"][0]["id"], created["id"]);
    let aggregate = send(app.anonymous(
        Method::GET,
        "/station/aggregate/?name=Kitchen&timestamp__gte=0&timestamp__lt=253402300799&interval=31536000",
    ))
    .await;
    assert_eq!(aggregate.status(), StatusCode::OK);
    let stream = send(app.anonymous(Method::GET, "/station/stream/")).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        header(&stream, "content-type").as_deref(),
        Some("text/event-stream")
    );
    drop(stream);

    // Everything else still needs credentials, and wrong ones are refused even here.
    assert_needs_credentials(&app, Method::GET, "/station/").await;
    assert_needs_credentials(&app, Method::GET, &format!("/station/{}/", created["id"])).await;
    assert_needs_credentials(&app, Method::GET, "/station/export/").await;
    assert_needs_credentials(&app, Method::GET, "/tokens/").await;
    let write = send(
        app.anonymous(Method::POST, "/station/")
            .json(&reading("Intruder")),
    )
    .await;
    assert_eq!(write.status(), StatusCode::UNAUTHORIZED);
    let wrong = send(
        app.anonymous(Method::GET, "/home/")
            .basic_auth("admin", Some("not-the-password")),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

async fn assert_needs_credentials(app: &TestApp, method: Method, path: &str) {
    let response = send(app.anonymous(method, path)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
}

#[backend_test]
async fn map_tiles_are_offered_to_the_page_and_allowed_by_its_policy() {
    let tiles =
        station_api::api::home::parse_tile_url("https://tile.openstreetmap.org/{z}/{x}/{y}.png")
            .unwrap();
    let app = spawn_app_with(move |settings| {
        settings.http.home.map_tiles = Some(station_api::config::MapTiles {
            attribution: "© OpenStreetMap contributors".to_owned(),
            ..tiles
        });
    })
    .await;

    let page = send(app.admin(Method::GET, "/home/")).await;
    let policy = header(&page, "content-security-policy").unwrap();
    assert!(
        policy.contains("img-src 'self' data: https://tile.openstreetmap.org;"),
        "{policy}"
    );
    let config: serde_json::Value = send(app.admin(Method::GET, "/home/config.json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        config["map_tile_url"],
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    );
    assert_eq!(config["map_attribution"], "© OpenStreetMap contributors");
}

#[backend_test]
async fn the_page_and_its_scripts_are_compressed() {
    let app = spawn_app().await;
    let page = text_body(send(app.admin(Method::GET, "/home/")).await).await;
    let script = asset_paths(&page)
        .into_iter()
        .find(|path| path.ends_with(".js"))
        .unwrap();
    for encoding in ["gzip", "br"] {
        let response = send(
            app.admin(Method::GET, &script)
                .header("Accept-Encoding", encoding),
        )
        .await;
        assert_eq!(
            header(&response, "content-encoding").as_deref(),
            Some(encoding)
        );
    }
}

#[test]
fn a_tile_url_that_is_not_a_template_is_refused_at_start() {
    for bad in [
        "https://tile.example/{z}/{x}.png",
        "https://tile.example/{z}/{x}/{y}.png; script-src *",
    ] {
        let output = run("sqlite::memory:", &["serve", "--map-tile-url", bad], "");
        let error = text(&output.stderr);

        assert_eq!(output.status.code(), Some(2), "{error}");
        assert!(error.contains("is not a tile URL template"), "{error}");
    }
}
