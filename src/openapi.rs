//! What the OpenAPI 3.1 document adds to the operations [`crate::api`] registers (each with its
//! handler's `#[utoipa::path]` annotation): the service's description, server and tags, and the
//! parts every admin-only operation shares (basic auth and its error responses).

use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::api::stream::{DeletedStation, StreamReset};
use crate::error::ErrorDetail;

/// The security scheme's name in the document.
pub const BASIC_AUTH: &str = "basicAuth";
/// The device tokens' scheme's name: HTTP bearer (`Authorization: Bearer <key>`; the service
/// also takes DRF's `Token <key>`).
pub const TOKEN_AUTH: &str = "tokenAuth";

/// What the document says beyond its operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "station-api",
        description = "Weather-station sensor readings: the Django REST framework \"Station\" API \
            from the IoT textbook, in Rust. Every `station` operation needs HTTP basic auth as an \
            active staff user (DRF's `IsAdminUser`), or, to read or add readings, a device token \
            (`Authorization: Bearer <key>` or `Token <key>`) with the `read` or `write` scope; \
            staff issue tokens at `/tokens/`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    // Relative: the service answers wherever it is deployed (behind a proxy, at its public https
    // address), so clients resolve it against the document's own address, or take a base URL.
    servers((url = "/", description = "This service: the host the document was fetched from.")),
    // The shared error responses refer to the first by name; the event stream's description to
    // the shapes of its events' `data` (OpenAPI cannot describe a stream's events themselves).
    components(schemas(ErrorDetail, DeletedStation, StreamReset)),
    tags(
        (name = "station", description = "Weather-station readings (admin users; device tokens may read and add)."),
        (name = "tokens", description = "Device tokens (admin users only)."),
        (name = "health", description = "Probes for load balancers; no authentication."),
    ),
)]
struct ApiDoc;

/// Declares basic auth and adds the responses every admin-only operation can give.
struct AdminOnly;

fn error_response(description: &str, header: Option<(&str, Type, &str)>) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorDetail"))),
    );
    if let Some((name, schema_type, about)) = header {
        let mut header = Header::new(Object::with_type(schema_type));
        header.description = Some(about.to_owned());
        response = response.header(name, header);
    }
    response.build()
}

/// `(status, component name, response)` shared by every `station` operation.
fn shared_responses() -> Vec<(&'static str, &'static str, Response)> {
    vec![
        (
            "401",
            "Unauthorized",
            error_response(
                "No credentials, malformed credentials, a wrong username or password, or an unknown, revoked or expired token.",
                Some((
                    "WWW-Authenticate",
                    Type::String,
                    "`Basic realm=\"station-api\"`",
                )),
            ),
        ),
        (
            "403",
            "Forbidden",
            error_response(
                "Authenticated, but not allowed this operation (not an active staff user, a token without the scope, or a token bound to another station).",
                None,
            ),
        ),
        (
            "406",
            "NotAcceptable",
            error_response("The `Accept` header rules out JSON.", None),
        ),
        (
            "429",
            "TooManyRequests",
            error_response(
                "Too many failed logins from this client.",
                Some((
                    "Retry-After",
                    Type::Integer,
                    "Seconds until another attempt is allowed.",
                )),
            ),
        ),
        (
            "503",
            "ServiceUnavailable",
            error_response(
                "The database cannot be reached right now.",
                Some((
                    "Retry-After",
                    Type::Integer,
                    "Seconds to wait before retrying.",
                )),
            ),
        ),
    ]
}

fn operations_mut(
    item: &mut PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

impl Modify for AdminOnly {
    fn modify(&self, document: &mut Document) {
        let shared = shared_responses();
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BASIC_AUTH,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "A device token's key, issued at `/tokens/`: `Authorization: Bearer <key>` \
             (DRF's `Token <key>` works too)."
                .to_owned(),
        );
        components.add_security_scheme(TOKEN_AUTH, SecurityScheme::Http(bearer));
        for (_, name, response) in &shared {
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(response.clone()));
        }
        document.security = Some(vec![SecurityRequirement::new(
            BASIC_AUTH,
            Vec::<String>::new(),
        )]);
        for item in document.paths.paths.values_mut() {
            // Tokens may read and add readings: GET and POST on the `station` operations.
            for operation in [item.get.as_mut(), item.post.as_mut()]
                .into_iter()
                .flatten()
            {
                if has_tag(operation, "station") {
                    operation.security = Some(vec![
                        SecurityRequirement::new(BASIC_AUTH, Vec::<String>::new()),
                        SecurityRequirement::new(TOKEN_AUTH, Vec::<String>::new()),
                    ]);
                }
            }
            for operation in operations_mut(item) {
                let admin_only = has_tag(operation, "station") || has_tag(operation, "tokens");
                if !admin_only {
                    continue;
                }
                for (status, name, _) in &shared {
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
                }
            }
        }
    }
}

fn has_tag(operation: &utoipa::openapi::path::Operation, wanted: &str) -> bool {
    operation
        .tags
        .as_ref()
        .is_some_and(|tags| tags.iter().any(|tag| tag == wanted))
}

/// Repeats each parameter's description on its schema, the only place openapi-python-client
/// reads it from: without it the generated docstrings say nothing about `page` or `id`.
struct DescribedParameters;

impl Modify for DescribedParameters {
    fn modify(&self, document: &mut Document) {
        for item in document.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    if let (Some(description), Some(RefOr::T(Schema::Object(schema)))) =
                        (&parameter.description, &mut parameter.schema)
                    {
                        schema
                            .description
                            .get_or_insert_with(|| description.clone());
                    }
                }
            }
        }
    }
}

/// The service's document: `operations` (the paths and schemas of the registered routes) under
/// the service's description and tags, with basic auth and the shared admin responses.
pub fn complete(operations: Document) -> Document {
    let mut document = ApiDoc::openapi();
    document.merge(operations);
    // After the merge: they adjust every operation.
    AdminOnly.modify(&mut document);
    DescribedParameters.modify(&mut document);
    document
}

/// `document` as pretty JSON, as committed in `openapi/openapi.json`.
pub fn pretty_json(document: &Document) -> Result<String, serde_json::Error> {
    let mut json = document.to_pretty_json()?;
    json.push('\n');
    Ok(json)
}
