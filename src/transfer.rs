//! Readings in bulk, in and out: the export formats (CSV and NDJSON, the same bytes from
//! `GET /station/export/` and `station-api export`), the walk that reads a whole filtered,
//! ordered list a chunk at a time, and the reader behind `station-api import`.

pub mod import;

use diesel::QueryResult;
use serde::Serialize;

use crate::db::models::StationRow;
use crate::db::{DbConnection, station_repository};
use crate::domain::listing::{SortField, SortValue, StationList};

/// Readings read from the database per step of an export: large enough that a step's query
/// costs little per row, small enough that a step's rows and bytes are a few hundred KiB.
pub const EXPORT_CHUNK_ROWS: i64 = 2_000;

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A header row `id,name,timestamp,temperature,lat,lon`, then one reading a row.
    Csv,
    /// One JSON object a line.
    Ndjson,
}

/// The CSV header row: the columns in the order every row has them.
pub const CSV_HEADER: &[u8] = b"id,name,timestamp,temperature,lat,lon\n";

/// One exported reading: the stored fields, no hyperlink (an export is data, not a page).
#[derive(Debug, Serialize)]
struct ExportedReading<'a> {
    id: i64,
    name: &'a str,
    timestamp: i64,
    temperature: f64,
    lat: f64,
    lon: f64,
}

impl<'a> From<&'a StationRow> for ExportedReading<'a> {
    fn from(row: &'a StationRow) -> Self {
        Self {
            id: row.id,
            name: &row.name,
            timestamp: row.timestamp,
            temperature: row.temperature,
            lat: row.lat,
            lon: row.lon,
        }
    }
}

impl ExportFormat {
    /// The media type an HTTP answer in this format carries.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// The file name extension for this format.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }

    /// What comes before the first reading.
    pub fn preamble(self) -> &'static [u8] {
        match self {
            Self::Csv => CSV_HEADER,
            Self::Ndjson => b"",
        }
    }

    /// Appends `rows` to `out`, one line each.
    pub fn write_rows(self, rows: &[StationRow], out: &mut Vec<u8>) -> Result<(), ExportError> {
        match self {
            Self::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(out);
                for row in rows {
                    writer.serialize(ExportedReading::from(row))?;
                }
                writer.flush().map_err(csv::Error::from)?;
            }
            Self::Ndjson => {
                for row in rows {
                    serde_json::to_writer(&mut *out, &ExportedReading::from(row))?;
                    out.push(b'\n');
                }
            }
        }
        Ok(())
    }
}

/// Why readings could not be written out (never expected: the rows are well-formed).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The CSV writer failed.
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The JSON writer failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Where a walk over a whole list is: past the reading whose sort-key values are `after`.
#[derive(Debug, Clone, Default)]
pub struct WalkPosition {
    after: Option<Vec<SortValue>>,
    finished: bool,
}

impl WalkPosition {
    /// Whether the walk has read its last reading.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// The next at most `limit` readings of `list` past `position`, in the list's order, and the
/// position after them. Each step is a keyset read from an index, so a walk over millions of
/// readings costs the same per step from the first to the last, and holds one step in memory.
pub fn next_chunk(
    conn: &mut DbConnection,
    list: &StationList,
    position: &WalkPosition,
    limit: i64,
) -> QueryResult<(Vec<StationRow>, WalkPosition)> {
    let rows = station_repository::rows_beyond(
        conn,
        &list.filter,
        &list.ordering,
        position.after.as_deref(),
        false,
        limit,
    )?;
    let finished = usize::try_from(limit).is_ok_and(|limit| rows.len() < limit);
    let after = rows
        .last()
        .map(|row| sort_key(list, row))
        .or_else(|| position.after.clone());
    Ok((rows, WalkPosition { after, finished }))
}

/// `row`'s values of the list's ordering keys: where it stands in the list's order.
pub fn sort_key(list: &StationList, row: &StationRow) -> Vec<SortValue> {
    list.ordering
        .keys()
        .iter()
        .map(|key| match key.field {
            SortField::Id => SortValue::Integer(row.id),
            SortField::Timestamp => SortValue::Integer(row.timestamp),
            SortField::Temperature => SortValue::Real(row.temperature),
            SortField::Name => SortValue::Text(row.name.clone()),
        })
        .collect()
}
