//! The benchmark's PostgreSQL ceiling: actix-web answering from PostgreSQL with one prepared
//! `tokio-postgres` statement per request on a pool of 8 connections, with no auth, no count,
//! no transaction control and no logging. `bench/run --postgres-url` measures it on the same
//! seeded database as the service, right before each PostgreSQL cell of the service, so the
//! ratio says what the service spends beyond the query itself.
//!
//! Serves what the benchmark's scenarios ask: `GET /station/{id}/`, `GET /station/` (the first
//! ten readings by id; any query string is ignored) and `POST /station/` (one JSON reading).
//!
//! With `--exclusive` each connection serves one request at a time, as a pool lends its
//! connections (r2d2, deadpool, bb8): what the ceiling gains from sending many requests'
//! statements down one connection at once, which no pooled connection does, is then measured
//! by the difference (`bench/pg_ceiling_modes.py`).
//!
//! Usage: `pg_ceiling --bind 127.0.0.1:PORT --database-url postgres://… [--workers N] [--exclusive]`

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, SemaphorePermit};
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

/// A worker's connections, taken in turn (each connection pipelines the queries sent to it), or
/// with `exclusive`, lent to one request at a time.
struct Pool {
    connections: Vec<Connection>,
    next: AtomicUsize,
    /// With `exclusive`: one permit per connection, and which connections are not lent.
    lending: Option<(Semaphore, Mutex<Vec<usize>>)>,
}

/// A connection taken from the pool; one lent for itself goes back when this drops.
struct Lease<'a> {
    pool: &'a Pool,
    index: usize,
    /// Held while the connection is lent; released after its index is back in the free list.
    permit: Option<SemaphorePermit<'a>>,
}

impl Lease<'_> {
    fn connection(&self) -> &Connection {
        &self.pool.connections[self.index]
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.permit.is_some()
            && let Some((_, free)) = &self.pool.lending
        {
            free.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(self.index);
        }
    }
}

impl Pool {
    async fn connect(
        url: &str,
        size: usize,
        exclusive: bool,
    ) -> Result<Self, tokio_postgres::Error> {
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
        let lending = exclusive.then(|| {
            (
                Semaphore::new(connections.len()),
                Mutex::new((0..connections.len()).collect()),
            )
        });
        Ok(Self {
            connections,
            next: AtomicUsize::new(0),
            lending,
        })
    }

    async fn take(&self) -> Lease<'_> {
        if let Some((permits, free)) = &self.lending
            // Never closed, and a permit stands for a free connection: neither fails.
            && let Ok(permit) = permits.acquire().await
            && let Some(index) = free
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop()
        {
            return Lease {
                pool: self,
                index,
                permit: Some(permit),
            };
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        Lease {
            pool: self,
            index: turn % self.connections.len(),
            permit: None,
        }
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
    let lease = pool.take().await;
    let connection = lease.connection();
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
    let lease = pool.take().await;
    let connection = lease.connection();
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
    let lease = pool.take().await;
    let connection = lease.connection();
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
    let exclusive = args.iter().any(|arg| arg == "--exclusive");
    HttpServer::new(move || {
        let url = database_url.clone();
        App::new()
            .data_factory(move || {
                let url = url.clone();
                async move { Pool::connect(&url, per_worker, exclusive).await }
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
