//! The benchmark's ceiling: actix-web alone answering with constant bodies of the same sizes as
//! station-api's, with no auth, no database and no logging. `bench/run` compares the service with
//! this server in the same run.
//!
//! Usage: `ceiling --bind 127.0.0.1:PORT [--workers N]`

use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};

const STATION: &str = r#"{"url":"http://127.0.0.1:8000/station/1234/","id":1234,"name":"station-1234","timestamp":1700001234,"temperature":21.5,"lat":59.91,"lon":10.75}"#;

fn page() -> String {
    let results: Vec<&str> = std::iter::repeat_n(STATION, 10).collect();
    format!(
        r#"{{"count":10000,"next":"http://127.0.0.1:8000/station/?page=2","previous":null,"results":[{}]}}"#,
        results.join(",")
    )
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let bind = value_of("--bind").unwrap_or_else(|| "127.0.0.1:8001".to_owned());
    let workers = value_of("--workers")
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let page = web::Bytes::from(page());
    HttpServer::new(move || {
        let page = page.clone();
        App::new()
            .route(
                "/station/",
                web::get().to(move || {
                    let page = page.clone();
                    async move {
                        HttpResponse::Ok()
                            .insert_header((header::CONTENT_TYPE, "application/json"))
                            .body(page)
                    }
                }),
            )
            .route(
                "/station/",
                web::post().to(|_body: web::Bytes| async {
                    HttpResponse::Created()
                        .insert_header((header::CONTENT_TYPE, "application/json"))
                        .insert_header((header::LOCATION, "http://127.0.0.1:8000/station/1234/"))
                        .body(STATION)
                }),
            )
            .route(
                "/station/{id}/",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .insert_header((header::CONTENT_TYPE, "application/json"))
                        .body(STATION)
                }),
            )
    })
    .workers(workers)
    .bind(bind)?
    .run()
    .await
}
