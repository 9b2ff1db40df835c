//! The route registry: a route is added once, from its handler, and that one entry both serves
//! it and documents it, so no operation can be served undocumented or documented unserved.
//!
//! An [`Operation`] is made by `operation!` from a handler carrying `#[utoipa::path]`: its path
//! and methods are the annotation's, so the route cannot answer where the document says nothing.
//! Operations are grouped into [`ApiResource`]s (the API, behind the contract's checks) or added
//! as probes (public, bare); [`Routes`] registers them with actix and hands back the document
//! their annotations make.
//!
//! Two methods are served and advertised in `Allow` without being documented, on purpose: HEAD,
//! which answers wherever GET does (HTTP's rule, which OpenAPI tools assume), and OPTIONS, DRF's
//! metadata, which every API resource answers.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::{Method, header};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{
    FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, Route,
    guard as route_guard, web,
};
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::PathItem;

use crate::api::guard::{self, RouteAccess};
use crate::api::negotiation::{self, MediaType};
use crate::error::ApiError;

/// The [`Operation`] a handler annotated with `#[utoipa::path]` describes: the route serving it
/// and the document its annotation makes, both from the one name, so they cannot disagree.
///
/// Takes the handler's path, e.g. `operation!(stations::list_stations)`.
macro_rules! operation {
    ($($segment:ident)::+) => {{
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($segment)::+))]
        struct Annotation;
        $crate::api::routes::Operation::new(
            <Annotation as utoipa::OpenApi>::openapi(),
            $($segment)::+,
        )
    }};
}
pub(crate) use operation;

/// One documented operation: where and for which methods its handler answers, and its part of
/// the document. Made by `operation!`.
pub struct Operation {
    path: String,
    methods: Vec<Method>,
    routes: Vec<Route>,
    document: OpenApi,
}

impl Operation {
    /// Pairs `handler` with `annotation`, the document made from that handler's own
    /// `#[utoipa::path]`; call it through `operation!`, which takes both from one name.
    pub fn new<F, Args>(annotation: OpenApi, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        // `operation!`'s derive makes exactly one path; without one the operation would be
        // neither served nor documented.
        let (path, methods) = annotation
            .paths
            .paths
            .iter()
            .next()
            .map(|(path, item)| (path.clone(), documented_methods(item)))
            .unwrap_or_default();
        let routes = methods
            .iter()
            .map(|method| {
                let route = if *method == Method::GET {
                    get_or_head()
                } else {
                    web::route().method(method.clone())
                };
                route.to(handler.clone())
            })
            .collect();
        Self {
            path,
            methods,
            routes,
            document: annotation,
        }
    }
}

/// The methods a path item documents, in the document's own order.
fn documented_methods(item: &PathItem) -> Vec<Method> {
    [
        (&item.get, Method::GET),
        (&item.put, Method::PUT),
        (&item.post, Method::POST),
        (&item.delete, Method::DELETE),
        (&item.options, Method::OPTIONS),
        (&item.head, Method::HEAD),
        (&item.patch, Method::PATCH),
        (&item.trace, Method::TRACE),
    ]
    .into_iter()
    .filter_map(|(operation, method)| operation.is_some().then_some(method))
    .collect()
}

/// An API resource: one path, what each method there needs of the caller, the media types it
/// renders, its OPTIONS answer and its documented operations.
pub struct ApiResource {
    path: &'static str,
    name: &'static str,
    access: RouteAccess,
    renders: &'static [MediaType],
    options: Route,
    methods: Vec<Method>,
    routes: Vec<Route>,
    document: OpenApi,
}

impl ApiResource {
    /// The resource at `path`, named `name` for `url_for`, answering OPTIONS with `options`.
    pub fn new<F, Args>(
        path: &'static str,
        name: &'static str,
        access: RouteAccess,
        renders: &'static [MediaType],
        options: F,
    ) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self {
            path,
            name,
            access,
            renders,
            options: web::method(Method::OPTIONS).to(options),
            methods: Vec::new(),
            routes: Vec::new(),
            document: OpenApi::default(),
        }
    }

    /// Adds an operation; its annotation must name this resource's path.
    pub fn operation(mut self, operation: Operation) -> Self {
        // A programming error, not a runtime condition: every test builds these routes, so a
        // handler annotated with another path fails them all before it can ship.
        assert_eq!(
            operation.path, self.path,
            "an operation documented at {} was added to the resource at {}",
            operation.path, self.path
        );
        self.methods.extend(operation.methods);
        self.routes.extend(operation.routes);
        self.document.merge(operation.document);
        self
    }

    /// What `Allow` advertises: the documented methods in the order they were added, then HEAD
    /// (wherever GET is) and OPTIONS, which every API resource answers.
    fn allowed_methods(&self) -> String {
        let head = self.methods.contains(&Method::GET).then_some(&Method::HEAD);
        self.methods
            .iter()
            .chain(head)
            .chain([&Method::OPTIONS])
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The actix resource, wrapped in the contract's checks, outermost first: headers, 406
    /// (unless the request accepts one of the media types the route renders), auth (what the
    /// route needs of each method), then the routes, whose fallback is 405.
    fn into_service(self) -> impl HttpServiceFactory {
        let allow = self.allowed_methods();
        let Self {
            path,
            name,
            access,
            renders,
            options,
            routes,
            ..
        } = self;
        routes
            .into_iter()
            .fold(Resource::new(path).name(name), Resource::route)
            .route(options)
            .default_service(web::to(method_not_allowed))
            .wrap(from_fn(move |req, next| guard::require(access, req, next)))
            .wrap(from_fn(move |req, next| {
                negotiation::negotiate(renders, req, next)
            }))
            .wrap(
                DefaultHeaders::new()
                    .add((header::ALLOW, allow))
                    .add((header::VARY, "Accept"))
                    // Answers for one admin: no shared cache may keep them, and a client
                    // revalidates.
                    .add((header::CACHE_CONTROL, "private, no-cache")),
            )
    }
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
}

/// Every route the service serves, and the document they make.
#[derive(Default)]
pub struct Routes {
    resources: Vec<ApiResource>,
    probes: Vec<(String, Vec<Route>)>,
    document: OpenApi,
}

impl Routes {
    /// Adds an API resource and documents its operations.
    pub fn api(mut self, mut resource: ApiResource) -> Self {
        self.document.merge(std::mem::take(&mut resource.document));
        self.resources.push(resource);
        self
    }

    /// Adds a probe: public, outside the API's checks (no auth, negotiation or `Allow`).
    pub fn probe(mut self, operation: Operation) -> Self {
        self.document.merge(operation.document);
        self.probes.push((operation.path, operation.routes));
        self
    }

    /// The paths and schemas of every route, without serving them.
    pub fn into_document(self) -> OpenApi {
        self.document
    }

    /// Serves every route; returns the paths and schemas they make.
    pub fn register(self, cfg: &mut web::ServiceConfig) -> OpenApi {
        for resource in self.resources {
            cfg.service(resource.into_service());
        }
        for (path, routes) in self.probes {
            cfg.service(
                routes
                    .into_iter()
                    .fold(web::resource(path), Resource::route),
            );
        }
        self.document
    }
}

/// A route for GET, and HEAD wherever GET answers (actix leaves the body out).
pub fn get_or_head() -> actix_web::Route {
    web::route().guard(route_guard::Any(route_guard::Get()).or(route_guard::Head()))
}
