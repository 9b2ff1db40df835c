//! `GET /station/export/`: every reading the list's filters let through, in the list's order,
//! as one CSV or NDJSON download that is written while it is read from the database, a chunk at
//! a time, so its memory does not grow with its size.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse};
use futures_util::stream;

use crate::api::guard::Session;
use crate::api::negotiation::{MediaType, Rendering};
use crate::api::query::QueryPairs;
use crate::api::stations::metadata;
use crate::db::models::StationRow;
use crate::domain::listing::{InvalidQuery, StationList};
use crate::error::{ApiError, ErrorDetail, QueryParameterErrors};
use crate::transfer::{EXPORT_CHUNK_ROWS, ExportFormat, WalkPosition, next_chunk};

/// The export's query parameters, as the OpenAPI document shows them: the list's filters and
/// ordering (no paging), and the format.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, dead_code)]
pub struct ExportParameters {
    /// `csv` or `ndjson`; overrides `Accept`. Without either, CSV.
    #[param(example = "csv", pattern = "^(csv|ndjson)?$")]
    format: Option<String>,
    /// As the list's: keys among `id`, `timestamp`, `temperature`, `name`, `-` for descending.
    #[param(example = "-timestamp")]
    ordering: Option<String>,
    /// Exactly this name.
    #[param(example = "CityName")]
    name: Option<String>,
    /// The name contains this text, ignoring ASCII case.
    name__icontains: Option<String>,
    /// Terms separated by spaces or commas; the name must contain each, ignoring ASCII case.
    search: Option<String>,
    /// Unix seconds, at or after.
    timestamp__gte: Option<i64>,
    /// Unix seconds, after.
    timestamp__gt: Option<i64>,
    /// Unix seconds, at or before.
    timestamp__lte: Option<i64>,
    /// Unix seconds, before.
    timestamp__lt: Option<i64>,
    /// Degrees Celsius, at least.
    temperature__gte: Option<f64>,
    /// Degrees Celsius, at most.
    temperature__lte: Option<f64>,
    /// Degrees north, at least.
    lat__gte: Option<f64>,
    /// Degrees north, at most.
    lat__lte: Option<f64>,
    /// Degrees east, at least.
    lon__gte: Option<f64>,
    /// Degrees east, at most.
    lon__lte: Option<f64>,
}

/// Download every reading the filters let through, in one file.
///
/// Takes the list's filters and `ordering` (without paging) and answers CSV (`Accept: text/csv`
/// or `?format=csv`, the default; a header row `id,name,timestamp,temperature,lat,lon`) or
/// NDJSON (`Accept: application/x-ndjson` or `?format=ndjson`; one object a line), as an
/// attachment. The file is written as it is read, in chunks, so any size costs the same memory;
/// readings created while it is written may or may not be in it, and none appears twice.
#[utoipa::path(
    get,
    path = "/station/export/",
    operation_id = "export_stations",
    tag = "station",
    params(ExportParameters),
    responses(
        (status = 200, description = "Every matching reading, as an attachment.",
            content(
                (String = "text/csv", example = "id,name,timestamp,temperature,lat,lon\n1,CityName,1393926310,28.0,30.733315,76.779418\n"),
                (String = "application/x-ndjson", example = "{\"id\":1,\"name\":\"CityName\",\"timestamp\":1393926310,\"temperature\":28.0,\"lat\":30.733315,\"lon\":76.779418}\n"),
            ),
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"stations.csv\"` (or `.ndjson`)."))),
        (status = 400, description = "A filter or the ordering has a bad value.", body = QueryParameterErrors),
        (status = 404, description = "`?format=` names a format the export does not write.", body = ErrorDetail),
        (status = 406, description = "`Accept` rules out both CSV and NDJSON.", body = ErrorDetail),
    )
)]
pub async fn export_stations(
    req: HttpRequest,
    query: QueryPairs,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let format = match req.extensions().get::<Rendering>().map(|r| r.media) {
        Some(MediaType::NDJSON) => ExportFormat::Ndjson,
        _ => ExportFormat::Csv,
    };
    let mut invalid = InvalidQuery::default();
    let mut list = StationList::parse(|name| query.last(name), &mut invalid);
    if !invalid.is_empty() {
        return Err(ApiError::InvalidQuery(invalid));
    }
    list.filter.station_bound = session
        .caller()
        .and_then(|caller| caller.bound_station.clone());
    let list = Arc::new(list);
    // The first chunk is read before the answer starts, so that a database that cannot be
    // reached, or an account that no longer admits the caller, still gets its status code.
    let (rows, position) = read_chunk(&session, &list, WalkPosition::default()).await?;
    let mut first = format.preamble().to_vec();
    write(format, &rows, &mut first)?;
    let rest = stream::unfold(Some((session, list, position)), move |walk| async move {
        let (session, list, position) = walk?;
        if position.is_finished() {
            return None;
        }
        let chunk = async {
            let (rows, position) = read_chunk(&session, &list, position).await?;
            let mut bytes = Vec::with_capacity(rows.len() * 64);
            write(format, &rows, &mut bytes)?;
            Ok::<_, ApiError>((Bytes::from(bytes), position))
        };
        match chunk.await {
            Ok((bytes, position)) => Some((Ok(bytes), Some((session, list, position)))),
            Err(error) => {
                // The status line is long gone: ending the body early is all that is left,
                // and the client sees a transfer that did not finish.
                tracing::warn!(%error, "export cut short");
                Some((Err(actix_web::Error::from(error)), None))
            }
        }
    });
    let body = stream::once(async move { Ok::<_, actix_web::Error>(Bytes::from(first)) });
    Ok(HttpResponse::Ok()
        .content_type(format.media_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"stations.{}\"", format.extension()),
        ))
        .streaming(futures_util::StreamExt::chain(body, rest)))
}

async fn read_chunk(
    session: &Session,
    list: &Arc<StationList>,
    position: WalkPosition,
) -> Result<(Vec<StationRow>, WalkPosition), ApiError> {
    let list = Arc::clone(list);
    session
        .read(move |conn| next_chunk(conn, &list, &position, EXPORT_CHUNK_ROWS))
        .await
}

fn write(format: ExportFormat, rows: &[StationRow], out: &mut Vec<u8>) -> Result<(), ApiError> {
    format
        .write_rows(rows, out)
        .map_err(|error| ApiError::Internal(Box::new(error)))
}

/// OPTIONS on the export.
pub async fn export_options() -> HttpResponse {
    let mut body = metadata(
        "Station Export",
        "Every reading the filters let through, as one CSV or NDJSON file.",
        None,
    );
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "renders".to_owned(),
            serde_json::json!(["text/csv", "application/x-ndjson"]),
        );
        map.remove("parses");
    }
    HttpResponse::Ok().json(body)
}
