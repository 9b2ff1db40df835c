//! `/station/` and `/station/{id}/`: DRF's `ModelViewSet` actions, with the wire types they speak.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::api::body::{CreateLimits, read_body, read_create_body};
use crate::api::bulk::Creation;
use crate::api::conditional::{self, EntityTags};
use crate::api::guard::Session;
use crate::api::idempotency::{self, Answer};
use crate::api::links::{Origin, STATIONS_PATH};
use crate::api::query::QueryPairs;
use crate::db::models::{CountedRows, StationRow};
use crate::db::station_repository::ChangedIfAdmitted;
use crate::db::{CallerColumn, CallerGate, Carried, DbConnection, QueryResult, station_repository};
use crate::domain::listing::{InvalidQuery, SortValue, StationList};
use crate::domain::station::{
    InvalidStation, LATITUDE_MAX, LATITUDE_MIN, LONGITUDE_MAX, LONGITUDE_MIN, NAME_MAX_CHARS,
    NewStation, StationPatch, TEMPERATURE_MAX, TEMPERATURE_MIN, TIMESTAMP_MAX, TIMESTAMP_MIN,
};
use crate::error::{ApiError, ErrorDetail, QueryParameterErrors, ValidationErrors};
use crate::pagination::{
    CursorCodec, ListQueryError, ListUrl, Page, PageRequest, PageSizeLimits, PagedList,
};

/// One weather-station reading, as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"url": "http://127.0.0.1:8000/station/1/", "id": 1, "name": "CityName",
    "timestamp": 1393926310, "temperature": 28.0, "lat": 30.733315, "lon": 76.779418}))]
pub struct Station {
    /// The absolute URL of this reading.
    #[schema(format = "uri", example = "http://127.0.0.1:8000/station/1/")]
    pub url: String,
    /// The reading's id; ids are never reused.
    #[schema(example = 1, minimum = 1)]
    pub id: i64,
    /// The station's name.
    #[schema(example = "CityName", min_length = 1, max_length = 64)]
    pub name: String,
    /// When the reading was taken, in Unix seconds (UTC).
    #[schema(
        example = 1_393_926_310_i64,
        minimum = 0,
        maximum = 253_402_300_799_i64
    )]
    pub timestamp: i64,
    /// Temperature in degrees Celsius.
    #[schema(example = 28.0, minimum = -273.15, maximum = 1000.0)]
    pub temperature: f64,
    /// Latitude in degrees north.
    #[schema(example = 30.733315, minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    /// Longitude in degrees east.
    #[schema(example = 76.779418, minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
}

impl Station {
    /// The wire form of a stored row, hyperlinked from `origin`.
    pub fn from_row(row: StationRow, origin: &Origin) -> Self {
        Self {
            url: origin.station_url(row.id),
            id: row.id,
            name: row.name,
            timestamp: row.timestamp,
            temperature: row.temperature,
            lat: row.lat,
            lon: row.lon,
        }
    }
}

/// A new reading, or every field of a replaced one. Numbers may also be sent as strings holding
/// a number (`"28"`), as DRF clients do; strings are trimmed; `url`, `id` and unknown keys are
/// ignored.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"name": "CityName", "timestamp": 1393926310, "temperature": 28,
    "lat": 30.733315, "lon": 76.779418}))]
pub struct StationInput {
    /// The station's name: not blank (white space is Unicode's `White_Space`, trimmed), at most
    /// 64 characters, no NUL characters.
    #[schema(
        example = "CityName",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    pub name: String,
    /// When the reading was taken, in Unix seconds (UTC).
    #[schema(
        example = 1_393_926_310_i64,
        minimum = 0,
        maximum = 253_402_300_799_i64
    )]
    pub timestamp: i64,
    /// Temperature in degrees Celsius.
    #[schema(example = 28.0, minimum = -273.15, maximum = 1000.0)]
    pub temperature: f64,
    /// Latitude in degrees north.
    #[schema(example = 30.733315, minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    /// Longitude in degrees east.
    #[schema(example = 76.779418, minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
}

/// Any subset of a reading's fields; the others keep their values. `{}` changes nothing.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"temperature": 29.5}))]
pub struct StationPatchInput {
    /// The station's name: not blank (white space is Unicode's `White_Space`, trimmed), at most
    /// 64 characters, no NUL characters.
    #[schema(
        required = false,
        example = "CityName",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    pub name: String,
    /// When the reading was taken, in Unix seconds (UTC).
    #[schema(
        required = false,
        example = 1_393_926_310_i64,
        minimum = 0,
        maximum = 253_402_300_799_i64
    )]
    pub timestamp: i64,
    /// Temperature in degrees Celsius.
    #[schema(required = false, example = 29.5, minimum = -273.15, maximum = 1000.0)]
    pub temperature: f64,
    /// Latitude in degrees north.
    #[schema(required = false, example = 30.733315, minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    /// Longitude in degrees east.
    #[schema(required = false, example = 76.779418, minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
}

/// One page of readings, DRF's `PageNumberPagination` envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaginatedStationList {
    /// How many readings match, in all. Present when paging by number (exact; kept by the
    /// database without counting when there are no filters, counted over the matching rows when
    /// there are); absent with `cursor`, whose pages are never counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 123, minimum = 0, nullable = false)]
    pub count: Option<i64>,
    /// The next page's URL, or null on the last page.
    #[schema(
        required = true,
        format = "uri",
        example = "http://127.0.0.1:8000/station/?page=3"
    )]
    pub next: Option<String>,
    /// The previous page's URL, or null on the first page.
    #[schema(
        required = true,
        format = "uri",
        example = "http://127.0.0.1:8000/station/"
    )]
    pub previous: Option<String>,
    /// This page's readings, in the requested order (by id unless `ordering` says otherwise).
    pub results: Vec<Station>,
}

/// Whether the session's caller may see `row`: a token bound to another station may not, and
/// learns nothing of it (404, as for a missing reading).
fn visible_to(session: &Session, row: &StationRow) -> bool {
    session
        .caller()
        .is_none_or(|caller| caller.may_touch_station(&row.name))
}

/// DRF looks ids up with `int()`; anything that is not an integer is a plain 404.
pub(crate) fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| ApiError::NotFound)
}

/// When the body is bad, a missing reading still wins: lookup comes before body checks.
async fn unless_missing(session: &Session, id: i64, error: ApiError) -> ApiError {
    match session
        .read(move |conn| station_repository::exists(conn, id))
        .await
    {
        Ok(true) => error,
        Ok(false) => ApiError::StationNotFound,
        Err(other) => other,
    }
}

/// The list's query parameters, as the OpenAPI document shows them. The handler reads the raw
/// query string itself ([`StationList::parse`], [`PageRequest::parse`]), so errors come out in
/// DRF's shape.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, dead_code)]
pub struct ListParameters {
    /// 1-based page number, or `last`; pages past the end are 404. The response has `count`.
    #[param(example = "2", pattern = "^([1-9][0-9]*|last)?$")]
    page: Option<String>,
    /// Keyset paging: an empty value starts at the beginning of the order; `next` and
    /// `previous` carry the tokens to follow. No `count`, and each page costs the same however
    /// deep the walk and however large the table. Tokens are opaque and signed: a changed token,
    /// or one used with another `ordering`, is a 400. Cannot be combined with `page`.
    #[param(example = "")]
    cursor: Option<String>,
    /// Readings per page (default 10; the largest allowed is 1000 unless the server is started
    /// with another `--max-page-size`).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    page_size: Option<i64>,
    /// Comma-separated keys among `id`, `timestamp`, `temperature`, `name`, each optionally
    /// prefixed with `-` for descending; `id` is always added last, in the direction of the key
    /// before it (`-timestamp` is `-timestamp,-id`), so the order is total.
    #[param(
        example = "-timestamp,name",
        pattern = "^-?(id|timestamp|temperature|name)(,-?(id|timestamp|temperature|name))*$"
    )]
    ordering: Option<String>,
    /// Exactly this name.
    #[param(example = "CityName")]
    name: Option<String>,
    /// The name contains this text, ignoring ASCII case.
    #[param(example = "city")]
    name__icontains: Option<String>,
    /// Terms separated by spaces or commas; the name must contain each, ignoring ASCII case.
    #[param(example = "city north")]
    search: Option<String>,
    /// Unix seconds, at or after.
    #[param(example = 1393926310)]
    timestamp__gte: Option<i64>,
    /// Unix seconds, after.
    #[param(example = 1393926310)]
    timestamp__gt: Option<i64>,
    /// Unix seconds, at or before.
    #[param(example = 1393929910)]
    timestamp__lte: Option<i64>,
    /// Unix seconds, before.
    #[param(example = 1393929910)]
    timestamp__lt: Option<i64>,
    /// Degrees Celsius, at least.
    #[param(example = -10.5)]
    temperature__gte: Option<f64>,
    /// Degrees Celsius, at most.
    #[param(example = 35)]
    temperature__lte: Option<f64>,
    /// Bounding box: degrees north, at least (any number; stored latitudes are -90 to 90).
    #[param(example = 30.5)]
    lat__gte: Option<f64>,
    /// Bounding box: degrees north, at most.
    #[param(example = 31)]
    lat__lte: Option<f64>,
    /// Bounding box: degrees east, at least (any number; stored longitudes are -180 to 180).
    #[param(example = 76.5)]
    lon__gte: Option<f64>,
    /// Bounding box: degrees east, at most.
    #[param(example = 77)]
    lon__lte: Option<f64>,
}

/// List readings: filtered, ordered, and paged by number (with `count`) or by cursor.
///
/// Filters combine (all must hold); an empty value filters nothing and unknown parameters are
/// ignored, as django-filter does. Paging by number gives an exact `count`: without filters it is
/// kept by the database and costs nothing to read; with filters it counts the matching rows, and
/// page N skips the N-1 pages before it, both of which grow with the data. For deep walks over
/// large tables use `cursor`, whose pages cost the same at any depth and have no `count`.
#[utoipa::path(
    get,
    path = "/station/",
    operation_id = "list_stations",
    tag = "station",
    params(ListParameters, ("If-None-Match" = Option<String>, Header, description = "ETags of copies the client holds (`*` for any): 304 without a body when one is current.")),
    responses(
        (status = 200, description = "One page of readings.", body = PaginatedStationList,
            headers(("ETag" = String, description = "The page's version (weak), for If-None-Match."))),
        (status = 304, description = "The client's copy of the page (If-None-Match) is current; \
            no body.", headers(("ETag" = String, description = "The page's version."))),
        (status = 400, description = "A parameter has a bad value, or If-None-Match is not `*` \
            or a list of entity tags.", body = inline(ListBadRequestBody)),
        (status = 404, description = "The page does not exist (`Invalid page.`).", body = ErrorDetail),
    )
)]
pub async fn list_stations(
    req: HttpRequest,
    query: QueryPairs,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let if_none_match = EntityTags::of(&req, header::IF_NONE_MATCH)?;
    let state = session.state();
    let (mut list, request) = parse_list_query(&query, state.page_sizes(), state.cursors())?;
    list.filter.station_bound = session
        .caller()
        .and_then(|caller| caller.bound_station.clone());
    let page = session
        .read_carrying(move |conn, caller| request.read_carrying(conn, &list, caller))
        .await?
        .ok_or(ApiError::InvalidPage)?;
    page_answer(
        page,
        &ListUrl::new(origin.as_str(), STATIONS_PATH, &query),
        state.cursors(),
        &origin,
        if_none_match,
    )
}

/// A page of readings as a GET's answer: the paginated body with links on `list_url`, its weak
/// ETag, or 304 when `if_none_match` holds that tag. The list and the latest readings share it.
pub(crate) fn page_answer<K: Serialize>(
    page: Page<StationRow, K>,
    list_url: &ListUrl<'_, QueryPairs>,
    cursors: &CursorCodec,
    origin: &Origin,
    if_none_match: Option<EntityTags>,
) -> Result<HttpResponse, ApiError> {
    let links = page.links(list_url, cursors);
    let body = serde_json::to_vec(&PaginatedStationList {
        count: page.count,
        next: links.next,
        previous: links.previous,
        results: page
            .rows
            .into_iter()
            .map(|row| Station::from_row(row, origin))
            .collect(),
    })
    .map_err(|error| ApiError::Internal(Box::new(error)))?;
    let etag = conditional::page_etag(&body);
    if if_none_match.is_some_and(|tags| tags.match_weakly(&etag)) {
        return Ok(conditional::not_modified(&etag));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .content_type("application/json")
        .body(body))
}

/// The readings `query` asks for, and which page of them: every bad parameter at once, filters
/// first, in DRF's shapes.
fn parse_list_query(
    query: &QueryPairs,
    limits: PageSizeLimits,
    cursors: &CursorCodec,
) -> Result<(StationList, PageRequest<Vec<SortValue>>), ListQueryError> {
    let mut invalid = InvalidQuery::default();
    let list = StationList::parse(|name| query.last(name), &mut invalid);
    let request = PageRequest::parse(query, limits, cursors, &list, invalid)?;
    Ok((list, request))
}

/// Readings are paged in the client's ordering, each placed by its values of the ordering's keys.
impl PagedList for StationList {
    type Row = StationRow;
    type Key = Vec<SortValue>;

    fn order_name(&self) -> String {
        self.ordering.to_string()
    }

    fn fits(&self, key: &Vec<SortValue>) -> bool {
        self.ordering.fits(key)
    }

    fn key_of(&self, row: &StationRow) -> Vec<SortValue> {
        crate::transfer::sort_key(self, row)
    }

    fn count(&self, conn: &mut DbConnection) -> QueryResult<i64> {
        station_repository::count(conn, &self.filter)
    }

    fn rows_at(
        &self,
        conn: &mut DbConnection,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<StationRow>> {
        station_repository::rows_at(conn, &self.filter, &self.ordering, offset, limit)
    }

    fn counted_rows_at(
        &self,
        conn: &mut DbConnection,
        offset: i64,
        limit: i64,
        caller: &CallerColumn,
    ) -> QueryResult<Option<CountedRows<StationRow>>> {
        station_repository::counted_rows_at(
            conn,
            &self.filter,
            &self.ordering,
            offset,
            limit,
            caller,
        )
        .map(Some)
    }

    fn rows_beyond(
        &self,
        conn: &mut DbConnection,
        boundary: Option<&Vec<SortValue>>,
        backwards: bool,
        limit: i64,
    ) -> QueryResult<Vec<StationRow>> {
        let boundary = boundary.map(Vec::as_slice);
        station_repository::rows_beyond(
            conn,
            &self.filter,
            &self.ordering,
            boundary,
            backwards,
            limit,
        )
    }

    fn rows_beyond_carrying(
        &self,
        conn: &mut DbConnection,
        boundary: Option<&Vec<SortValue>>,
        backwards: bool,
        limit: i64,
        caller: &CallerColumn,
    ) -> QueryResult<Option<Carried<Vec<StationRow>>>> {
        let boundary = boundary.map(Vec::as_slice);
        station_repository::rows_beyond_carrying(
            conn,
            &self.filter,
            &self.ordering,
            boundary,
            backwards,
            limit,
            caller,
        )
        .map(Some)
    }
}

// Request bodies are documented as JSON only, though form fields are accepted as well: given a
// second media type, openapi-python-client generates body code that fails to import and that
// would send every body as a form.

/// Record a new reading, or many at once.
///
/// A JSON object (or form fields) creates one reading: 201 with it, and its URL in `Location`.
/// A JSON array, CSV (`text/csv`: a header row naming `name`, `timestamp`, `temperature`, `lat`
/// and `lon` in any order, then one reading a row) or NDJSON (`application/x-ndjson`: one object
/// a line) is a bulk upload of 1 to `--max-bulk-items` readings (10,000 unless configured): all
/// are created, in one transaction, or none. 201 with the created readings in input order, no
/// `Location`. A bad item makes a 400 with one entry per input item, `{}` for the good ones.
///
/// With an `Idempotency-Key`, a retry of the same request (method, path and body) gets the
/// first answer again, marked `Idempotent-Replayed: true`, and writes nothing.
#[utoipa::path(
    post,
    path = "/station/",
    operation_id = "create_station",
    tag = "station",
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "Makes a retry safe: a request with a key already answered gets that \
                answer again (for 24 hours unless configured), and writes nothing. Scoped to the \
                caller. 1 to 255 visible ASCII characters.",
            nullable = false, min_length = 1, max_length = 255, pattern = r"^[!-~]{1,255}$",
            example = "3f1c2a7e-upload-2026-12-03"),
    ),
    request_body(
        description = "One reading (JSON object; form fields are accepted too), or a bulk upload \
            as a JSON array, CSV or NDJSON.",
        content(
            (CreateStationBody = "application/json"),
            (String = "text/csv",
                example = "name,timestamp,temperature,lat,lon\nCityName,1393926310,28,30.733315,76.779418\n"),
            (String = "application/x-ndjson",
                example = "{\"name\":\"CityName\",\"timestamp\":1393926310,\"temperature\":28,\"lat\":30.733315,\"lon\":76.779418}\n"),
        )
    ),
    responses(
        (status = 201, description = "Created: the reading (with `Location`), or for a bulk \
            upload the readings in input order.", body = inline(CreatedStations),
            headers(
                ("Location" = String, description = "The new reading's URL (single creates only)."),
                ("Idempotent-Replayed" = String, description = "`true` when this is the stored \
                    answer to an earlier request with the same Idempotency-Key."),
            )),
        (status = 400, description = "Malformed body, invalid fields, a bad bulk upload (one \
            entry per item, `{}` for good ones), or a malformed Idempotency-Key.",
            body = inline(CreateBadRequestBody)),
        (status = 403, description = "A device token bound to one station sent a reading of \
            another; nothing was written.", body = ErrorDetail),
        (status = 409, description = "A request with this Idempotency-Key is still running.",
            body = ErrorDetail),
        (status = 413, description = "The body is over the size limit.", body = ErrorDetail),
        (status = 415, description = "The body is not JSON, form data, CSV or NDJSON.",
            body = ErrorDetail),
        (status = 422, description = "This Idempotency-Key was used with another request.",
            body = ErrorDetail),
    )
)]
pub async fn create_station(
    req: HttpRequest,
    payload: web::Payload,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let http = session.state().http();
    let limits = CreateLimits {
        single: http.max_body_bytes,
        bulk: http.max_bulk_body_bytes,
    };
    let max_items = http.max_bulk_items;
    let body = read_create_body(&req, payload, limits);
    idempotency::respond(
        &req,
        &session,
        body,
        |body| &body.bytes,
        async |body, recorder| {
            let creation = Creation::parse(&body, max_items)?;
            drop(body);
            let bound = session
                .caller()
                .and_then(|caller| caller.bound_station.as_deref());
            check_binding(bound, &creation)?;
            match creation {
                Creation::One(new_station) if !recorder.records() => {
                    // One statement checks the caller and writes: no answer to store with it.
                    let row = session
                        .write_if_admitted(move |conn, gate| {
                            station_repository::insert_if_admitted(conn, &new_station, gate)
                        })
                        .await?;
                    record_ingested(&session, 1);
                    Ok(created_one(row, &origin))
                }
                Creation::One(new_station) => {
                    let render = move |row| created_one(row, &origin);
                    let committed = session
                        .write({
                            let render = render.clone();
                            move |conn| {
                                recorder.commit(
                                    conn,
                                    |conn| station_repository::insert(conn, &new_station),
                                    render,
                                )
                            }
                        })
                        .await?;
                    let answer = committed.into_answer(render)?;
                    record_ingested(&session, 1);
                    Ok(answer)
                }
                Creation::Many(new_stations) => {
                    let rows = new_stations.len();
                    let render = move |rows| created_many(rows, &origin);
                    let committed = session
                        .write({
                            let render = render.clone();
                            move |conn| {
                                recorder.commit(
                                    conn,
                                    |conn| {
                                        station_repository::insert_many(
                                            conn,
                                            new_stations.as_slice(),
                                        )
                                    },
                                    render,
                                )
                            }
                        })
                        .await?;
                    let answer = committed.into_answer(render)?;
                    record_ingested(&session, rows);
                    Ok(answer)
                }
            }
        },
    )
    .await
}

/// Counts `rows` readings written, when metrics are on. An answer replayed for a repeated
/// `Idempotency-Key` never gets here: it wrote nothing.
fn record_ingested(session: &Session, rows: usize) {
    if let Some(metrics) = session.state().metrics() {
        metrics.record_ingested(rows);
    }
}

/// A token bound to one station writes readings of that station only (403 otherwise).
fn check_binding(bound: Option<&str>, creation: &Creation) -> Result<(), ApiError> {
    let Some(station) = bound else {
        return Ok(());
    };
    let foreign = match creation {
        Creation::One(reading) => reading.name.as_ref() != station,
        Creation::Many(readings) => readings.first_not_named(station).is_some(),
    };
    if foreign {
        return Err(ApiError::OtherStation(station.to_owned()));
    }
    Ok(())
}

/// The answer to a single create: the reading, with its URL in `Location`.
fn created_one(row: StationRow, origin: &Origin) -> Answer {
    let station = Station::from_row(row, origin);
    let location = station.url.clone();
    Answer::json(StatusCode::CREATED, &station).with_location(location)
}

/// The answer to a bulk upload: the readings in input order, no `Location`.
fn created_many(rows: Vec<StationRow>, origin: &Origin) -> Answer {
    // A reading's JSON is its URL, its name and, but for extreme numbers, under 128 bytes of
    // keys and numbers; should it be more, the buffer grows.
    let url_length = origin.station_url(i64::MAX).len();
    let capacity = rows
        .iter()
        .map(|row| url_length + row.name.len() + 128)
        .sum();
    Answer::json_with_capacity(
        StatusCode::CREATED,
        &CreatedReadings { rows, origin },
        capacity,
    )
}

/// A bulk upload's readings as the wire's array, each turned into a [`Station`] only as it is
/// written, so a 10,000-reading answer never holds its readings twice.
struct CreatedReadings<'a> {
    rows: Vec<StationRow>,
    origin: &'a Origin,
}

impl Serialize for CreatedReadings<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.rows
                .iter()
                .map(|row| Station::from_row(row.clone(), self.origin)),
        )
    }
}

/// What a create takes as JSON: one reading, or a bulk upload.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[schema(example = json!({"name": "CityName", "timestamp": 1393926310, "temperature": 28,
    "lat": 30.733315, "lon": 76.779418}))]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub enum CreateStationBody {
    /// One reading.
    One(StationInput),
    /// A bulk upload: at least one reading, all created or none.
    Many(Vec<StationInput>),
}

/// What a create answers with: the reading, or a bulk upload's readings in input order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub enum CreatedStations {
    /// The created reading.
    One(Station),
    /// The created readings, in input order.
    Many(Vec<Station>),
}

/// A create's 400 body: a parse error (`detail`), field errors, or a bulk upload's errors, one
/// entry per input item (`{}` for a good one).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub enum CreateBadRequestBody {
    /// The body could not be parsed, or the Idempotency-Key is malformed.
    Detail(ErrorDetail),
    /// Some fields break the rules, or a bulk upload is empty or too long (`non_field_errors`).
    Fields(ValidationErrors),
    /// A bulk upload's items, aligned to the input.
    Items(Vec<ValidationErrors>),
}

/// A list's 400 body: bad query parameters, or a malformed `If-None-Match` (`detail`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub enum ListBadRequestBody {
    /// Each bad parameter with its messages.
    Parameters(QueryParameterErrors),
    /// A malformed `If-None-Match`.
    Detail(ErrorDetail),
}

/// A 400 body: a parse error (`detail`) or field errors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub enum BadRequestBody {
    /// The body could not be parsed.
    Detail(ErrorDetail),
    /// Some fields break the rules.
    Fields(ValidationErrors),
}

/// Read one reading.
#[utoipa::path(
    get,
    path = "/station/{id}/",
    operation_id = "retrieve_station",
    tag = "station",
    params(
        ("id" = i64, Path, description = "The reading's id.", example = 1),
        ("If-None-Match" = Option<String>, Header, description = "ETags of copies the client holds (`*` for any): 304 without a body when one is current."),
    ),
    responses(
        (status = 200, description = "The reading.", body = Station,
            headers(("ETag" = String, description = "The reading's version, for If-None-Match and If-Match."))),
        (status = 304, description = "The client's copy (If-None-Match) is current; no body.",
            headers(("ETag" = String, description = "The reading's version."))),
        (status = 400, description = "If-None-Match is not `*` or a list of entity tags.",
            body = ErrorDetail),
        (status = 404, description = "No such reading.", body = ErrorDetail),
    )
)]
pub async fn retrieve_station(
    req: HttpRequest,
    id: web::Path<String>,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let if_none_match = EntityTags::of(&req, header::IF_NONE_MATCH)?;
    let row = session
        .read_carrying(move |conn, caller| station_repository::find_carrying(conn, id, caller))
        .await?
        .filter(|row| visible_to(&session, row))
        .ok_or(ApiError::StationNotFound)?;
    let etag = conditional::reading_etag(&row);
    if if_none_match.is_some_and(|tags| tags.match_weakly(&etag)) {
        return Ok(conditional::not_modified(&etag));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .json(Station::from_row(row, &origin)))
}

/// Replace every field of a reading.
#[utoipa::path(
    put,
    path = "/station/{id}/",
    operation_id = "update_station",
    tag = "station",
    params(
        ("id" = i64, Path, description = "The reading's id.", example = 1),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version the change was made from (`*` for any): 412 and nothing changed when the reading is no longer that version. Prevents lost updates."),
    ),
    request_body(
        description = "All five fields, as JSON or as form fields.",
        content((StationInput = "application/json"))
    ),
    responses(
        (status = 200, description = "The replaced reading.", body = Station,
            headers(("ETag" = String, description = "The reading's version, for If-None-Match and If-Match."))),
        (status = 400, description = "Malformed body, invalid fields, or an If-Match that is \
            not `*` or a list of entity tags.", body = inline(BadRequestBody)),
        (status = 404, description = "No such reading (PUT never creates).", body = ErrorDetail),
        (status = 412, description = "If-Match names another version of the reading; nothing \
            changed.", body = ErrorDetail),
        (status = 413, description = "The body is over the size limit.", body = ErrorDetail),
        (status = 415, description = "The body is neither JSON nor form data.", body = ErrorDetail),
    )
)]
pub async fn update_station(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let row = change_station(
        (req, id, payload, &session),
        NewStation::parse,
        station_repository::replace_if_admitted,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, conditional::reading_etag(&row)))
        .json(Station::from_row(row, &origin)))
}

/// Change some fields of a reading.
#[utoipa::path(
    patch,
    path = "/station/{id}/",
    operation_id = "partial_update_station",
    tag = "station",
    params(
        ("id" = i64, Path, description = "The reading's id.", example = 1),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version the change was made from (`*` for any): 412 and nothing changed when the reading is no longer that version. Prevents lost updates."),
    ),
    request_body(
        description = "Any subset of the fields, as JSON or as form fields.",
        content((StationPatchInput = "application/json"))
    ),
    responses(
        (status = 200, description = "The changed reading.", body = Station,
            headers(("ETag" = String, description = "The reading's version, for If-None-Match and If-Match."))),
        (status = 400, description = "Malformed body, invalid fields, or an If-Match that is \
            not `*` or a list of entity tags.", body = inline(BadRequestBody)),
        (status = 404, description = "No such reading.", body = ErrorDetail),
        (status = 412, description = "If-Match names another version of the reading; nothing \
            changed.", body = ErrorDetail),
        (status = 413, description = "The body is over the size limit.", body = ErrorDetail),
        (status = 415, description = "The body is neither JSON nor form data.", body = ErrorDetail),
    )
)]
pub async fn partial_update_station(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let row = change_station(
        (req, id, payload, &session),
        StationPatch::parse,
        station_repository::patch_if_admitted,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, conditional::reading_etag(&row)))
        .json(Station::from_row(row, &origin)))
}

/// What a PUT or PATCH of one reading brings: the request, the id in its path, its body and the
/// checked session.
type ChangeRequest<'s> = (HttpRequest, web::Path<String>, web::Payload, &'s Session);

/// PUT and PATCH: parses the id, reads the body and `parse`s it into a change, then `apply`s the
/// change in a write; the row as written. A missing reading is 404 before any body error (the
/// contract's order of checks), and after the write when it went missing meanwhile.
async fn change_station<C: Send + Sync + 'static>(
    (req, id, payload, session): ChangeRequest<'_>,
    parse: fn(&Value) -> Result<C, InvalidStation>,
    apply: fn(&mut DbConnection, i64, &C, Option<&CallerGate>) -> ChangedIfAdmitted<StationRow>,
) -> Result<StationRow, ApiError> {
    let id = parse_id(&id)?;
    let if_match = EntityTags::of(&req, header::IF_MATCH)?;
    let parsed = read_body(&req, payload, session.state().http().max_body_bytes)
        .await
        .and_then(|body| parse(&body).map_err(ApiError::Invalid));
    let change = match parsed {
        Ok(change) => change,
        Err(error) => return Err(unless_missing(session, id, error).await),
    };
    let Some(if_match) = if_match else {
        // One statement checks the caller and writes.
        let change = Arc::new(change);
        let changed = session
            .write_if_admitted(move |conn, gate| apply(conn, id, &change, gate))
            .await?;
        return changed.ok_or(ApiError::StationNotFound);
    };
    session
        .write(move |conn| {
            if let Some(refused) = unmet_if_match(conn, id, &if_match)? {
                return Ok(Err(refused));
            }
            Ok(ungated(apply(conn, id, &change, None)?).ok_or(ApiError::StationNotFound))
        })
        .await?
}

/// What a change run without a gate returned: the change always runs (and may find no reading).
fn ungated<T>(outcome: Option<(Option<T>, Option<i64>)>) -> Option<T> {
    outcome.and_then(|(value, _)| value)
}

/// In a write's transaction: why the `If-Match` `tags` stop the write of reading `id` (412 for
/// another version, 404 for no reading), with the row locked so the version cannot change before
/// the write; `None` when they hold.
fn unmet_if_match(
    conn: &mut DbConnection,
    id: i64,
    tags: &EntityTags,
) -> QueryResult<Option<ApiError>> {
    Ok(match station_repository::find_for_update(conn, id)? {
        None => Some(ApiError::StationNotFound),
        Some(row) if !tags.match_strongly(&conditional::reading_etag(&row)) => {
            Some(ApiError::PreconditionFailed)
        }
        Some(_) => None,
    })
}

/// Delete a reading.
#[utoipa::path(
    delete,
    path = "/station/{id}/",
    operation_id = "destroy_station",
    tag = "station",
    params(
        ("id" = i64, Path, description = "The reading's id.", example = 2),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version the change was made from (`*` for any): 412 and nothing changed when the reading is no longer that version. Prevents lost updates."),
    ),
    responses(
        (status = 204, description = "Deleted; no body."),
        (status = 400, description = "If-Match is not `*` or a list of entity tags.",
            body = ErrorDetail),
        (status = 404, description = "No such reading.", body = ErrorDetail),
        (status = 412, description = "If-Match names another version of the reading; nothing \
            was deleted.", body = ErrorDetail),
    )
)]
pub async fn destroy_station(
    req: HttpRequest,
    id: web::Path<String>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let if_match = EntityTags::of(&req, header::IF_MATCH)?;
    let deleted = match if_match {
        // One statement checks the caller and deletes.
        None => session
            .write_if_admitted(move |conn, gate| {
                station_repository::delete_if_admitted(conn, id, gate)
            })
            .await?
            .is_some(),
        Some(if_match) => {
            session
                .write(move |conn| {
                    if let Some(refused) = unmet_if_match(conn, id, &if_match)? {
                        return Ok(Err(refused));
                    }
                    let deleted = station_repository::delete_if_admitted(conn, id, None)?;
                    Ok(Ok(ungated(deleted).is_some()))
                })
                .await??
        }
    };
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::StationNotFound)
    }
}

/// DRF's `SimpleMetadata` description of the writable fields.
fn field_metadata() -> Value {
    json!({
        "url": {"type": "string", "required": false, "read_only": true, "label": "Url"},
        "id": {"type": "integer", "required": false, "read_only": true, "label": "ID"},
        "name": {"type": "string", "required": true, "read_only": false, "label": "Name",
                 "max_length": NAME_MAX_CHARS},
        "timestamp": {"type": "integer", "required": true, "read_only": false,
                      "label": "Timestamp", "min_value": TIMESTAMP_MIN, "max_value": TIMESTAMP_MAX},
        "temperature": {"type": "float", "required": true, "read_only": false,
                        "label": "Temperature", "min_value": TEMPERATURE_MIN,
                        "max_value": TEMPERATURE_MAX},
        "lat": {"type": "float", "required": true, "read_only": false, "label": "Lat",
                "min_value": LATITUDE_MIN, "max_value": LATITUDE_MAX},
        "lon": {"type": "float", "required": true, "read_only": false, "label": "Lon",
                "min_value": LONGITUDE_MIN, "max_value": LONGITUDE_MAX},
    })
}

/// DRF's OPTIONS body; `action` is the write method described, if any.
pub fn metadata(name: &str, description: &str, action: Option<&str>) -> Value {
    let mut body = json!({
        "name": name,
        "description": description,
        "renders": ["application/json"],
        "parses": ["application/json", "application/x-www-form-urlencoded"],
    });
    if let (Some(action), Value::Object(map)) = (action, &mut body) {
        map.insert("actions".to_owned(), json!({ action: field_metadata() }));
    }
    body
}

/// OPTIONS on the collection.
pub async fn list_options() -> HttpResponse {
    HttpResponse::Ok().json(metadata(
        "Station List",
        "Weather-station readings: list them, 10 a page, or record a new one.",
        Some("POST"),
    ))
}

/// OPTIONS on one reading; like DRF, `actions` only when the reading exists.
pub async fn detail_options(
    id: web::Path<String>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let exists = match parse_id(&id) {
        Ok(id) => session
            .read(move |conn| station_repository::find(conn, id))
            .await?
            .is_some_and(|row| visible_to(&session, &row)),
        Err(_) => false,
    };
    Ok(HttpResponse::Ok().json(metadata(
        "Station Instance",
        "One weather-station reading: read, replace, change or delete it.",
        exists.then_some("PUT"),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::listing::{NOT_A_WHOLE_NUMBER, Ordering, StationFilter};
    use crate::pagination::{Cursor, InvalidPage, PageNumber, PageSelector};

    const LIMITS: PageSizeLimits = PageSizeLimits {
        default: 10,
        max: 1000,
    };

    fn parse(query: &str) -> Result<(StationList, PageRequest<Vec<SortValue>>), ListQueryError> {
        parse_list_query(
            &QueryPairs::parse(query),
            LIMITS,
            &CursorCodec::new(b"test key"),
        )
    }

    fn errors(query: &str) -> Vec<(&'static str, String)> {
        match parse(query) {
            Err(ListQueryError::Invalid(invalid)) => invalid.errors().to_vec(),
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn every_bad_parameter_is_reported_at_once() {
        assert_eq!(
            errors("timestamp__gte=soon&lat__lte=north&ordering=colour&page_size=0"),
            vec![
                ("timestamp__gte", NOT_A_WHOLE_NUMBER.to_owned()),
                ("lat__lte", "Enter a number.".to_owned()),
                ("ordering", Ordering::parse("colour").unwrap_err()),
                (
                    "page_size",
                    "Ensure this value is greater than or equal to 1.".to_owned()
                ),
            ]
        );
        assert_eq!(
            errors("page_size=1001"),
            vec![(
                "page_size",
                "Ensure this value is less than or equal to 1000.".to_owned()
            )]
        );
    }

    #[test]
    fn empty_values_filter_nothing_and_unknown_parameters_are_ignored() {
        let (list, request) =
            parse("name=&temperature__gte=&search=&colour=red&page_size=").unwrap();
        assert_eq!(list.filter, StationFilter::default());
        assert_eq!(request.size, 10);
        assert_eq!(request.page, PageSelector::Number(PageNumber::Number(1)));
    }

    #[test]
    fn a_bad_page_number_is_a_404_but_only_when_nothing_else_is_wrong() {
        assert_eq!(
            parse("page=0").unwrap_err(),
            ListQueryError::Page(InvalidPage)
        );
        assert_eq!(errors("page=0&lat__gte=x").len(), 1);
    }

    #[test]
    fn page_and_cursor_do_not_mix() {
        assert_eq!(
            errors("page=2&cursor="),
            vec![("cursor", "Use either page or cursor, not both.".to_owned())]
        );
        assert_eq!(
            parse("cursor=").unwrap().1.page,
            PageSelector::Cursor(Cursor::Start)
        );
        assert_eq!(
            errors("cursor=garbage"),
            vec![("cursor", "Invalid cursor.".to_owned())]
        );
    }

    #[test]
    fn a_row_is_placed_by_its_values_of_the_ordering_keys() {
        let list = StationList {
            filter: StationFilter::default(),
            ordering: Ordering::parse("-temperature,name").unwrap(),
        };
        let row = StationRow {
            id: 7,
            name: "Oslo".to_owned(),
            timestamp: 1_700_000_000,
            temperature: -3.5,
            lat: 59.91,
            lon: 10.75,
        };
        let key = list.key_of(&row);
        assert_eq!(
            key,
            [
                SortValue::Real(-3.5),
                SortValue::Text("Oslo".to_owned()),
                SortValue::Integer(7)
            ]
        );
        assert!(list.fits(&key));
    }

    fn creation(body: &str) -> Creation {
        let body = crate::api::body::CreateBody {
            format: crate::api::body::CreateFormat::Json,
            bytes: web::Bytes::copy_from_slice(body.as_bytes()),
        };
        Creation::parse(&body, 10).unwrap()
    }

    #[test]
    fn a_bound_token_writes_only_its_own_station_single_or_bulk() {
        let kitchen = r#"{"name":"Kitchen","timestamp":1,"temperature":1,"lat":1,"lon":1}"#;
        let attic = r#"{"name":"Attic","timestamp":1,"temperature":1,"lat":1,"lon":1}"#;
        let refused = |body: &str| match check_binding(Some("Kitchen"), &creation(body)) {
            Err(error @ ApiError::OtherStation(_)) => error.to_string(),
            other => panic!("{other:?}"),
        };

        assert!(check_binding(Some("Kitchen"), &creation(kitchen)).is_ok());
        assert!(
            check_binding(
                Some("Kitchen"),
                &creation(&format!("[{kitchen},{kitchen}]"))
            )
            .is_ok()
        );
        assert!(check_binding(None, &creation(attic)).is_ok());
        assert_eq!(
            refused(attic),
            "This token may only write readings of station \"Kitchen\"."
        );
        assert_eq!(
            refused(&format!("[{kitchen},{attic},{kitchen}]")),
            "This token may only write readings of station \"Kitchen\"."
        );
    }

    #[test]
    fn the_field_metadata_lists_the_five_fields_with_their_limits() {
        let body = metadata("Station List", "d", Some("POST"));
        let fields = &body["actions"]["POST"];
        assert_eq!(fields["name"]["max_length"], 64);
        assert_eq!(fields["temperature"]["min_value"], -273.15);
        assert_eq!(fields["url"]["read_only"], true);
        assert!(
            metadata("Station Instance", "d", None)
                .get("actions")
                .is_none()
        );
    }
}
