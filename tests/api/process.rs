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
    with_service_environment(&mut command, database_url);
    command
}

/// Gives `command` the environment [`station_api`] runs the binary with, for a wrapper (a shell
/// lowering a limit) that starts it.
pub fn with_service_environment(command: &mut Command, database_url: &str) {
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

/// Every line up to and including the first containing `needle`, waiting at most 30 s.
pub fn lines_until(lines: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => {
                seen.push(line);
                return seen;
            }
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no line containing {needle:?} in {seen:#?}");
}

/// The port in a start-up line, logged as text (`port=N`) or as JSON (`"port":N`).
pub fn port_of(line: &str) -> u16 {
    let from_json = || {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()?
            .get("port")?
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
    };
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("port="))
        .and_then(|port| port.parse().ok())
        .or_else(from_json)
        .expect("port in the start-up line")
}

/// Starts `serve` on a free port over the database at `database_url`.
pub fn start_server(database_url: &str) -> Server {
    start_server_with(database_url, &[])
}

/// Starts `serve` with `options` on a free port over the database at `database_url`.
pub fn start_server_with(database_url: &str, options: &[&str]) -> Server {
    let child = station_api(database_url)
        .arg("serve")
        .args(options)
        .args(["--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Server::of(child)
}

impl Server {
    /// A started server whose piped standard output and error are read on threads.
    pub fn of(mut child: Child) -> Self {
        let stdout = child
            .stdout
            .take()
            .map_or_else(|| mpsc::channel().1, lines_of);
        let stderr = lines_of(child.stderr.take().expect("standard error is piped"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The port it listens on, from its start-up line.
    pub fn port(&self) -> u16 {
        port_of(&wait_for(&self.stderr, "station-api listening").expect("server starts"))
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

impl Server {
    /// Waits (at most 30 s) for the process to exit by itself, e.g. after a signal sent to it
    /// some other way.
    pub fn wait_for_exit(mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "process did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that failed half-way must not leave its server running; one that stopped it
        // already gets an error here, which means nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
