//! `Expect: 100-continue`: a client is invited to send its body only once the request has passed
//! every check that needs no body, authentication and the size limit included.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::helpers::{ADMIN, basic_authorization, reading, spawn_app};
use crate::raw::{authority, has_final_response, read_until, send_head};

fn post_head(authorization: Option<&str>, length: usize) -> String {
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /station/ HTTP/1.1\r\nHost: localhost\r\n{authorization}\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\
         Expect: 100-continue\r\n\r\n"
    )
}

#[actix_web::test]
async fn an_unauthenticated_request_gets_its_401_without_being_invited_to_upload() {
    // Arrange
    let app = spawn_app().await;
    let mut stream = send_head(authority(&app.address), &post_head(None, 80)).await;

    // Act
    let received = read_until(&mut stream, Duration::from_secs(5), has_final_response).await;

    // Assert
    assert_eq!(received.status(), Some(401), "{}", received.text());
    assert!(
        !received.text().contains("100 Continue"),
        "{}",
        received.text()
    );
}

#[actix_web::test]
async fn an_oversized_body_gets_its_413_without_being_invited_to_upload() {
    // Arrange
    let app = spawn_app().await;
    let admin = basic_authorization(ADMIN);
    let mut stream = send_head(
        authority(&app.address),
        &post_head(Some(&admin), 10 * 1024 * 1024),
    )
    .await;

    // Act
    let received = read_until(&mut stream, Duration::from_secs(5), has_final_response).await;

    // Assert
    assert_eq!(received.status(), Some(413), "{}", received.text());
    assert!(
        !received.text().contains("100 Continue"),
        "{}",
        received.text()
    );
}

#[actix_web::test]
async fn an_admin_within_the_limit_is_invited_and_the_upload_is_stored() {
    // Arrange
    let app = spawn_app().await;
    let admin = basic_authorization(ADMIN);
    let body = reading("Continued").to_string();
    let mut stream = send_head(
        authority(&app.address),
        &post_head(Some(&admin), body.len()),
    )
    .await;

    // Act
    let invited = read_until(&mut stream, Duration::from_secs(5), |bytes| {
        bytes.ends_with(b"\r\n\r\n")
    })
    .await;
    stream.write_all(body.as_bytes()).await.unwrap();
    let answered = read_until(&mut stream, Duration::from_secs(5), has_final_response).await;

    // Assert
    assert_eq!(invited.text(), "HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(answered.status(), Some(201), "{}", answered.text());
    let stations: Vec<Value> = app.all_stations().await;
    assert_eq!(stations.len(), 1);
}
