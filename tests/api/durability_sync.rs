//! "Acknowledged means durable" on SQLite: the real binary runs under `strace`, readings are
//! posted (many at once, so group commits share a sync), and the trace shows that every
//! `HTTP/1.1 201` went out only after an fsync/fdatasync of the WAL that came after the commit
//! frame of that reading's transaction. With `--sqlite-synchronous normal` the same check must
//! find 201s that no sync covered: the check can fail, and the default is what makes it pass.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::databases::TestDatabase;
use crate::helpers::reading;
use crate::process::{BINARY, Server, run, text, with_service_environment};

const PASSWORD: &str = "a-durable-password";
/// Clients posting at once, and readings each posts.
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 8;

/// One traced system call: where it began and ended in the trace (line numbers), who made it,
/// and its arguments as strace printed them.
#[derive(Debug, Clone)]
struct Call {
    pid: u32,
    name: String,
    args: String,
    started: usize,
    ended: usize,
}

/// What the check found: 201s covered by a sync of their commit, and those that were not.
#[derive(Debug, Default)]
struct Verdict {
    covered: Vec<String>,
    uncovered: Vec<String>,
    wal_syncs: usize,
}

/// The system calls of an `strace -f -ttt -y` trace, with `<unfinished ...>`/`<... resumed>`
/// pairs joined, in the order they began.
fn calls_of(trace: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let mut unfinished: HashMap<u32, usize> = HashMap::new();
    for (line_number, line) in trace.lines().enumerate() {
        // "PID TIME NAME(ARGS) = RESULT", "... NAME(ARGS <unfinished ...>" or
        // "... <... NAME resumed>REST".
        let Some((pid, after_pid)) = line.split_once(' ') else {
            continue;
        };
        let Some((_time, rest)) = after_pid.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if rest.starts_with("<...") {
            if let Some(index) = unfinished.remove(&pid) {
                calls[index].ended = line_number;
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue; // a signal or an exit
        };
        calls.push(Call {
            pid,
            name: name.to_owned(),
            args: args.to_owned(),
            started: line_number,
            ended: line_number,
        });
        if rest.ends_with("<unfinished ...>") {
            unfinished.insert(pid, calls.len() - 1);
        }
    }
    calls
}

/// The bytes of the first string argument strace printed (its C-style escapes undone).
fn first_string(args: &str) -> Vec<u8> {
    let Some(start) = args.find('"') else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    let mut chars = args[start + 1..].bytes().peekable();
    while let Some(byte) = chars.next() {
        match byte {
            b'"' => break,
            b'\\' => match chars.next() {
                Some(b'n') => bytes.push(b'\n'),
                Some(b't') => bytes.push(b'\t'),
                Some(b'r') => bytes.push(b'\r'),
                Some(b'v') => bytes.push(0x0b),
                Some(b'f') => bytes.push(0x0c),
                Some(digit @ b'0'..=b'7') => {
                    let mut value = u32::from(digit - b'0');
                    for _ in 0..2 {
                        match chars.peek() {
                            Some(next @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(next - b'0');
                                chars.next();
                            }
                            _ => break,
                        }
                    }
                    bytes.push(u8::try_from(value).unwrap());
                }
                Some(other) => bytes.push(other),
                None => break,
            },
            other => bytes.push(other),
        }
    }
    bytes
}

fn on_wal(call: &Call) -> bool {
    call.args.starts_with(|c: char| c.is_ascii_digit())
        && call
            .args
            .split_once('>')
            .is_some_and(|(fd, _)| fd.ends_with("-wal"))
}

/// A WAL frame header (24 bytes) whose "database size after commit" is set: a commit frame.
fn is_commit_frame(call: &Call) -> bool {
    let header = first_string(&call.args);
    header.len() == 24 && header[4..8] != [0, 0, 0, 0]
}

/// Checks every `HTTP/1.1 201` written to a socket in `trace`: the first WAL write holding the
/// created reading's name is in its transaction; that transaction's commit frame is the next
/// one the same thread wrote; a sync of the WAL must begin after it and end before the 201.
fn check(trace: &str) -> Verdict {
    let calls = calls_of(trace);
    let mut verdict = Verdict::default();
    let wal_writes: Vec<&Call> = calls
        .iter()
        .filter(|call| call.name == "pwrite64" && on_wal(call))
        .collect();
    let wal_syncs: Vec<&Call> = calls
        .iter()
        .filter(|call| (call.name == "fsync" || call.name == "fdatasync") && on_wal(call))
        .collect();
    verdict.wal_syncs = wal_syncs.len();
    let responses = calls.iter().filter(|call| {
        matches!(
            call.name.as_str(),
            "write" | "writev" | "sendto" | "sendmsg"
        ) && call.args.contains("<socket:[")
            && call.args.contains("HTTP/1.1 201")
    });
    for response in responses {
        let name = created_name(&response.args)
            .unwrap_or_else(|| panic!("no reading name in the 201 {:?}", response.args));
        let first_write = wal_writes
            .iter()
            .find(|write| write.ended < response.started && write.args.contains(name.as_str()))
            .unwrap_or_else(|| panic!("no WAL write before its 201 holds reading {name}"));
        let commit = wal_writes
            .iter()
            .find(|write| {
                write.pid == first_write.pid
                    && write.started >= first_write.started
                    && is_commit_frame(write)
            })
            .unwrap_or_else(|| panic!("no commit frame after reading {name}'s first WAL write"));
        assert!(
            commit.ended < response.started,
            "reading {name}: its 201 went out before its commit frame was written"
        );
        let synced = wal_syncs
            .iter()
            .any(|sync| sync.started > commit.ended && sync.ended < response.started);
        if synced {
            verdict.covered.push(name);
        } else {
            verdict.uncovered.push(name);
        }
    }
    verdict
}

/// The `name` of the reading in a 201's body as strace printed it (`\"name\":\"...\"`).
fn created_name(args: &str) -> Option<String> {
    let (_, after) = args.split_once(r#"\"name\":\""#)?;
    let (name, _) = after.split_once(r#"\""#)?;
    Some(name.to_owned())
}

/// A reading name that cannot be a part of another one's (fixed width, unusual letters).
fn probe_name(client: usize, n: usize) -> String {
    format!("syncprobe-{client:02}-{n:03}")
}

/// Fails, saying what to install, when strace is missing: a skipped check proves nothing.
fn require_strace() {
    let found = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "strace is needed to check that every 201 follows a WAL sync: \
         install it (apt-get install strace; .ci/run does)"
    );
}

/// Runs the server under strace with `synchronous`, posts `CLIENTS` × `PER_CLIENT` readings at
/// once, stops it with SIGTERM, and returns the trace.
async fn traced_run(synchronous: &str, directory: &Path) -> String {
    require_strace();
    let database = TestDatabase::fresh_on(crate::databases::Backend::Sqlite);
    let created = run(
        &database.url,
        &["createsuperuser", "--username", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let trace_file = directory.join(format!("strace-{synchronous}.txt"));
    let mut command = Command::new("strace");
    command
        .args(["-f", "-ttt", "-y", "-s", "4096"])
        .args([
            "-e",
            "trace=fsync,fdatasync,pwrite64,write,writev,sendto,sendmsg",
        ])
        .arg("-o")
        .arg(&trace_file)
        .arg(BINARY)
        .args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"])
        .args(["--sqlite-synchronous", synchronous]);
    with_service_environment(&mut command, &database.url);
    let server = Server::of(
        command
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace starts"),
    );
    let base = format!("http://127.0.0.1:{}", server.port());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    let posting = (0..CLIENTS).map(|c| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            for n in 0..PER_CLIENT {
                let response = client
                    .post(format!("{base}/station/"))
                    .basic_auth("admin", Some(PASSWORD))
                    .json(&reading(&probe_name(c, n)))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        })
    });
    for task in posting.collect::<Vec<_>>() {
        task.await.unwrap();
    }

    // SIGTERM the service itself (strace's child); strace exits with it and has then written
    // the whole trace.
    let strace_pid = server.child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children")).unwrap();
    let service_pid = children
        .split_whitespace()
        .next()
        .expect("strace runs the service")
        .to_owned();
    let stopped = Command::new("kill")
        .args(["-TERM", &service_pid])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(
        server.wait_for_exit().success(),
        "strace and the service stop"
    );
    std::fs::read_to_string(&trace_file).unwrap()
}

#[actix_web::test]
async fn every_201_follows_a_sync_of_the_wal_covering_its_commit() {
    let directory = tempfile::tempdir().unwrap();
    let verdict = check(&traced_run("full", directory.path()).await);
    eprintln!(
        "synchronous=full: {} 201s, {} WAL syncs",
        verdict.covered.len() + verdict.uncovered.len(),
        verdict.wal_syncs
    );
    assert_eq!(
        verdict.covered.len() + verdict.uncovered.len(),
        CLIENTS * PER_CLIENT,
        "every create's 201 is in the trace"
    );
    assert!(
        verdict.uncovered.is_empty(),
        "201s sent before a sync covered their commit: {:?}",
        verdict.uncovered
    );
    // Concurrent creates share syncs (the group commit), so durability costs less than a sync
    // per reading; start-up's own syncs are counted too, so this is an upper bound.
    assert!(
        verdict.wal_syncs < CLIENTS * PER_CLIENT,
        "{} WAL syncs for {} concurrent creates: the group commit shared none",
        verdict.wal_syncs,
        CLIENTS * PER_CLIENT
    );
}

#[actix_web::test]
async fn with_synchronous_normal_the_check_finds_201s_no_sync_covered() {
    let directory = tempfile::tempdir().unwrap();
    let verdict = check(&traced_run("normal", directory.path()).await);
    eprintln!(
        "synchronous=normal: {} 201s not covered, {} covered, {} WAL syncs",
        verdict.uncovered.len(),
        verdict.covered.len(),
        verdict.wal_syncs
    );
    assert_eq!(
        verdict.covered.len() + verdict.uncovered.len(),
        CLIENTS * PER_CLIENT
    );
    assert!(
        !verdict.uncovered.is_empty(),
        "with synchronous=normal every 201 still followed a WAL sync: the check proves nothing"
    );
}

#[test]
fn strace_strings_are_decoded() {
    assert_eq!(
        first_string(r#"3</x-wal>, "\0\0\0\r\0\0\0\16ab\"\\\0011\n", 24, 0) = 24"#),
        b"\0\0\0\r\0\0\0\x0eab\"\\\x011\n"
    );
}
