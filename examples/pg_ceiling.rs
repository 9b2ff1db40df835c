//! The benchmark's PostgreSQL ceiling: actix-web answering from PostgreSQL with one prepared
//! `tokio-postgres` statement per request on a pool of 8 connections, with no auth, no count,
//! no transaction control and no logging. `bench/run --postgres-url` measures it on the same
//! seeded database as the service, right before each PostgreSQL cell of the service, so the
//! ratio says what the service spends beyond the query itself.
//!
//! Serves what the benchmark's scenarios ask: `GET /station/{id}/`, `GET /station/` (the first
//! ten readings by id; any query string is ignored) and `POST /station/` (one JSON reading).
//!
//! Usage: `pg_ceiling --bind 127.0.0.1:PORT --database-url postgres://… [--workers N]`

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls, Row, Statement};

/// Connections in all, shared out among the workers.
const POOL_SIZE: usize = 8;

const RETRIEVE: &str =
    "SELECT id, name, timestamp, temperature, lat, lon FROM station WHERE id = $1";
const FIRST_PAGE: &str =
    "SELECT id, name, timestamp, temperature, lat, lon FROM station ORDER BY id LIMIT 10";
const INSERT: &str = "INSERT INTO station (name, timestamp, temperature, lat, lon) \
    VALUES ($1, $2, $3, $4, $5) RETURNING id, name, timestamp, temperature, lat, lon";

/// One connection and its prepared statements.
struct Connection {
    client: Client,
    retrieve: Statement,
    first_page: Statement,
    insert: Statement,
}

/// A worker's connections, taken in turn (each connection pipelines the queries sent to it).
struct Pool {
    connections: Vec<Connection>,
    next: AtomicUsize,
}

impl Pool {
    async fn connect(url: &str, size: usize) -> Result<Self, tokio_postgres::Error> {
        let mut connections = Vec::with_capacity(size);
        for _ in 0..size {
            let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
            // The connection's I/O runs on this worker's runtime, as a pool made per worker does.
            actix_web::rt::spawn(async move {
                if let Err(error) = connection.await {
                    eprintln!("pg_ceiling: connection ended: {error}");
                }
            });
            connections.push(Connection {
                retrieve: client.prepare(RETRIEVE).await?,
                first_page: client.prepare(FIRST_PAGE).await?,
                insert: client.prepare(INSERT).await?,
                client,
            });
        }
        Ok(Self {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    fn take(&self) -> &Connection {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.connections[turn % self.connections.len()]
    }
}

/// A reading as the service renders it, `url` first.
#[derive(Serialize)]
struct Reading {
    url: String,
    id: i64,
    name: String,
    timestamp: i64,
    temperature: f64,
    lat: f64,
    lon: f64,
}

impl Reading {
    fn of(row: &Row, origin: &str) -> Self {
        let id: i64 = row.get(0);
        Self {
            url: format!("{origin}/station/{id}/"),
            id,
            name: row.get(1),
            timestamp: row.get(2),
            temperature: row.get(3),
            lat: row.get(4),
            lon: row.get(5),
        }
    }
}

/// A page without a count: the ceiling reads no count.
#[derive(Serialize)]
struct Page {
    next: String,
    previous: Option<String>,
    results: Vec<Reading>,
}

/// What a create sends.
#[derive(Deserialize)]
struct NewReading {
    name: String,
    timestamp: i64,
    temperature: f64,
    lat: f64,
    lon: f64,
}

fn origin(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn failed(error: &tokio_postgres::Error) -> HttpResponse {
    HttpResponse::ServiceUnavailable().body(error.to_string())
}

async fn retrieve(req: HttpRequest, id: web::Path<i64>, pool: web::Data<Pool>) -> HttpResponse {
    let connection = pool.take();
    match connection
        .client
        .query_opt(&connection.retrieve, &[&id.into_inner()])
        .await
    {
        Ok(Some(row)) => HttpResponse::Ok().json(Reading::of(&row, &origin(&req))),
        Ok(None) => HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(r#"{"detail":"Not found."}"#),
        Err(error) => failed(&error),
    }
}

async fn first_page(req: HttpRequest, pool: web::Data<Pool>) -> HttpResponse {
    let connection = pool.take();
    match connection.client.query(&connection.first_page, &[]).await {
        Ok(rows) => {
            let origin = origin(&req);
            HttpResponse::Ok().json(Page {
                next: format!("{origin}/station/?page=2"),
                previous: None,
                results: rows.iter().map(|row| Reading::of(row, &origin)).collect(),
            })
        }
        Err(error) => failed(&error),
    }
}

async fn create(
    req: HttpRequest,
    reading: web::Json<NewReading>,
    pool: web::Data<Pool>,
) -> HttpResponse {
    let connection = pool.take();
    let reading = reading.into_inner();
    let inserted = connection
        .client
        .query_one(
            &connection.insert,
            &[
                &reading.name,
                &reading.timestamp,
                &reading.temperature,
                &reading.lat,
                &reading.lon,
            ],
        )
        .await;
    match inserted {
        Ok(row) => {
            let created = Reading::of(&row, &origin(&req));
            HttpResponse::Created()
                .insert_header((header::LOCATION, created.url.clone()))
                .json(created)
        }
        Err(error) => failed(&error),
    }
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
    let bind = value_of("--bind").unwrap_or_else(|| "127.0.0.1:8002".to_owned());
    let Some(database_url) = value_of("--database-url") else {
        eprintln!("pg_ceiling: --database-url postgres://… is required");
        std::process::exit(2);
    };
    let workers = value_of("--workers")
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let per_worker = POOL_SIZE.div_ceil(workers).max(1);
    HttpServer::new(move || {
        let url = database_url.clone();
        App::new()
            .data_factory(move || {
                let url = url.clone();
                async move { Pool::connect(&url, per_worker).await }
            })
            .route("/station/", web::get().to(first_page))
            .route("/station/", web::post().to(create))
            .route("/station/{id}/", web::get().to(retrieve))
    })
    .workers(workers)
    .bind(bind)?
    .run()
    .await
}
