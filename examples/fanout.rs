//! The event stream's fan-out benchmark client (`bench/run --fanout` runs it; see bench/README.md).
//!
//! `deliver` opens `--clients` streams on `GET /station/stream/`, measures the server's RSS
//! before and after (the memory an idle subscriber costs), then posts readings at `--rate` a
//! second for `--seconds` and records, for every client and every reading, the time from the
//! 201 reaching the poster to the event reaching the client. It prints one JSON object: whether
//! every client got every reading exactly once and in order, and the delivery latencies.
//!
//! `idle` opens `--clients` streams filtered to a station nobody posts to, prints `connected`
//! and holds them until its standard input closes: the load `bench/run --fanout` measures the
//! plain API beside.
//!
//! ```text
//! fanout deliver --url http://127.0.0.1:8000 --auth "Basic …" --server-pid 1234
//! fanout idle --url http://127.0.0.1:8000 --auth "Basic …" --clients 1000
//! ```

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

/// What the command line asked for.
struct Options {
    mode: String,
    url: String,
    auth: String,
    clients: usize,
    rate: u32,
    seconds: u64,
    server_pid: Option<u32>,
    idle_name: String,
}

fn options() -> Result<Options, String> {
    let mut arguments = std::env::args().skip(1);
    let mode = arguments
        .next()
        .ok_or("usage: fanout deliver|idle --url URL --auth HEADER …")?;
    let mut options = Options {
        mode,
        url: String::new(),
        auth: String::new(),
        clients: 1000,
        rate: 200,
        seconds: 10,
        server_pid: None,
        idle_name: "fanout-idle".to_owned(),
    };
    while let Some(flag) = arguments.next() {
        let value = arguments.next().ok_or(format!("{flag} needs a value"))?;
        let number = |value: &str| value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => options.url = value.trim_end_matches('/').to_owned(),
            "--auth" => options.auth = value,
            "--clients" => options.clients = number(&value)? as usize,
            "--rate" => options.rate = number(&value)? as u32,
            "--seconds" => options.seconds = number(&value)?,
            "--server-pid" => options.server_pid = Some(number(&value)? as u32),
            "--idle-name" => options.idle_name = value,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.url.is_empty() {
        return Err("--url is required".to_owned());
    }
    Ok(options)
}

/// The server's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The reading ids of the events in `events` (complete events, separated by blank lines), with
/// the bytes of an unfinished last event left in the buffer.
fn take_events(buffer: &mut Vec<u8>, into: &mut Vec<i64>) {
    let mut consumed = 0;
    while let Some(end) = find(&buffer[consumed..], b"\n\n") {
        let event = &buffer[consumed..consumed + end];
        // A created event's data: {"url":…,"id":N,…}; keep-alives and `retry:` have no id.
        if let Some(at) = find(event, b",\"id\":") {
            let digits: Vec<u8> = event[at + 6..]
                .iter()
                .copied()
                .take_while(u8::is_ascii_digit)
                .collect();
            if let Some(id) = std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.parse().ok())
            {
                into.push(id);
            }
        }
        consumed += end + 2;
    }
    buffer.drain(..consumed);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// What one stream got: the reading id of each event and when its chunk arrived.
type Arrivals = Arc<Mutex<Vec<(i64, Instant)>>>;

/// One stream, recording into `arrivals` until it ends or `stop` is set. `opened` gets a permit
/// once the stream has answered (or failed to).
async fn subscribe(
    client: reqwest::Client,
    url: String,
    auth: String,
    opened: Arc<Semaphore>,
    arrivals: Arrivals,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let response = client
        .get(url)
        .header("Authorization", auth)
        .header("Accept", "text/event-stream")
        .send()
        .await;
    opened.add_permits(1);
    let mut response = response.map_err(|e| e.to_string())?;
    if response.status() != 200 {
        return Err(format!("the stream answered {}", response.status()));
    }
    let mut buffer = Vec::new();
    let mut ids = Vec::new();
    loop {
        let chunk = tokio::select! {
            _ = stop.changed() => return Ok(()),
            chunk = response.chunk() => chunk.map_err(|e| e.to_string())?,
        };
        let Some(chunk) = chunk else {
            return Err("the server ended the stream".to_owned());
        };
        let now = Instant::now();
        buffer.extend_from_slice(&chunk);
        take_events(&mut buffer, &mut ids);
        if let Ok(mut arrivals) = arrivals.lock() {
            arrivals.extend(ids.drain(..).map(|id| (id, now)));
        }
    }
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Open streams, each recording what it gets, until `stop` is set.
struct Streams {
    tasks: Vec<tokio::task::JoinHandle<Result<(), String>>>,
    arrivals: Vec<Arrivals>,
    stop: watch::Sender<bool>,
}

impl Streams {
    /// Opens `options.clients` streams on `/station/stream/{query}`, a hundred at a time (so the
    /// listen backlog is never the limit), and waits until every one has answered.
    async fn open(options: &Options, query: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| e.to_string())?;
        let opened = Arc::new(Semaphore::new(0));
        let (stop, stopped) = watch::channel(false);
        let mut streams = Streams {
            tasks: Vec::with_capacity(options.clients),
            arrivals: Vec::with_capacity(options.clients),
            stop,
        };
        let mut started = 0;
        while started < options.clients {
            let batch = (options.clients - started).min(100);
            for _ in 0..batch {
                let arrivals = Arrivals::default();
                streams.arrivals.push(Arc::clone(&arrivals));
                streams.tasks.push(tokio::spawn(subscribe(
                    client.clone(),
                    format!("{}/station/stream/{query}", options.url),
                    options.auth.clone(),
                    Arc::clone(&opened),
                    arrivals,
                    stopped.clone(),
                )));
            }
            started += batch;
            tokio::time::timeout(Duration::from_secs(60), opened.acquire_many(batch as u32))
                .await
                .map_err(|_| "streams did not open within 60 s".to_owned())?
                .map_err(|e| e.to_string())?
                .forget();
        }
        if let Some(failed) = streams.tasks.iter().position(|task| task.is_finished()) {
            let task = streams.tasks.swap_remove(failed);
            let outcome = task.await.map_err(|e| e.to_string())?;
            return Err(format!("a stream failed to open: {outcome:?}"));
        }
        Ok(streams)
    }

    /// Ends every stream; each one's arrivals, or the first error a stream met.
    async fn close(self) -> Result<Vec<Vec<(i64, Instant)>>, String> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok(self
            .arrivals
            .into_iter()
            .map(|arrivals| arrivals.lock().map(|a| a.clone()).unwrap_or_default())
            .collect())
    }
}

async fn idle(options: Options) -> Result<(), String> {
    let streams = Streams::open(&options, &format!("?name={}", options.idle_name)).await?;
    println!("connected {}", streams.tasks.len());
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .map_err(|e| e.to_string())?;
    let got: usize = streams.close().await?.iter().map(Vec::len).sum();
    if got > 0 {
        return Err(format!(
            "the idle streams got {got} events; their filter should admit none"
        ));
    }
    Ok(())
}

async fn deliver(options: Options) -> Result<(), String> {
    let poster = reqwest::Client::new();
    let post = |n: u64| {
        let body = serde_json::json!({
            "name": format!("fanout-{}", n % 10),
            "timestamp": 1_700_000_000 + n as i64,
            "temperature": 20.5,
            "lat": 59.91,
            "lon": 10.75,
        });
        poster
            .post(format!("{}/station/", options.url))
            .header("Authorization", &options.auth)
            .json(&body)
            .send()
    };
    // One create first, so the baseline RSS has what serving a request allocates.
    post(0).await.map_err(|e| e.to_string())?;
    let pid = options.server_pid;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = pid.map(rss_kib).unwrap_or(0);
    let streams = Streams::open(&options, "").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = pid.map(rss_kib).unwrap_or(0);

    let acknowledged: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let total = u64::from(options.rate) * options.seconds;
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / options.rate);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut posts = Vec::with_capacity(total as usize);
    for n in 1..=total {
        ticker.tick().await;
        let request = post(n);
        let acknowledged = Arc::clone(&acknowledged);
        let failures = Arc::clone(&failures);
        posts.push(tokio::spawn(async move {
            let outcome = match request.await {
                Ok(response) if response.status() == 201 => {
                    let at = Instant::now();
                    match response.json::<serde_json::Value>().await {
                        Ok(body) => body["id"]
                            .as_i64()
                            .map(|id| (id, at))
                            .ok_or_else(|| format!("a 201 without an id: {body}")),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Ok(response) => Err(format!("create answered {}", response.status())),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok((id, at)) => {
                    if let Ok(mut acknowledged) = acknowledged.lock() {
                        acknowledged.insert(id, at);
                    }
                }
                Err(failure) => {
                    if let Ok(mut failures) = failures.lock() {
                        failures.push(failure);
                    }
                }
            }
        }));
    }
    for post in posts {
        post.await.map_err(|e| e.to_string())?;
    }
    let posting_seconds = started.elapsed().as_secs_f64();
    let rss_busy = pid.map(rss_kib).unwrap_or(0);
    // Let the last events arrive, then end the streams and look at what each got.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = streams.close().await?;
    let acknowledged = acknowledged.lock().map(|m| m.clone()).unwrap_or_default();
    let mut expected: Vec<i64> = acknowledged.keys().copied().collect();
    expected.sort_unstable();
    let mut complete = 0;
    let mut latencies_us = Vec::with_capacity(expected.len() * received.len());
    let mut before_201 = 0u64;
    for arrivals in &received {
        let ids: Vec<i64> = arrivals.iter().map(|(id, _)| *id).collect();
        if ids == expected {
            complete += 1;
        }
        for (id, at) in arrivals {
            if let Some(acknowledged_at) = acknowledged.get(id) {
                if at < acknowledged_at {
                    before_201 += 1;
                }
                latencies_us
                    .push(at.saturating_duration_since(*acknowledged_at).as_micros() as u64);
            }
        }
    }
    latencies_us.sort_unstable();
    let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    let report = serde_json::json!({
        "clients": received.len(),
        "readings_posted": total,
        "readings_acknowledged": expected.len(),
        "post_failures": failures.len(),
        "first_post_failure": failures.first(),
        "posting_seconds": posting_seconds,
        "clients_with_every_reading_once_in_order": complete,
        "deliveries": latencies_us.len(),
        "deliveries_expected": expected.len() * received.len(),
        "deliveries_before_their_201": before_201,
        "latency_ms_p50": percentile(&latencies_us, 0.50) as f64 / 1000.0,
        "latency_ms_p99": percentile(&latencies_us, 0.99) as f64 / 1000.0,
        "latency_ms_max": latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        "server_rss_kib_before": rss_before,
        "server_rss_kib_idle_clients": rss_idle,
        "server_rss_kib_after_posting": rss_busy,
        "rss_kib_per_idle_client": (rss_idle as f64 - rss_before as f64) / received.len().max(1) as f64,
    });
    println!("{report}");
    Ok(())
}

fn main() -> Result<(), String> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match options.mode.as_str() {
        "deliver" => runtime.block_on(deliver(options)),
        "idle" => runtime.block_on(idle(options)),
        other => Err(format!("unknown mode {other}: deliver or idle")),
    }
}
