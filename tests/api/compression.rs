//! Compression by `Accept-Encoding`: JSON answers, exports and the OpenAPI document come gzip- or
//! brotli-compressed when the client asks, byte for byte the same once decompressed; nothing is
//! compressed for a client that does not ask, and a malformed header is ignored, never a 500.

use std::io::Read as _;

use reqwest::{Method, StatusCode};
use station_test_macros::backend_test;

use crate::helpers::{TestApp, header, reading, spawn_app};

/// `path` as the admin with `accept` and `encoding`: status, Content-Encoding, Vary and body.
async fn fetch(
    app: &TestApp,
    path: &str,
    accept: &str,
    encoding: Option<&str>,
) -> (StatusCode, Option<String>, String, Vec<u8>) {
    let mut request = app.admin(Method::GET, path).header("Accept", accept);
    if let Some(encoding) = encoding {
        request = request.header("Accept-Encoding", encoding);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_encoding = header(&response, "content-encoding");
    let vary = response
        .headers()
        .get_all("vary")
        .iter()
        .map(|value| value.to_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(", ");
    (
        status,
        content_encoding,
        vary,
        response.bytes().await.unwrap().to_vec(),
    )
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

async fn with_readings(count: usize) -> TestApp {
    let app = spawn_app().await;
    let readings: Vec<_> = (0..count)
        .map(|n| reading(&format!("Station {n}")))
        .collect();
    let created = app
        .admin(Method::POST, "/station/")
        .json(&readings)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    app
}

#[backend_test]
async fn json_csv_and_the_openapi_document_come_compressed_as_asked() {
    let app = with_readings(50).await;
    let cases = [
        ("/station/?page_size=50", "application/json"),
        ("/api-docs/openapi.json", "application/json"),
        // Streamed answers are compressed as they stream.
        ("/station/export/", "text/csv"),
        ("/station/export/", "application/x-ndjson"),
    ];
    for (path, accept) in cases {
        let (status, encoding, _, plain) = fetch(&app, path, accept, None).await;
        assert_eq!(status, StatusCode::OK, "{path} {accept}");
        assert_eq!(
            encoding, None,
            "nothing compressed unasked: {path} {accept}"
        );

        let (status, encoding, vary, gzipped) = fetch(&app, path, accept, Some("gzip")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(encoding.as_deref(), Some("gzip"), "{path} {accept}");
        assert!(vary.to_lowercase().contains("accept-encoding"), "{vary}");
        assert!(gzipped.len() < plain.len(), "{path} {accept}");
        assert_eq!(gunzip(&gzipped), plain, "{path} {accept}");

        let (_, encoding, _, brotlied) = fetch(&app, path, accept, Some("gzip;q=0.5, br")).await;
        assert_eq!(encoding.as_deref(), Some("br"), "{path} {accept}");
        assert_eq!(unbrotli(&brotlied), plain, "{path} {accept}");
    }
}

#[backend_test]
async fn errors_are_compressed_too_and_a_malformed_accept_encoding_is_ignored() {
    let app = with_readings(1).await;

    let (status, encoding, _, body) =
        fetch(&app, "/station/999999/", "application/json", Some("gzip")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(
        gunzip(&body),
        br#"{"detail":"No Station matches the given query."}"#
    );

    let (_, _, _, plain) = fetch(&app, "/station/", "application/json", None).await;
    for malformed in ["gzip;q=abc", ";;;, =", "br;q=", "gzip;q=2", "*;q=0.5;q=0.1"] {
        let (status, encoding, _, body) =
            fetch(&app, "/station/", "application/json", Some(malformed)).await;

        assert_eq!(status, StatusCode::OK, "{malformed:?}");
        let body = match encoding.as_deref() {
            None => body,
            Some("gzip") => gunzip(&body),
            Some("br") => unbrotli(&body),
            Some(other) => panic!("{malformed:?} gave {other}"),
        };
        assert_eq!(body, plain, "{malformed:?}");
    }
}
