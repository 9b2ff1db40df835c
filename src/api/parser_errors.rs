//! JSON bodies for the answers actix-http's dispatcher gives on its own, before any service sees
//! the request: 400 for a request it cannot parse, 431 for a head too large, 408 for a head that
//! did not arrive in time. It writes them with an empty body and offers no hook to change that
//! (`h1/dispatcher.rs`: `Response::bad_request().drop_body()`), so they are recognised on the way
//! out, in the connection's write stream, and given the contract's `{"detail": "..."}` body.
//!
//! Nothing else we send can be mistaken for them: every answer of ours has a body. Only an answer
//! at the start of a write is recognised, which is where the dispatcher puts it unless the
//! malformed request was pipelined behind others; then it keeps its empty body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// The start of each bodiless answer the dispatcher writes, after `HTTP/1.x `, and what it means.
fn dispatcher_answer(head: &[u8]) -> Option<ApiError> {
    let after_version = head.strip_prefix(b"HTTP/1.")?.get(2..)?;
    let (status_line, rest) = split_once(after_version, b"\r\n")?;
    if !rest.starts_with(b"content-length: 0\r\n") {
        return None;
    }
    match status_line {
        b"400 Bad Request" => Some(ApiError::MalformedRequest),
        b"431 Request Header Fields Too Large" => Some(ApiError::RequestHeaderTooLarge),
        b"408 Request Timeout" => Some(ApiError::RequestTimeout),
        _ => None,
    }
}

fn split_once<'a>(bytes: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = bytes
        .windows(separator.len())
        .position(|window| window == separator)?;
    Some((&bytes[..at], &bytes[at + separator.len()..]))
}

/// If `written` starts with a whole bodiless dispatcher answer: how many bytes it spans, and the
/// same answer with a JSON body.
fn with_json_body(written: &[u8]) -> Option<(usize, Vec<u8>)> {
    let error = dispatcher_answer(written)?;
    let head_length = split_once(written, b"\r\n\r\n")
        .map(|(head, _)| head.len() + 4)
        .filter(|&length| length <= written.len())?;
    let head = &written[..head_length];
    let body = serde_json::json!({ "detail": error.to_string() }).to_string();
    let (status_line, _) = split_once(head, b"\r\n")?;
    let (_, other_headers) = split_once(head, b"content-length: 0\r\n")?;
    let mut answer = Vec::with_capacity(head.len() + body.len() + 96);
    answer.extend_from_slice(status_line);
    answer.extend_from_slice(b"\r\ncontent-type: application/json\r\n");
    answer.extend_from_slice(b"x-content-type-options: nosniff\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    answer.extend_from_slice(other_headers);
    answer.extend_from_slice(body.as_bytes());
    Some((head_length, answer))
}

/// A client connection whose bodiless dispatcher answers get JSON bodies on the way out.
#[derive(Debug)]
pub struct JsonDispatcherErrors {
    io: TcpStream,
    /// A rewritten answer not yet fully written, and how much of it was.
    rewritten: Vec<u8>,
    sent: usize,
}

impl JsonDispatcherErrors {
    /// Wraps an accepted connection.
    pub fn new(io: TcpStream) -> Self {
        Self {
            io,
            rewritten: Vec::new(),
            sent: 0,
        }
    }

    /// Writes out what is left of a rewritten answer.
    fn poll_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.rewritten.len() {
            let written =
                ready!(Pin::new(&mut self.io).poll_write(cx, &self.rewritten[self.sent..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += written;
        }
        self.rewritten.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for JsonDispatcherErrors {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for JsonDispatcherErrors {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_rewritten(cx))?;
        if let Some((consumed, answer)) = with_json_body(buf) {
            self.rewritten = answer;
            // The original bytes count as taken; the rewritten ones go out on this and later
            // writes, flushes and the shutdown, all of which finish them first.
            if let Poll::Ready(Err(error)) = self.poll_rewritten(cx) {
                return Poll::Ready(Err(error));
            }
            return Poll::Ready(Ok(consumed));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_rewritten(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_rewritten(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dispatchers_bodiless_answers_are_rewritten() {
        let parse_error =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: D\r\n\r\n";
        let (consumed, answer) = with_json_body(parse_error).unwrap();
        assert_eq!(consumed, parse_error.len());
        assert_eq!(
            String::from_utf8(answer).unwrap(),
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
             x-content-type-options: nosniff\r\ncontent-length: 31\r\n\
             connection: close\r\ndate: D\r\n\r\n{\"detail\":\"Malformed request.\"}"
        );
        let ours =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 30\r\n\r\n{\"detail\":\"Invalid page.\"}";
        assert!(with_json_body(ours).is_none());
        let cut = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: cl";
        assert!(with_json_body(cut).is_none());
        assert!(with_json_body(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
