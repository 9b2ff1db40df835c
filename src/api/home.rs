//! `/home/`: the weather-station page (each station's latest reading, a map, a chart, kept live
//! from the stream), as built from `web/` into `web/dist/` and embedded in the binary, so the
//! service needs no other file and the page loads nothing from elsewhere.
//!
//! The page needs staff credentials (the browser's own Basic prompt) unless the service runs
//! with `--public-home`; then the page and the reads it makes (latest, aggregate, stream) are
//! open to anyone, and nothing else is.

use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Scope, web};
use rust_embed::{EmbeddedFile, RustEmbed};
use serde::Serialize;

use crate::api::conditional::{EntityTags, not_modified};
use crate::api::guard::{AppState, RouteAccess, require};
use crate::api::routes::get_or_head;
use crate::config::{HomeSettings, MapTiles};
use crate::error::ApiError;

/// Where the page is served.
pub const HOME_PATH: &str = "/home/";

/// The readings a station sends in, apart: the textbook's Raspberry Pi posts every 10 seconds.
/// The page calls a reading old when it is more than three of these late.
const READING_INTERVAL_SECONDS: u32 = 10;

/// The attribution shown with OpenStreetMap's tiles, the documented `--map-tile-url` example.
pub const OPENSTREETMAP_ATTRIBUTION: &str =
    "&copy; <a href=\"https://www.openstreetmap.org/copyright\">OpenStreetMap</a> contributors";

/// The page's built files (`npm run build` in `web/`), in the binary.
#[derive(RustEmbed)]
#[folder = "web/dist/"]
struct BuiltPage;

/// The `/home/` scope: the page, its settings and its assets, behind the gate.
pub fn scope() -> Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope("/home")
        .wrap(from_fn(|req, next| {
            require(RouteAccess::HomePage, req, next)
        }))
        .route("/", get_or_head().to(page))
        .route("/config.json", get_or_head().to(config))
        .route("/assets/{file:.+}", get_or_head().to(asset))
}

/// What the page is told about its deployment.
#[derive(Debug, Serialize)]
struct PageConfig<'a> {
    /// A Leaflet tile URL template, when the deployment allows the page to load tiles.
    map_tile_url: Option<&'a str>,
    /// The tiles' attribution (HTML), shown on the map with them.
    map_attribution: Option<&'a str>,
    /// How often a station reports, in seconds.
    reading_interval_seconds: u32,
}

async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let file = BuiltPage::get("index.html").ok_or(ApiError::NotFound)?;
    let home = &state.http().home;
    let mut response = embedded(&req, &file, "no-cache")?;
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(home)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

async fn config(state: web::Data<AppState>) -> HttpResponse {
    let tiles = state.http().home.map_tiles.as_ref();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .json(PageConfig {
            map_tile_url: tiles.map(|tiles| tiles.url_template.as_str()),
            map_attribution: tiles.map(|tiles| tiles.attribution.as_str()),
            reading_interval_seconds: READING_INTERVAL_SECONDS,
        })
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let path = format!("assets/{file}");
    let file = BuiltPage::get(&path).ok_or(ApiError::NotFound)?;
    // The build names each asset by a hash of its content, so a name never changes meaning.
    embedded(&req, &file, "max-age=31536000, immutable")
}

/// `file` with its type, a strong ETag of its content and `Cache-Control: private, <caching>`
/// (the page may sit behind credentials), or 304 when the client holds it already.
fn embedded(
    req: &HttpRequest,
    file: &EmbeddedFile,
    caching: &str,
) -> Result<HttpResponse, ApiError> {
    let etag = format!("\"{}\"", crate::hex::encode(&file.metadata.sha256_hash()));
    if EntityTags::of(req, header::IF_NONE_MATCH)?.is_some_and(|tags| tags.match_weakly(&etag)) {
        return Ok(not_modified(&etag));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, file.metadata.mimetype()))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, format!("private, {caching}")))
        .body(file.data.clone().into_owned()))
}

/// The page may run its own scripts and styles, fetch from its origin and show images from its
/// origin, `data:` URLs and the tile server when there is one; nothing may frame it.
fn content_security_policy(home: &HomeSettings) -> String {
    let tiles = home
        .map_tiles
        .as_ref()
        .map(|tiles| format!(" {}", tiles.source))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Checks a `--map-tile-url`: an http(s) Leaflet template with `{z}`, `{x}` and `{y}`, whose
/// host may start with `{s}.` for subdomains. The tiles' attribution is left empty, for
/// `--map-attribution` to fill in.
pub fn parse_tile_url(raw: &str) -> Result<MapTiles, String> {
    let template = raw.trim();
    let wrong = || {
        format!(
            "{template:?} is not a tile URL template: give http(s)://host/…/{{z}}/{{x}}/{{y}}…, \
             e.g. https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png"
        )
    };
    let (scheme, rest) = template.split_once("://").ok_or_else(wrong)?;
    let (authority, path) = rest.split_once('/').ok_or_else(wrong)?;
    let (host, subdomains) = match authority.strip_prefix("{s}.") {
        Some(host) => (host, true),
        None => (authority, false),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-.:[]".contains(&byte));
    // Nothing that could end the policy's source list or the page's attribute.
    let path_ok = path
        .bytes()
        .all(|byte| byte.is_ascii_graphic() && !b"\"'<>;,\\`".contains(&byte));
    let placeholders = ["{z}", "{x}", "{y}"]
        .iter()
        .all(|placeholder| path.contains(placeholder));
    if !matches!(scheme, "http" | "https") || !host_ok || !path_ok || !placeholders {
        return Err(wrong());
    }
    let source = if subdomains {
        format!("{scheme}://*.{host}")
    } else {
        format!("{scheme}://{host}")
    };
    Ok(MapTiles {
        url_template: template.to_owned(),
        source,
        attribution: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_template_gives_the_policy_its_origin() {
        let tiles = parse_tile_url("https://tile.openstreetmap.org/{z}/{x}/{y}.png").unwrap();
        assert_eq!(tiles.source, "https://tile.openstreetmap.org");
        let tiles = parse_tile_url("http://{s}.tiles.example:8080/{z}/{x}/{y}.png").unwrap();
        assert_eq!(tiles.source, "http://*.tiles.example:8080");
    }

    #[test]
    fn a_tile_template_without_placeholders_or_with_policy_characters_is_refused() {
        for bad in [
            "https://tile.example/{z}/{x}.png",
            "ftp://tile.example/{z}/{x}/{y}.png",
            "https://tile.example;script-src *//{z}/{x}/{y}.png",
            "https://tile.example/{z}/{x}/{y}.png; script-src *",
            "tile.example/{z}/{x}/{y}.png",
            "https:///{z}/{x}/{y}.png",
        ] {
            assert!(parse_tile_url(bad).is_err(), "{bad}");
        }
    }
}
