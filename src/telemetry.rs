//! Logging setup: `tracing` events to standard error, filtered by `RUST_LOG` (default `info`).
//!
//! Lines are not written by the request that logs them: each is appended to one shared buffer,
//! which a background thread writes out shortly after (within [`FLUSH_EVERY`]), in order. A
//! request pays for formatting its line and copying it, not for a `write` system call (a quarter
//! of the retrieve benchmark's time when every request made one) nor for waking a thread per
//! line. A writer that finds the buffer past [`MOST_BUFFERED`] writes it out itself, so a slow
//! destination slows logging down instead of growing memory or dropping lines.
//! `tracing-appender`'s non-blocking writer, which hands each line to its thread separately, was
//! slower under `bench/run` (bench/README.md, "The log writer").
//!
//! What clients get wrong (requests actix-http cannot parse) is logged at WARN and rate-limited,
//! never at ERROR: see [`CLIENT_ERROR_TARGET`].
//!
//! Lines are formatted by [`LineFormat`]: the layout of `tracing-subscriber`'s default (time,
//! level, target, message, `key=value` fields), written directly instead of through its layers of
//! styled `Display` wrappers, which took a tenth of a request's instructions (callgrind).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::fmt::{FmtContext, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The longest a logged line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How much the buffer holds before a writer writes it out itself.
pub const MOST_BUFFERED: usize = 2 * 1024 * 1024;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event ([`LineFormat`]).
    #[default]
    Text,
    /// One JSON object per line, with the request span's fields (tracing-subscriber's JSON).
    Json,
}

/// Installs the global subscriber; call once, first thing in `main`, and keep the guard until
/// the process ends: dropping it writes out what is still buffered.
pub fn init(format: LogFormat) -> FlushOnDrop {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (log, guard) = BufferedLog::start(std::io::stderr());
    install_panic_hook(Arc::clone(&log.shared));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(log);
    match format {
        LogFormat::Text => subscriber.event_format(LineFormat).init(),
        LogFormat::Json => subscriber
            .event_format(JsonFormat(
                format::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ))
            .fmt_fields(format::JsonFields::new())
            .init(),
    }
    guard
}

// ---------------------------------------------------------------------------------------------
// Which request a thread is serving, for the report of a panic

/// A client's request id, if it is one that can be logged and echoed as it is: 1 to 128 visible
/// ASCII characters.
pub fn sane_request_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())).then_some(id)
}

/// A request as a panic report names it: method, path (never the query string, which may hold
/// secrets) and the client's request id, if it sent a sane one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLabel(Arc<str>);

impl RequestLabel {
    /// The label of a request.
    pub fn new(method: &str, path: &str, request_id: Option<&str>) -> Self {
        let label = match request_id.and_then(sane_request_id) {
            Some(id) => format!("method={method} path={path:?} request_id={id:?}"),
            None => format!("method={method} path={path:?}"),
        };
        Self(label.into())
    }
}

thread_local! {
    static SERVING: std::cell::RefCell<Option<RequestLabel>> = const { std::cell::RefCell::new(None) };
}

/// The request this thread is working for, if any.
pub fn current_request() -> Option<RequestLabel> {
    SERVING
        .try_with(|serving| serving.borrow().clone())
        .ok()
        .flatten()
}

/// Marks this thread as working for `request` until the guard is dropped, when the previous
/// mark comes back. Request futures set it around each poll; query threads around each query.
pub fn serving(request: Option<RequestLabel>) -> ServingGuard {
    let previous = SERVING
        .try_with(|serving| serving.replace(request))
        .ok()
        .flatten();
    ServingGuard { previous }
}

/// Restores the previous request mark when dropped.
pub struct ServingGuard {
    previous: Option<RequestLabel>,
}

impl Drop for ServingGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = SERVING.try_with(|serving| serving.replace(previous));
    }
}

/// Logs every panic at once, synchronously and flushed, after the lines still buffered, with the
/// request the thread was serving; then lets the previous hook (the standard message) run. A
/// panic that aborts the process, or kills a thread nobody watches, is no longer lost with the
/// last 50 ms of log lines, and it names its request.
fn install_panic_hook(shared: Arc<Shared>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(not a string)".to_owned());
        let location = info.location().map(ToString::to_string);
        let line = panic_line(
            std::time::SystemTime::now(),
            current_request().as_ref(),
            std::thread::current().name(),
            &message,
            location.as_deref(),
        );
        shared.write_now(line.as_bytes());
        previous(info);
    }));
}

/// The log line reporting a panic.
fn panic_line(
    time: std::time::SystemTime,
    request: Option<&RequestLabel>,
    thread: Option<&str>,
    message: &str,
    location: Option<&str>,
) -> String {
    use std::fmt::Write as _;

    let mut line = String::new();
    let _ = write_utc_timestamp(&mut line, time);
    let _ = write!(
        line,
        " ERROR {}: panic {} thread={:?} location={:?} message={message:?}",
        module_path!(),
        request.map_or("request=-", |label| &label.0),
        thread.unwrap_or("-"),
        location.unwrap_or("-"),
    );
    line.push('\n');
    line
}

/// One line per event: `2026-12-01T19:43:58.193502Z  INFO request{id="7f3a…"}: target: message
/// key=value …`, the spans the event happened in (a request's, with its id) before the target,
/// as tracing-subscriber's default shows them. String values are written quoted and escaped
/// (`{:?}`), so a value can never break a line.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let metadata = event.metadata();
        let Some((level, suppressed)) = client_error_budget(event) else {
            return Ok(());
        };
        write_utc_timestamp(&mut writer, std::time::SystemTime::now())?;
        write!(writer, " {:>5}", level.as_str())?;
        if let Some(scope) = context.event_scope() {
            for span in scope.from_root() {
                write!(writer, " {}", span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_char(':')?;
            }
        }
        write!(writer, " {}:", metadata.target())?;
        event.record(&mut FieldWriter {
            writer: &mut writer,
            result: Ok(()),
        });
        if suppressed > 0 {
            write!(writer, " suppressed_since_last={suppressed}")?;
        }
        writeln!(writer)
    }
}

/// The level to write `event` at, and how many like it were left out before it; `None` when it
/// is to be left out. Only what [`CLIENT_ERROR_TARGET`] logs is changed.
fn client_error_budget(event: &tracing::Event<'_>) -> Option<(tracing::Level, u64)> {
    let metadata = event.metadata();
    let level = *metadata.level();
    if metadata.target() == CLIENT_ERROR_TARGET && level == tracing::Level::ERROR {
        let left_out = CLIENT_ERRORS.admit(std::time::Instant::now())?;
        return Some((tracing::Level::WARN, left_out));
    }
    Some((level, 0))
}

/// tracing-subscriber's JSON lines, with the client errors [`client_error_budget`] rewrites
/// written by hand at their new level.
pub struct JsonFormat(format::Format<format::Json>);

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        match client_error_budget(event) {
            None => Ok(()),
            Some((level, suppressed)) if level != *event.metadata().level() => {
                let mut message = String::new();
                event.record(&mut FieldWriter {
                    writer: &mut format::Writer::new(&mut message),
                    result: Ok(()),
                });
                let mut timestamp = String::new();
                write_utc_timestamp(&mut timestamp, std::time::SystemTime::now())?;
                let line = serde_json::json!({
                    "timestamp": timestamp,
                    "level": level.as_str(),
                    "target": event.metadata().target(),
                    "message": message.trim_start(),
                    "suppressed_since_last": suppressed,
                });
                writeln!(writer, "{line}")
            }
            Some(_) => self.0.format_event(context, writer, event),
        }
    }
}

/// Where actix-http logs, at ERROR, what a client did wrong: a request it could not parse
/// ("stream error: request parse error: …"), a connection reset mid-request, a client too slow to
/// take its answer. A client can send those as fast as it likes, and none is our failure: they
/// are written as WARN, and at most [`CLIENT_ERRORS_PER_WINDOW`] per [`CLIENT_ERROR_WINDOW`].
const CLIENT_ERROR_TARGET: &str = "actix_http::h1::dispatcher";
/// How many client errors are logged per window.
pub const CLIENT_ERRORS_PER_WINDOW: u32 = 10;
/// The window client errors are counted in.
pub const CLIENT_ERROR_WINDOW: Duration = Duration::from_secs(10);

static CLIENT_ERRORS: LogBudget = LogBudget::new(CLIENT_ERRORS_PER_WINDOW, CLIENT_ERROR_WINDOW);

/// Lets a few lines of a kind through per window and counts the rest.
struct LogBudget {
    per_window: u32,
    window: Duration,
    state: Mutex<BudgetState>,
}

#[derive(Default)]
struct BudgetState {
    window_start: Option<std::time::Instant>,
    written: u32,
    left_out: u64,
}

impl LogBudget {
    const fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            state: Mutex::new(BudgetState {
                window_start: None,
                written: 0,
                left_out: 0,
            }),
        }
    }

    /// `None` if a line at `now` is over budget; otherwise how many were left out since the last
    /// line written.
    fn admit(&self, now: std::time::Instant) -> Option<u64> {
        let mut state = lock(&self.state);
        let expired = state
            .window_start
            .is_none_or(|start| now.duration_since(start) >= self.window);
        if expired {
            state.window_start = Some(now);
            state.written = 0;
        }
        if state.written >= self.per_window {
            state.left_out += 1;
            return None;
        }
        state.written += 1;
        Some(std::mem::take(&mut state.left_out))
    }
}

/// Writes an event's fields: the message as it is, the others as ` key=value`.
struct FieldWriter<'w, 'a> {
    writer: &'w mut format::Writer<'a>,
    result: std::fmt::Result,
}

impl Visit for FieldWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = if field.name() == "message" {
                write!(self.writer, " {value}")
            } else {
                write!(self.writer, " {}={value:?}", field.name())
            };
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.result.is_ok() {
            self.result = if field.name() == "message" {
                write!(self.writer, " {value:?}")
            } else {
                write!(self.writer, " {}={value:?}", field.name())
            };
        }
    }
}

/// `time` as RFC 3339 in UTC with microseconds, as `tracing-subscriber` writes it.
fn write_utc_timestamp(
    writer: &mut impl std::fmt::Write,
    time: std::time::SystemTime,
) -> std::fmt::Result {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let in_day = seconds % 86_400;
    write!(
        writer,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
        since_epoch.subsec_micros()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// What the buffer and its flusher share.
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when the buffer stops being empty, and when closing.
    filled: Condvar,
    /// Held while writing out, so buffers reach the destination in the order they filled.
    destination: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closing: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Log lines are plain bytes: a panic while one was being appended leaves nothing to repair.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes out everything buffered, then `line`, now. For a panic: should the panicking
    /// thread hold a lock of the log's (a panic while writing a line), it is waited for only
    /// briefly and the line goes straight to standard error instead.
    fn write_now(&self, line: &[u8]) {
        let patience = std::time::Instant::now() + Duration::from_millis(200);
        loop {
            match self.destination.try_lock() {
                Ok(mut destination) => {
                    if let Ok(mut pending) = self.pending.try_lock() {
                        let lines = std::mem::take(&mut pending.lines);
                        drop(pending);
                        let _ = destination.write_all(&lines);
                    }
                    let _ = destination.write_all(line);
                    let _ = destination.flush();
                    return;
                }
                Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                    let mut destination = poisoned.into_inner();
                    let _ = destination.write_all(line);
                    let _ = destination.flush();
                    return;
                }
                Err(std::sync::TryLockError::WouldBlock)
                    if std::time::Instant::now() < patience =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    let _ = std::io::stderr().write_all(line);
                    return;
                }
            }
        }
    }

    /// Writes out everything buffered so far.
    fn flush(&self) {
        let mut destination = lock(&self.destination);
        let lines = std::mem::take(&mut lock(&self.pending).lines);
        if !lines.is_empty() {
            // Nowhere to report a failure to write the log; the next lines will try again.
            let _ = destination.write_all(&lines);
            let _ = destination.flush();
        }
    }

    /// The flusher thread: waits for lines, lets more gather, writes them out; until closed.
    fn flush_until_closed(&self) {
        loop {
            {
                let mut pending = lock(&self.pending);
                while pending.lines.is_empty() && !pending.closing {
                    pending = self
                        .filled
                        .wait(pending)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if pending.closing {
                    break;
                }
            }
            std::thread::sleep(FLUSH_EVERY);
            self.flush();
        }
        self.flush();
    }
}

/// A [`MakeWriter`] whose writers append to the shared buffer.
#[derive(Clone)]
pub struct BufferedLog {
    shared: Arc<Shared>,
}

/// Stops the flusher and writes out what is left, when dropped.
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl BufferedLog {
    /// A buffer in front of `destination`, and the guard that closes it. Without a flusher
    /// thread (the system refused one), every line is written out at once.
    pub fn start(destination: impl Write + Send + 'static) -> (Self, FlushOnDrop) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            filled: Condvar::new(),
            destination: Mutex::new(Box::new(destination)),
        });
        let flusher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("station-log".to_owned())
                .spawn(move || shared.flush_until_closed())
                .ok()
        };
        if flusher.is_none() {
            lock(&shared.pending).closing = true;
        }
        let log = Self {
            shared: Arc::clone(&shared),
        };
        (log, FlushOnDrop { shared, flusher })
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        lock(&self.shared.pending).closing = true;
        self.shared.filled.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        self.shared.flush();
    }
}

/// One event's writer: what it is given goes into the shared buffer.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let (was_empty, over_limit, closing) = {
            let mut pending = lock(&self.shared.pending);
            let was_empty = pending.lines.is_empty();
            pending.lines.extend_from_slice(bytes);
            (
                was_empty,
                pending.lines.len() > MOST_BUFFERED,
                pending.closing,
            )
        };
        if over_limit || closing {
            self.shared.flush();
        } else if was_empty {
            self.shared.filled.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Lines are written out by the flusher; an event's own flush need not wait for that.
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedLog {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(captured: &Captured) -> String {
        String::from_utf8(lock(&captured.0).clone()).unwrap()
    }

    #[test]
    fn lines_reach_the_destination_in_order_soon_after_they_are_written() {
        let captured = Captured::default();
        let (log, _guard) = BufferedLog::start(captured.clone());
        for n in 0..1000 {
            writeln!(log.make_writer(), "line {n}").unwrap();
        }
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while text(&captured).len() < expected.len() && std::time::Instant::now() < deadline {
            std::thread::sleep(FLUSH_EVERY);
        }
        assert_eq!(text(&captured), expected);
    }

    #[test]
    fn dropping_the_guard_writes_out_what_is_buffered() {
        let captured = Captured::default();
        let (log, guard) = BufferedLog::start(captured.clone());
        log.make_writer().write_all(b"last words\n").unwrap();
        drop(guard);
        assert_eq!(text(&captured), "last words\n");
        log.make_writer().write_all(b"after the end\n").unwrap();
        assert_eq!(text(&captured), "last words\nafter the end\n");
    }

    #[test]
    fn timestamps_are_rfc_3339_in_utc_with_microseconds() {
        let at = |seconds: u64, micros: u64| {
            let mut text = String::new();
            let time = std::time::UNIX_EPOCH
                + Duration::from_secs(seconds)
                + Duration::from_micros(micros);
            write_utc_timestamp(&mut text, time).unwrap();
            text
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(1_764_617_038, 193_502), "2025-12-01T19:23:58.193502Z");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
        assert_eq!(at(253_402_300_799, 0), "9999-12-31T23:59:59.000000Z");
    }

    #[test]
    fn events_are_one_line_each_with_escaped_string_values() {
        use tracing_subscriber::layer::SubscriberExt as _;

        let captured = Captured::default();
        let (log, guard) = BufferedLog::start(captured.clone());
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(log)
                .event_format(LineFormat),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(status = 200_u16, user = "a\nb \"c\"", path = %"/station/1/", "request");
        });
        drop(guard);
        let line = text(&captured);
        let (time, rest) = line.split_at(27);
        assert!(time.ends_with('Z') && time.contains('T'), "{line}");
        assert_eq!(
            rest,
            "  INFO station_api::telemetry::tests: request status=200 user=\"a\\nb \\\"c\\\"\" path=/station/1/\n"
        );
    }

    #[test]
    fn a_log_budget_lets_a_few_lines_through_per_window_and_counts_the_rest() {
        let budget = LogBudget::new(2, Duration::from_secs(10));
        let start = std::time::Instant::now();
        assert_eq!(budget.admit(start), Some(0));
        assert_eq!(budget.admit(start + Duration::from_secs(1)), Some(0));
        assert_eq!(budget.admit(start + Duration::from_secs(2)), None);
        assert_eq!(budget.admit(start + Duration::from_secs(3)), None);
        assert_eq!(budget.admit(start + Duration::from_secs(10)), Some(2));
        assert_eq!(budget.admit(start + Duration::from_secs(11)), Some(0));
    }

    #[test]
    fn a_panic_report_comes_at_once_after_the_buffered_lines_and_names_the_request() {
        let captured = Captured::default();
        let (log, _guard) = BufferedLog::start(captured.clone());
        log.make_writer().write_all(b"buffered line\n").unwrap();
        let request = RequestLabel::new("POST", "/station/", Some("abc-123"));
        let _serving = serving(Some(request));

        let line = panic_line(
            std::time::UNIX_EPOCH,
            current_request().as_ref(),
            Some("actix-rt|system:0|arbiter:1"),
            "boom",
            Some("src/api/stations.rs:10:5"),
        );
        log.shared.write_now(line.as_bytes());

        assert_eq!(
            text(&captured),
            "buffered line\n1970-01-01T00:00:00.000000Z ERROR station_api::telemetry: panic \
             method=POST path=\"/station/\" request_id=\"abc-123\" \
             thread=\"actix-rt|system:0|arbiter:1\" location=\"src/api/stations.rs:10:5\" \
             message=\"boom\"\n"
        );
    }

    #[test]
    fn the_request_mark_is_restored_when_its_guard_goes_and_insane_ids_are_left_out() {
        let outer = RequestLabel::new("GET", "/a/", None);
        let inner = RequestLabel::new("GET", "/b/", Some("bad id\nwith newline"));
        assert_eq!(inner, RequestLabel::new("GET", "/b/", None));
        {
            let _outer = serving(Some(outer.clone()));
            {
                let _inner = serving(Some(inner.clone()));
                assert_eq!(current_request(), Some(inner));
            }
            assert_eq!(current_request(), Some(outer));
        }
        assert_eq!(current_request(), None);
    }

    #[test]
    fn a_full_buffer_is_written_out_by_the_writer_that_filled_it() {
        let captured = Captured::default();
        let (log, _guard) = BufferedLog::start(captured.clone());
        let line = vec![b'x'; MOST_BUFFERED + 1];
        log.make_writer().write_all(&line).unwrap();
        assert_eq!(lock(&captured.0).len(), MOST_BUFFERED + 1);
    }
}
