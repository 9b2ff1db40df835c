//! `Expect: 100-continue` answered only when a handler starts reading the body.
//!
//! actix-http calls an "expect" service with such a request, writes `100 Continue` as soon as
//! that service returns the request, and only then calls the app; actix-web's `HttpServer` always
//! uses the default, which returns at once. So every client that asked was invited to upload
//! before the host check, authentication or the size limit had run. Here the expect service runs
//! the whole app on the request, with a body that notes when it is first read:
//!
//! - the app answers without reading it (a 400, 401, 403, 404, 405, 413, 415…): that answer goes
//!   out as the expect service's error response, with no `100 Continue` before it;
//! - a handler starts reading it: the expect service hands the dispatcher a placeholder request
//!   carrying the app's answer-in-progress, the dispatcher writes `100 Continue` and calls the main
//!   service, which (see [`ResumeOrCall`]) goes on with that answer instead of starting another.

use std::cell::Cell;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_http::{HttpMessage as _, Payload, Request, Response};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::FutureExt as _;
use futures_util::Stream;
use futures_util::future::LocalBoxFuture;

/// The app's answer to a request, boxed so both services can hold it.
pub type Answer = LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>>;

fn boxed_answer<B: MessageBody + 'static>(
    answer: impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static,
) -> Answer {
    Box::pin(answer.map(|result| result.map(ServiceResponse::map_into_boxed_body)))
}

/// The answer to a request that asked `Expect: 100-continue` and whose body a handler wants.
struct InFlight(Answer);

/// The request body as the app sees it: the real one, noting when it is first asked for.
struct NoticedBody {
    body: Payload,
    wanted: Rc<Cell<bool>>,
}

impl Stream for NoticedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.wanted.set(true);
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// The expect service: runs `app` until it answers or wants the body.
pub struct ContinueWhenRead<S> {
    app: Rc<S>,
}

impl<S> ContinueWhenRead<S> {
    /// Runs requests that expect `100 Continue` through `app`.
    pub fn new(app: S) -> Self {
        Self { app: Rc::new(app) }
    }
}

impl<S, B> Service<Request> for ContinueWhenRead<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = Request;
    type Error = Response<BoxBody>;
    type Future = LocalBoxFuture<'static, Result<Request, Response<BoxBody>>>;

    actix_web::dev::always_ready!();

    fn call(&self, mut req: Request) -> Self::Future {
        let wanted = Rc::new(Cell::new(false));
        let body = req.take_payload();
        *req.payload() = Payload::Stream {
            payload: Box::pin(NoticedBody {
                body,
                wanted: Rc::clone(&wanted),
            }),
        };
        let mut answer = boxed_answer(self.app.call(req));
        Box::pin(async move {
            let answered = poll_fn(|cx| match answer.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(Some(result)),
                Poll::Pending if wanted.get() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            })
            .await;
            match answered {
                Some(Ok(response)) => Err(Response::from(response.into_parts().1)),
                Some(Err(error)) => Err(Response::from(error)),
                None => {
                    let placeholder = Request::new();
                    placeholder.extensions_mut().insert(InFlight(answer));
                    Ok(placeholder)
                }
            }
        })
    }
}

/// The main service: goes on with an answer the expect service started, or calls `app` (a boxed
/// service, whose futures are already [`Answer`]s).
pub struct ResumeOrCall<S> {
    app: S,
}

impl<S> ResumeOrCall<S> {
    /// Serves requests with `app`.
    pub fn new(app: S) -> Self {
        Self { app }
    }
}

impl<S> Service<Request> for ResumeOrCall<S>
where
    S: Service<
            Request,
            Response = ServiceResponse<BoxBody>,
            Error = actix_web::Error,
            Future = Answer,
        >,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Answer;

    actix_web::dev::forward_ready!(app);

    fn call(&self, req: Request) -> Self::Future {
        let in_flight = req.extensions_mut().remove::<InFlight>();
        match in_flight {
            Some(InFlight(answer)) => answer,
            // The app's own future is already boxed: no allocation more per request.
            None => self.app.call(req),
        }
    }
}
