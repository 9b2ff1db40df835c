//! `GET /station/stream/`: every committed change as Server-Sent Events, resumable with
//! `Last-Event-ID` from the change log, filtered like the list.
//!
//! A subscriber first replays from the log what it missed (up to where the instance's feed had
//! delivered when it subscribed), then takes the live changes the feed puts in its mailbox (only
//! those its filter admits). One whose mailbox fills up while live is cut off: its client
//! reconnects with the last id it got and replays the rest from the log, so nothing is lost and
//! nothing is buffered without bound.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::stream;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use crate::api::guard::Session;
use crate::api::links::Origin;
use crate::api::query::QueryPairs;
use crate::api::stations::{Station, metadata};
use crate::changes::{Change, ChangeKind, ClientSlot, Overflowed};
use crate::db::change_repository;
use crate::domain::listing::{InvalidQuery, StationFilter, StationList};
use crate::error::{ApiError, ErrorDetail, QueryParameterErrors};

/// Where the stream is served.
pub const STREAM_PATH: &str = "/station/stream/";
/// What a browser waits before reconnecting, sent as the stream's first line (milliseconds).
const RECONNECT_AFTER_MS: u64 = 2000;
/// Changes replayed from the log per read.
const REPLAY_PAGE: i64 = 500;
/// The most live changes written in one chunk.
const CHANGES_PER_CHUNK: usize = 256;
/// How long a new subscriber waits for the feed to start before it gets a 503.
const FEED_START_PATIENCE: Duration = Duration::from_secs(5);

/// The stream's query parameters: where to resume, and the list's filters.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, dead_code)]
pub struct StreamParameters {
    /// Resume after this change id (as the `Last-Event-ID` header does; the header wins).
    #[param(minimum = 0, example = 0)]
    last_event_id: Option<i64>,
    /// Exactly this name.
    #[param(example = "CityName")]
    name: Option<String>,
    /// The name contains this text, ignoring ASCII case.
    name__icontains: Option<String>,
    /// Terms separated by spaces or commas; the name must contain each, ignoring ASCII case.
    search: Option<String>,
    /// Unix seconds, at or after.
    timestamp__gte: Option<i64>,
    /// Unix seconds, after.
    timestamp__gt: Option<i64>,
    /// Unix seconds, at or before.
    timestamp__lte: Option<i64>,
    /// Unix seconds, before.
    timestamp__lt: Option<i64>,
    /// Degrees Celsius, at least.
    temperature__gte: Option<f64>,
    /// Degrees Celsius, at most.
    temperature__lte: Option<f64>,
    /// Degrees north, at least.
    lat__gte: Option<f64>,
    /// Degrees north, at most.
    lat__lte: Option<f64>,
    /// Degrees east, at least.
    lon__gte: Option<f64>,
    /// Degrees east, at most.
    lon__lte: Option<f64>,
}

/// The `data` of a `deleted` event.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "url": "http://127.0.0.1:8000/station/1/"}))]
pub struct DeletedStation {
    /// The id the reading had.
    pub id: i64,
    /// The URL it had.
    #[schema(format = "uri")]
    pub url: String,
}

/// The `data` of a `reset` event.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"detail": "Changes after 12 are no longer kept. Re-read the list, then go on with this stream, which continues after change 40."}))]
pub struct StreamReset {
    /// What happened and what to do: re-read the list, then go on with this stream.
    pub detail: String,
}

/// Every change to the readings, live, as Server-Sent Events.
///
/// One event per committed change, in the order of their ids, each once: `id: <change id>`,
/// `event: created`, `updated` or `deleted`, and `data:` the reading as JSON (a `Station`; for
/// `deleted`, a `DeletedStation`: its `id` and `url`). Changes made through any instance sharing
/// the database are included. Without `Last-Event-ID` (or `last_event_id`) the stream starts
/// with the next change; with it, every change after that id is replayed from the change log
/// first, also after a restart. If changes after it are no longer kept
/// (`--change-log-retention-days`), the stream opens with `event: reset` (`data`: a
/// `StreamReset`; re-read the list) and goes on from the oldest change kept. The list's filters
/// apply (a delete by the values the reading had). A comment line (`: keep-alive`) comes at
/// least every 15 seconds. A client that cannot keep up is disconnected; it reconnects with the
/// last id it got and loses nothing. Past `--max-stream-clients`: 503 with `Retry-After`.
#[utoipa::path(
    get,
    path = "/station/stream/",
    operation_id = "stream_stations",
    tag = "station",
    params(
        StreamParameters,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event the client got (browsers send it when they reconnect): resume after it."),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream`: `retry: 2000`, then one event per change.",
            content((String = "text/event-stream", example = "retry: 2000\n\nid: 7\nevent: created\ndata: {\"url\":\"http://127.0.0.1:8000/station/1/\",\"id\":1,\"name\":\"CityName\",\"timestamp\":1393926310,\"temperature\":28.0,\"lat\":30.733315,\"lon\":76.779418}\n\nid: 8\nevent: deleted\ndata: {\"id\":1,\"url\":\"http://127.0.0.1:8000/station/1/\"}\n\n: keep-alive\n\n"))),
        (status = 400, description = "A filter has a bad value, or `Last-Event-ID` is not a change id.", body = QueryParameterErrors),
        (status = 503, description = "As many streams are open as the service allows, or the database cannot be reached; see `Retry-After`.", body = ErrorDetail),
    )
)]
pub async fn stream_stations(
    req: HttpRequest,
    query: QueryPairs,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let resume = resume_point(&req, &query)?;
    let mut invalid = InvalidQuery::default();
    // The list's filters; its ordering and paging do not apply to a stream.
    let list = StationList::parse(
        |name| (name != "ordering").then(|| query.last(name)).flatten(),
        &mut invalid,
    );
    if !invalid.is_empty() {
        return Err(ApiError::InvalidQuery(invalid));
    }
    let mut filter = list.filter;
    filter.station_bound = session
        .caller()
        .and_then(|caller| caller.bound_station.clone());
    let feed = Arc::clone(session.state().change_feed());
    let slot = feed
        .take_slot(filter.clone())
        .ok_or(ApiError::TooManyStreams)?;
    if !feed.wait_until_ready(FEED_START_PATIENCE).await {
        return Err(ApiError::Unavailable(
            "the change feed has not started".into(),
        ));
    }
    let delivered = slot.subscribe();
    // Also the caller's account check, before anything is sent.
    let pruned = session.read(change_repository::pruned_through).await?;
    let mut opening = format!("retry: {RECONNECT_AFTER_MS}\n\n");
    let start = match resume {
        None => delivered,
        Some(after) if after < pruned => {
            opening.push_str(&reset_event(
                pruned,
                &format!(
                    "Changes after {after} are no longer kept. Re-read the list, then go on \
                     with this stream, which continues after change {pruned}."
                ),
            ));
            pruned
        }
        Some(after) if after > delivered => {
            opening.push_str(&reset_event(
                delivered,
                &format!(
                    "There is no change {after} yet: the database may have been restored from \
                     an older copy. Re-read the list, then go on with this stream, which \
                     continues after change {delivered}."
                ),
            ));
            delivered
        }
        Some(after) => after,
    };
    let mut keep_alive = tokio::time::interval_at(
        tokio::time::Instant::now() + feed.settings().keep_alive,
        feed.settings().keep_alive,
    );
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let subscriber = Subscriber {
        closing: feed.closing(),
        session,
        filter,
        origin,
        sent_through: start,
        replay_through: (start < delivered).then_some(delivered),
        just_subscribed: true,
        keep_alive,
        cut_off: false,
        slot,
    };
    let first = stream::once(async move { Ok::<_, actix_web::Error>(Bytes::from(opening)) });
    let rest = stream::unfold(subscriber, |mut subscriber| async move {
        let chunk = subscriber.next_chunk().await?;
        Some((Ok::<_, actix_web::Error>(chunk), subscriber))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        // Never compressed: a compressor holds events back until its buffer fills.
        .insert_header((header::CONTENT_ENCODING, "identity"))
        // nginx would otherwise buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::StreamExt::chain(first, rest)))
}

/// Where to resume: `Last-Event-ID` (what a browser sends when it reconnects) over
/// `?last_event_id=` (what the first connection may have carried); `None` for neither.
fn resume_point(req: &HttpRequest, query: &QueryPairs) -> Result<Option<i64>, ApiError> {
    let mut headers = req.headers().get_all("last-event-id");
    let from_header = match (headers.next(), headers.next()) {
        (None, _) => None,
        (Some(value), None) => Some(value.to_str().map_err(|_| ApiError::MalformedLastEventId)?),
        (Some(_), Some(_)) => return Err(ApiError::MalformedLastEventId),
    };
    let Some(given) = from_header.or_else(|| query.last("last_event_id")) else {
        return Ok(None);
    };
    let given = given.trim();
    if given.is_empty() {
        // What a browser sends before it has seen an id: start with the next change.
        return Ok(None);
    }
    if !given.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::MalformedLastEventId);
    }
    given
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::MalformedLastEventId)
}

fn reset_event(id: i64, detail: &str) -> String {
    let data = serde_json::json!({ "detail": detail });
    format!("id: {id}\nevent: reset\ndata: {data}\n\n")
}

/// One stream's state between chunks.
struct Subscriber {
    session: Session,
    filter: StationFilter,
    origin: Origin,
    /// Every change up to here was sent (or filtered out).
    sent_through: i64,
    /// Replaying from the log up to here before going live.
    replay_through: Option<i64>,
    /// No live change taken since the last subscription: falling behind now means the replay
    /// took long, not that the client is slow.
    just_subscribed: bool,
    keep_alive: Interval,
    closing: watch::Receiver<bool>,
    /// Fell behind while live: the stream ends after what is in hand.
    cut_off: bool,
    /// Its place among the feed's clients, and the feed.
    slot: ClientSlot,
}

impl Subscriber {
    /// The next bytes to send; `None` ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.cut_off || *self.closing.borrow() {
                return None;
            }
            if let Some(through) = self.replay_through {
                // Boxed: kept inline, the replay's database call would make every idle
                // stream's future that much larger for the whole life of the stream.
                match Box::pin(self.replay_page(through)).await {
                    Ok(Some(chunk)) => return Some(chunk),
                    Ok(None) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "event stream cut short: the change log cannot be read");
                        return None;
                    }
                }
            }
            // What the feed has delivered since the last look; then sleep until more comes.
            let changes = match self.slot.mailbox().take(CHANGES_PER_CHUNK) {
                Ok(changes) => changes,
                Err(Overflowed) => {
                    self.fell_behind();
                    continue;
                }
            };
            if changes.is_empty() {
                tokio::select! {
                    biased;
                    _ = self.closing.changed() => return None,
                    () = self.slot.mailbox().arrival() => {}
                    _ = self.keep_alive.tick() => return Some(Bytes::from_static(b": keep-alive\n\n")),
                }
                continue;
            }
            let mut chunk = Vec::new();
            for change in &changes {
                self.take(change, Taken::Live, &mut chunk);
            }
            if !chunk.is_empty() {
                return Some(Bytes::from(chunk));
            }
        }
    }

    /// The feed got more than the buffer ahead of this subscriber. Right after subscribing that
    /// may be the replay's doing: subscribe again and replay the rest, once. Otherwise the
    /// client is too slow: end the stream.
    fn fell_behind(&mut self) {
        if self.just_subscribed {
            // Only once: a client too slow for the replay itself would otherwise be replayed to
            // for ever instead of being cut off.
            self.just_subscribed = false;
            self.replay_through = Some(self.slot.subscribe());
            return;
        }
        tracing::info!(
            sent_through = self.sent_through,
            "event stream client fell behind; disconnected (it resumes from the change log)"
        );
        self.cut_off = true;
    }

    /// Appends `change` to `chunk` when it is new to this subscriber and passes its filter.
    fn take(&mut self, change: &Change, taken: Taken, chunk: &mut Vec<u8>) {
        if change.id <= self.sent_through {
            return;
        }
        self.sent_through = change.id;
        if taken == Taken::Live {
            self.just_subscribed = false;
        }
        // The feed puts in the mailbox only what this filter admits: a live change was
        // checked there.
        if taken == Taken::Live || change.admitted_by(&self.filter) {
            chunk.extend_from_slice(&render(change, &self.origin));
        }
    }

    /// Sends the next page of the replay; `None` when there is nothing to send from it (the
    /// replay may have ended).
    async fn replay_page(&mut self, through: i64) -> Result<Option<Bytes>, ApiError> {
        let after = self.sent_through;
        let rows = self
            .session
            .read(move |conn| change_repository::after(conn, after, Some(through), REPLAY_PAGE))
            .await?;
        let read_all = i64::try_from(rows.len()).unwrap_or(i64::MAX) < REPLAY_PAGE;
        let mut chunk = Vec::new();
        for row in rows {
            if let Some(change) = Change::from_row(row) {
                self.take(&change, Taken::Replayed, &mut chunk);
            }
        }
        if read_all {
            self.sent_through = self.sent_through.max(through);
            self.replay_through = None;
        }
        Ok((!chunk.is_empty()).then(|| Bytes::from(chunk)))
    }
}

/// Where a subscriber took a change from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// The feed's live changes.
    Live,
    /// The change log, catching up.
    Replayed,
}

/// The event for `change`, with URLs under `origin`: written once per origin and shared.
fn render(change: &Change, origin: &Origin) -> Bytes {
    if let Some((cached_origin, bytes)) = change.rendered.get()
        && cached_origin == origin.as_str()
    {
        return bytes.clone();
    }
    let data = match change.kind {
        ChangeKind::Deleted => serde_json::to_string(&DeletedStation {
            id: change.reading.id,
            url: origin.station_url(change.reading.id),
        }),
        ChangeKind::Created | ChangeKind::Updated => {
            serde_json::to_string(&Station::from_row(change.reading.clone(), origin))
        }
    }
    .unwrap_or_else(|_| "{}".to_owned());
    let event = Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        change.id,
        change.kind.as_str()
    ));
    let _ = change
        .rendered
        .set((origin.as_str().to_owned(), event.clone()));
    event
}

/// OPTIONS on the stream.
pub async fn stream_options() -> HttpResponse {
    let mut body = metadata(
        "Station Stream",
        "Every change to the readings, live, as Server-Sent Events.",
        None,
    );
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "renders".to_owned(),
            serde_json::json!(["text/event-stream"]),
        );
        map.remove("parses");
    }
    HttpResponse::Ok().json(body)
}
