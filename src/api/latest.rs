//! `GET /station/latest/`: each station's newest reading, by name, paged like the list: what the
//! textbook's `home` view showed, for every station at once.

use std::cell::OnceCell;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use utoipa::IntoParams;

use crate::api::conditional::EntityTags;
use crate::api::guard::Session;
use crate::api::links::Origin;
use crate::api::query::QueryPairs;
use crate::api::stations::{ListBadRequestBody, PaginatedStationList, page_answer};
use crate::db::models::StationRow;
use crate::db::{DbConnection, QueryResult, station_repository};
use crate::domain::listing::{InvalidQuery, StationFilter, StationList};
use crate::error::{ApiError, ErrorDetail};
use crate::pagination::{ListUrl, PageRequest, PagedList};

/// Where the latest readings are served.
pub const LATEST_PATH: &str = "/station/latest/";

/// The latest readings' query parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, dead_code)]
pub struct LatestParameters {
    /// 1-based page number, or `last`.
    #[param(example = "1", pattern = "^([1-9][0-9]*|last)?$")]
    page: Option<String>,
    /// Keyset paging by name: an empty value starts at the first name; `next` and `previous`
    /// carry the tokens to follow. Cannot be combined with `page`.
    #[param(example = "")]
    cursor: Option<String>,
    /// Stations per page (default 10).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    page_size: Option<i64>,
    /// Exactly this name.
    #[param(example = "CityName")]
    name: Option<String>,
    /// The name contains this text, ignoring ASCII case.
    name__icontains: Option<String>,
    /// Terms separated by spaces or commas; the name must contain each, ignoring ASCII case.
    search: Option<String>,
    /// Where the newest reading was taken: degrees north, at least.
    lat__gte: Option<f64>,
    /// Degrees north, at most.
    lat__lte: Option<f64>,
    /// Degrees east, at least.
    lon__gte: Option<f64>,
    /// Degrees east, at most.
    lon__lte: Option<f64>,
}

/// Each station's newest reading (greatest `timestamp`, then greatest `id`), ordered by name.
///
/// Paged like the list (`page` with `count`, or `cursor`). The name filters and the lat/lon box
/// apply (the box to where the newest reading was taken); a bound token sees its station alone.
/// Costs one index seek per station, however many readings each has.
#[utoipa::path(
    get,
    path = "/station/latest/",
    operation_id = "latest_stations",
    tag = "station",
    params(LatestParameters, ("If-None-Match" = Option<String>, Header, description = "ETags of copies the client holds: 304 without a body when one is current.")),
    responses(
        (status = 200, description = "One page of stations, each by its newest reading.",
            body = PaginatedStationList,
            headers(("ETag" = String, description = "The page's version (weak)."))),
        (status = 304, description = "The client's copy of the page is current; no body."),
        (status = 400, description = "A parameter has a bad value.", body = inline(ListBadRequestBody)),
        (status = 404, description = "The page does not exist (`Invalid page.`).", body = ErrorDetail),
    )
)]
pub async fn latest_stations(
    req: HttpRequest,
    query: QueryPairs,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let if_none_match = EntityTags::of(&req, header::IF_NONE_MATCH)?;
    let state = session.state();
    let mut invalid = InvalidQuery::default();
    let parsed = StationList::parse(|name| query.last(name), &mut invalid);
    let latest = LatestList {
        filter: StationFilter {
            name: parsed.filter.name,
            name_contains: parsed.filter.name_contains,
            search_terms: parsed.filter.search_terms,
            lat: parsed.filter.lat,
            lon: parsed.filter.lon,
            station_bound: session
                .caller()
                .and_then(|caller| caller.bound_station.clone()),
            ..StationFilter::default()
        },
        rows: OnceCell::new(),
    };
    // The list's other parameters (ordering, timestamp and temperature bounds) do not apply.
    let request = PageRequest::parse(
        &query,
        state.page_sizes(),
        state.cursors(),
        &latest,
        invalid,
    )?;
    let page = session
        .read(move |conn| request.read(conn, &latest))
        .await?
        .ok_or(ApiError::InvalidPage)?;
    page_answer(
        page,
        &ListUrl::new(origin.as_str(), LATEST_PATH, &query),
        state.cursors(),
        &origin,
        if_none_match,
    )
}

/// The newest reading of each station the filter admits, by name: read once per request (the
/// count and the page share it), a row per station.
struct LatestList {
    filter: StationFilter,
    rows: OnceCell<Vec<StationRow>>,
}

impl LatestList {
    fn rows(&self, conn: &mut DbConnection) -> QueryResult<&[StationRow]> {
        if let Some(rows) = self.rows.get() {
            return Ok(rows);
        }
        let mut rows = station_repository::latest_per_name(conn)?;
        rows.retain(|row| {
            self.filter
                .admits(&row.name, row.timestamp, row.temperature, row.lat, row.lon)
        });
        Ok(self.rows.get_or_init(|| rows))
    }
}

impl PagedList for LatestList {
    type Row = StationRow;
    type Key = String;

    fn order_name(&self) -> String {
        "latest by name".to_owned()
    }

    fn fits(&self, _key: &String) -> bool {
        true
    }

    fn key_of(&self, row: &StationRow) -> String {
        row.name.clone()
    }

    fn count(&self, conn: &mut DbConnection) -> QueryResult<i64> {
        Ok(i64::try_from(self.rows(conn)?.len()).unwrap_or(i64::MAX))
    }

    fn rows_at(
        &self,
        conn: &mut DbConnection,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<StationRow>> {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .rows(conn)?
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect())
    }

    fn rows_beyond(
        &self,
        conn: &mut DbConnection,
        boundary: Option<&String>,
        backwards: bool,
        limit: i64,
    ) -> QueryResult<Vec<StationRow>> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let rows = self.rows(conn)?;
        // Names are unique and sorted: the boundary splits them in two.
        let split =
            boundary.map(|name| rows.partition_point(|row| row.name.as_str() <= name.as_str()));
        Ok(if backwards {
            let end = boundary
                .map(|name| rows.partition_point(|row| row.name.as_str() < name.as_str()))
                .unwrap_or(rows.len());
            rows[..end].iter().rev().take(limit).cloned().collect()
        } else {
            rows[split.unwrap_or(0)..]
                .iter()
                .take(limit)
                .cloned()
                .collect()
        })
    }
}

/// OPTIONS on the latest readings.
pub async fn latest_options() -> HttpResponse {
    HttpResponse::Ok().json(crate::api::stations::metadata(
        "Station Latest",
        "Each station's newest reading, by name.",
        None,
    ))
}
