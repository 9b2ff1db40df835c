//! What a slow or hostile client may hold: a request body must arrive within a deadline, and a
//! connection whose request body was not read to its end is closed once answered.
//!
//! actix-http (3.19, `h1/dispatcher.rs`) bounds only the request head (`client_request_timeout`).
//! A body is read only as fast as the handler asks for it, with no deadline, so a body trickled
//! a byte at a time held its handler forever. And once a response is sent, a chunked body the
//! handler never read is drained (read and thrown away) until it ends, with no timer at all:
//! `should_close_for_unread_payload` keeps the connection for draining whenever the handler's
//! end of the body was dropped, and `Connection: close` on the response does not change that. So a
//! never-ending chunked body on any route (`/healthz`, a 404, a 401) held its connection forever.
//! Holding the handler's end of the body until the response is written makes the dispatcher
//! close instead (after lingering at most `client_disconnect_timeout`, actix-web's default 1 s).

use std::cell::RefCell;
use std::future::Future as _;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::rt::time::{Instant, Sleep, sleep_until};
use actix_web::web::Bytes;
use actix_web::{HttpMessage as _, ResponseError, web};
use futures_util::Stream;

use crate::api::AppState;
use crate::error::ApiError;

/// The request body as the handler reads it, and what reading it showed.
struct BodyProgress {
    /// The body as actix hands it over; kept (not dropped) until the response is written.
    payload: Payload,
    /// When the whole body must have arrived.
    deadline: Pin<Box<Sleep>>,
    /// The body was read to its end.
    finished: bool,
    /// The deadline passed before the body ended.
    timed_out: bool,
}

/// The handler's view of the body: the real one, cut off at the deadline.
struct DeadlineBody(Rc<RefCell<BodyProgress>>);

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut progress = self.0.borrow_mut();
        if progress.finished || progress.timed_out {
            return Poll::Ready(None);
        }
        match Pin::new(&mut progress.payload).poll_next(cx) {
            Poll::Ready(None) => {
                progress.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => {
                if progress.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                progress.timed_out = true;
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
        }
    }
}

/// A response body that keeps the request body's handle alive until it has been written, so
/// the dispatcher sees an unread body and closes the connection rather than draining it.
struct HoldingRequestBody {
    body: BoxBody,
    _request_body: Rc<RefCell<BodyProgress>>,
}

impl MessageBody for HoldingRequestBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// Middleware for the whole app: puts the deadline on the request body, answers 408 when it
/// passes, and closes the connection after any response to a request whose body was not read to
/// its end.
pub async fn bound_request_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        // No body announced: nothing to bound, and nothing to drain.
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let body_timeout = req
        .app_data::<web::Data<AppState>>()
        .map_or(Duration::from_secs(30), |state| state.http().body_timeout);
    let progress = Rc::new(RefCell::new(BodyProgress {
        payload,
        deadline: Box::pin(sleep_until(Instant::now() + body_timeout)),
        finished: false,
        timed_out: false,
    }));
    req.set_payload(Payload::Stream {
        payload: Box::pin(DeadlineBody(Rc::clone(&progress))),
    });
    let response = next.call(req).await?.map_into_boxed_body();
    let (finished, timed_out) = {
        let progress = progress.borrow();
        (progress.finished, progress.timed_out)
    };
    if finished {
        return Ok(response);
    }
    let mut response = if timed_out {
        let (req, _) = response.into_parts();
        ServiceResponse::new(req, ApiError::RequestTimeout.error_response())
    } else {
        response
    };
    response
        .response_mut()
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Ok(response.map_body(|_, body| {
        BoxBody::new(HoldingRequestBody {
            body,
            _request_body: progress,
        })
    }))
}
