//! The `station-api` binary as a separate process: user commands and running servers.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::CHEAP_HASHING;

/// The service binary Cargo built for these tests.
pub const BINARY: &str = env!("CARGO_BIN_EXE_station-api");

/// The binary with cheap hashing and the database at `database_url`.
pub fn station_api(database_url: &str) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", database_url)
        .env(
            "STATION_ARGON2_MEMORY_KIB",
            CHEAP_HASHING.memory_kib.to_string(),
        )
        .env(
            "STATION_ARGON2_ITERATIONS",
            CHEAP_HASHING.iterations.to_string(),
        )
        .env("RUST_LOG", "warn");
    command
}

/// Runs the binary with `args`, writing `stdin` to its standard input (not a terminal).
pub fn run(database_url: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = station_api(database_url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Bytes a process printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `serve` process and the lines it prints, read on background threads.
pub struct Server {
    /// The running process.
    pub child: Child,
    /// Lines it printed on standard output.
    pub stdout: mpsc::Receiver<String>,
    /// Lines it printed on standard error.
    pub stderr: mpsc::Receiver<String>,
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The first line containing `needle`, waiting at most 30 s.
pub fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> Option<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Starts `serve` on a free port over the database at `database_url`.
pub fn start_server(database_url: &str) -> Server {
    let mut child = station_api(database_url)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    Server {
        child,
        stdout,
        stderr,
    }
}

impl Server {
    /// The port it listens on, from its start-up line.
    pub fn port(&self) -> u16 {
        let line = wait_for(&self.stderr, "station-api listening").expect("server starts");
        line.split_whitespace()
            .find_map(|field| field.strip_prefix("port="))
            .and_then(|port| port.parse().ok())
            .expect("port in the start-up line")
    }

    /// Sends `signal` (as `kill` spells it) and waits for the process to exit.
    pub fn signal_and_wait(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
