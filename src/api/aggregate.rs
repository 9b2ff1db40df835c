//! `GET /station/aggregate/`: one station's temperatures over a time range, in buckets: what a
//! chart needs, in one small answer however many readings the range holds.

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::guard::Session;
use crate::api::query::QueryPairs;
use crate::db::station_repository::{self, BucketRow};
use crate::domain::aggregate::AggregateRequest;
use crate::domain::listing::InvalidQuery;
use crate::error::{ApiError, QueryParameterErrors};

/// The aggregate's query parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, dead_code)]
pub struct AggregateParameters {
    /// The station.
    #[param(example = "CityName")]
    name: String,
    /// Unix seconds: the range's start, inclusive.
    #[param(example = 1393891200)]
    timestamp__gte: i64,
    /// Unix seconds: the range's end, exclusive.
    #[param(example = 1393977600)]
    timestamp__lt: i64,
    /// Seconds per bucket (60 to 31,536,000); buckets start at multiples of it, and a request
    /// spans at most 10,000 of them.
    #[param(minimum = 60, maximum = 31_536_000, example = 3600)]
    interval: i64,
}

/// Temperatures of one bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// Unix seconds: the bucket's start, a multiple of the interval.
    #[schema(example = 1393923600)]
    pub start: i64,
    /// How many readings the bucket holds (at least one: empty buckets are left out).
    #[schema(example = 360, minimum = 1)]
    pub count: i64,
    /// The lowest temperature, degrees Celsius.
    #[schema(example = 26.5)]
    pub min: f64,
    /// The highest temperature.
    #[schema(example = 29.0)]
    pub max: f64,
    /// The mean temperature.
    #[schema(example = 27.8)]
    pub mean: f64,
}

impl From<BucketRow> for Bucket {
    fn from(row: BucketRow) -> Self {
        Self {
            start: row.start,
            count: row.count,
            min: row.min,
            max: row.max,
            mean: row.mean,
        }
    }
}

/// One station's temperatures in buckets.
#[derive(Debug, Serialize, ToSchema)]
pub struct Aggregate {
    /// The station.
    #[schema(example = "CityName")]
    pub name: String,
    /// Seconds per bucket.
    #[schema(example = 3600)]
    pub interval: i64,
    /// The buckets holding readings, oldest first.
    pub results: Vec<Bucket>,
}

/// Temperatures of one station over a time range, in buckets (count, min, max, mean).
///
/// Buckets are `interval` seconds long and start at multiples of it (so hours start on the hour,
/// UTC); only buckets holding readings are listed, oldest first. A request may span at most
/// 10,000 buckets. A token bound to another station gets no buckets.
#[utoipa::path(
    get,
    path = "/station/aggregate/",
    operation_id = "aggregate_stations",
    tag = "station",
    params(AggregateParameters),
    responses(
        (status = 200, description = "The buckets.", body = Aggregate),
        (status = 400, description = "A parameter is missing or bad, or the range spans more \
            than 10,000 buckets.", body = QueryParameterErrors),
    )
)]
pub async fn aggregate_stations(
    query: QueryPairs,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let mut invalid = InvalidQuery::default();
    let Some(request) = AggregateRequest::parse(|name| query.last(name), &mut invalid) else {
        return Err(ApiError::InvalidQuery(invalid));
    };
    let bound = session
        .caller()
        .and_then(|caller| caller.bound_station.clone());
    let name = request.name.clone();
    let interval = request.interval;
    let rows = session
        .read(move |conn| station_repository::aggregate(conn, &request, bound.as_deref()))
        .await?;
    Ok(HttpResponse::Ok().json(Aggregate {
        name,
        interval,
        results: rows.into_iter().map(Bucket::from).collect(),
    }))
}

/// OPTIONS on the aggregate.
pub async fn aggregate_options() -> HttpResponse {
    HttpResponse::Ok().json(crate::api::stations::metadata(
        "Station Aggregate",
        "One station's temperatures over a time range, in buckets.",
        None,
    ))
}
