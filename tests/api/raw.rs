//! Raw HTTP/1.1 over TCP, for what a well-behaved client library will not do: bodies that never
//! end, bodies trickled byte by byte, headers without a body, malformed requests.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// `127.0.0.1:PORT` of a test app's `http://127.0.0.1:PORT` address.
pub fn authority(address: &str) -> &str {
    address.trim_start_matches("http://")
}

/// Connects and writes `head` (and whatever body bytes follow it).
pub async fn send_head(authority: &str, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(authority).await.expect("connected");
    stream.write_all(head.as_bytes()).await.expect("written");
    stream
}

/// What came back on a connection.
#[derive(Debug)]
pub struct Received {
    /// Every byte read.
    pub bytes: Vec<u8>,
    /// The server closed (or reset) the connection within the wait.
    pub closed: bool,
}

impl Received {
    /// The bytes as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The status code of the first response.
    pub fn status(&self) -> Option<u16> {
        self.text()
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
    }
}

/// Reads until the server closes the connection or `wait` passes.
pub async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin), wait: Duration) -> Received {
    read_until(stream, wait, |_| false).await
}

/// Reads until `wait` passes or the server closes the connection, stopping early once `done`
/// says what arrived is enough.
pub async fn read_until(
    stream: &mut (impl AsyncRead + Unpin),
    wait: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> Received {
    let mut bytes = Vec::new();
    let mut buffer = [0_u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if done(&bytes) {
            return Received {
                bytes,
                closed: false,
            };
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => {
                return Received {
                    bytes,
                    closed: true,
                };
            }
            Ok(Ok(read)) => bytes.extend_from_slice(&buffer[..read]),
            Err(_) => {
                return Received {
                    bytes,
                    closed: false,
                };
            }
        }
    }
}

/// Lets this process open as many files as its hard limit allows: the tests hold thousands of
/// sockets, both ends of each in this process.
pub fn raise_open_file_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

/// True once `bytes` hold a whole final (non-1xx) response whose body length is given by
/// Content-Length.
pub fn has_final_response(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let mut rest: &str = &text;
    while let Some((head, body)) = rest.split_once("\r\n\r\n") {
        if head.starts_with("HTTP/1.1 1") {
            rest = body;
            continue;
        }
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            })
            .unwrap_or(0);
        return body.len() >= length;
    }
    false
}
