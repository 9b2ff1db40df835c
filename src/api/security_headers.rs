//! Headers that keep browsers from misreading or framing what we send: `nosniff` on every
//! response, and for Swagger UI a content security policy that forbids framing (clickjacking)
//! and loading anything from elsewhere.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

/// Where Swagger UI is served.
const DOCS_PREFIX: &str = "/swagger-ui/";

/// Swagger UI's page loads its scripts, styles and icons from here and fetches the OpenAPI
/// document from here; its styles set some inline style attributes and its stylesheet embeds
/// `data:` images. Nothing may frame it.
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Middleware for the whole app.
pub async fn add_security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_docs = req.path().starts_with(DOCS_PREFIX);
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if is_docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_POLICY),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Ok(response)
}
