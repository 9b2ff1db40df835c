//! Logging setup: `tracing` events to standard error, filtered by `RUST_LOG` (default `info`).
//!
//! Lines are not written by the request that logs them: each is appended to one shared buffer,
//! which a background thread writes out shortly after (within [`FLUSH_EVERY`]), in order. A
//! request pays for formatting its line and copying it, not for a `write` system call (a quarter
//! of the retrieve benchmark's time when every request made one) nor for waking a thread per
//! line. A writer that finds the buffer past [`MOST_BUFFERED`] writes it out itself, so a slow
//! destination slows logging down instead of growing memory or dropping lines.

use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The longest a logged line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How much the buffer holds before a writer writes it out itself.
pub const MOST_BUFFERED: usize = 2 * 1024 * 1024;

/// Installs the global subscriber; call once, first thing in `main`, and keep the guard until
/// the process ends: dropping it writes out what is still buffered.
pub fn init() -> FlushOnDrop {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (log, guard) = BufferedLog::start(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    guard
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
    fn a_full_buffer_is_written_out_by_the_writer_that_filled_it() {
        let captured = Captured::default();
        let (log, _guard) = BufferedLog::start(captured.clone());
        let line = vec![b'x'; MOST_BUFFERED + 1];
        log.make_writer().write_all(&line).unwrap();
        assert_eq!(lock(&captured.0).len(), MOST_BUFFERED + 1);
    }
}
