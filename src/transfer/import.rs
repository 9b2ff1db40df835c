//! Reading an import file (CSV with a header row, or NDJSON) one reading at a time, each checked
//! as the API checks a created reading ([`NewStation::parse`]); an error names the file's line.
//!
//! A file that carries ids (an `id` column, or an `id` key on NDJSON lines, as exports have)
//! keeps them, so that an export imported into an empty database exports byte for byte the
//! same; without ids, the database numbers the readings as it numbers created ones.

use std::fmt;
use std::io::{BufRead, Read};

use serde_json::{Map, Value};

use crate::domain::listing::parse_whole_number;
use crate::domain::station::{FIELDS, InvalidStation, NewStation};
use crate::transfer::ExportFormat;

/// One checked reading of an import file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedReading {
    /// The line it starts on (1-based; a CSV file's header is line 1).
    pub line: u64,
    /// The id the file gives it, when the file carries ids.
    pub id: Option<i64>,
    /// The reading.
    pub reading: NewStation,
}

/// What is wrong with an import file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The line (1-based), 0 when it is about the file as a whole.
    pub line: u64,
    /// What is wrong, in words.
    pub message: String,
}

impl ImportError {
    fn at(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }

    fn invalid(line: u64, invalid: &InvalidStation) -> Self {
        let message = invalid
            .errors()
            .iter()
            .map(|(field, message)| format!("{field}: {message}"))
            .collect::<Vec<_>>()
            .join("; ");
        Self::at(line, message)
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ImportError {}

/// The readings of an import file, in file order; stops at the first error.
pub struct ImportReader<R: Read> {
    inner: Format<R>,
    /// Whether the file carries ids; `None` for NDJSON until its first line says.
    carries_ids: Option<bool>,
    /// How many bytes of the file have been read, for progress.
    bytes_read: u64,
}

enum Format<R: Read> {
    Csv {
        reader: csv::Reader<R>,
        columns: [usize; 5],
        id_column: Option<usize>,
        record: csv::ByteRecord,
    },
    Ndjson {
        reader: R,
        line: u64,
        buffer: Vec<u8>,
    },
}

impl<R: BufRead> ImportReader<R> {
    /// A reader of `source` in `format`; a CSV header row is read and checked here.
    pub fn new(source: R, format: ExportFormat) -> Result<Self, ImportError> {
        let inner = match format {
            ExportFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(source);
                let header = reader
                    .byte_headers()
                    .map_err(|error| ImportError::at(1, csv_message(&error)))?
                    .clone();
                let (columns, id_column) =
                    csv_header_columns(&header).map_err(|message| ImportError::at(1, message))?;
                Format::Csv {
                    reader,
                    columns,
                    id_column,
                    record: csv::ByteRecord::new(),
                }
            }
            ExportFormat::Ndjson => Format::Ndjson {
                reader: source,
                line: 0,
                buffer: Vec::new(),
            },
        };
        let carries_ids = match &inner {
            Format::Csv { id_column, .. } => Some(id_column.is_some()),
            Format::Ndjson { .. } => None,
        };
        Ok(Self {
            inner,
            carries_ids,
            bytes_read: 0,
        })
    }

    /// How many bytes of the file have been read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Whether the file carries ids (known after the first reading).
    pub fn carries_ids(&self) -> bool {
        self.carries_ids.unwrap_or(false)
    }

    /// The next reading, `None` at the end of the file, or what is wrong with it.
    pub fn next_reading(&mut self) -> Result<Option<ImportedReading>, ImportError> {
        match &mut self.inner {
            Format::Csv {
                reader,
                columns,
                id_column,
                record,
            } => {
                let more = reader
                    .read_byte_record(record)
                    .map_err(|error| ImportError::at(csv_line(&error), csv_message(&error)))?;
                self.bytes_read = reader.position().byte();
                if !more {
                    return Ok(None);
                }
                let line = record.position().map_or(0, csv::Position::line);
                let mut object = Map::with_capacity(FIELDS.len());
                for (field, column) in FIELDS.iter().zip(columns.iter()) {
                    let text = utf8_field(record, *column, line, field)?;
                    object.insert((*field).to_owned(), Value::String(text.to_owned()));
                }
                let id = match id_column {
                    Some(column) => Some(parse_id(utf8_field(record, *column, line, "id")?, line)?),
                    None => None,
                };
                let reading = NewStation::parse(&Value::Object(object))
                    .map_err(|invalid| ImportError::invalid(line, &invalid))?;
                Ok(Some(ImportedReading { line, id, reading }))
            }
            Format::Ndjson {
                reader,
                line,
                buffer,
            } => loop {
                buffer.clear();
                let read = reader
                    .read_until(b'\n', buffer)
                    .map_err(|error| ImportError::at(*line + 1, error.to_string()))?;
                if read == 0 {
                    return Ok(None);
                }
                *line += 1;
                self.bytes_read += read as u64;
                if buffer.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let value: Value = serde_json::from_slice(buffer).map_err(|error| {
                    ImportError::at(*line, format!("JSON parse error: {error}"))
                })?;
                let id = match value.get("id") {
                    Some(raw) => Some(json_id(raw, *line)?),
                    None => None,
                };
                let carries_ids = *self.carries_ids.get_or_insert(id.is_some());
                if carries_ids != id.is_some() {
                    return Err(ImportError::at(
                        *line,
                        if carries_ids {
                            "id: this line has none, though the file's first reading has one"
                        } else {
                            "id: this line has one, though the file's first reading has none"
                        },
                    ));
                }
                let reading = NewStation::parse(&value)
                    .map_err(|invalid| ImportError::invalid(*line, &invalid))?;
                return Ok(Some(ImportedReading {
                    line: *line,
                    id,
                    reading,
                }));
            },
        }
    }
}

/// Where each of a reading's five fields is in a CSV header row (in any order, other columns
/// ignored), and the `id` column if there is one: for `import` and for bulk uploads alike. A
/// byte-order mark before the first name (spreadsheets write one) is not part of it.
pub fn csv_header_columns(header: &csv::ByteRecord) -> Result<([usize; 5], Option<usize>), String> {
    let mut columns = [None; 5];
    let mut id_column = None;
    for (column, name) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(name);
        let name = name.trim_start_matches('\u{feff}').trim();
        let slot = if name == "id" {
            &mut id_column
        } else if let Some(index) = FIELDS.iter().position(|field| *field == name) {
            &mut columns[index]
        } else {
            continue;
        };
        if slot.replace(column).is_some() {
            return Err(format!("the header row names \"{name}\" twice"));
        }
    }
    let mut found = [0; 5];
    for ((slot, column), field) in found.iter_mut().zip(columns).zip(FIELDS) {
        *slot = column.ok_or_else(|| {
            format!(
                "the header row must name name, timestamp, temperature, lat and lon; \"{field}\" \
                 is missing"
            )
        })?;
    }
    Ok((found, id_column))
}

fn utf8_field<'r>(
    record: &'r csv::ByteRecord,
    column: usize,
    line: u64,
    field: &str,
) -> Result<&'r str, ImportError> {
    std::str::from_utf8(record.get(column).unwrap_or_default())
        .map_err(|_| ImportError::at(line, format!("{field}: not valid UTF-8")))
}

fn parse_id(raw: &str, line: u64) -> Result<i64, ImportError> {
    parse_whole_number(raw)
        .filter(|id| *id >= 1)
        .ok_or_else(|| ImportError::at(line, "id: must be a whole number of at least 1"))
}

fn json_id(raw: &Value, line: u64) -> Result<i64, ImportError> {
    raw.as_i64()
        .filter(|id| *id >= 1)
        .ok_or_else(|| ImportError::at(line, "id: must be a whole number of at least 1"))
}

fn csv_line(error: &csv::Error) -> u64 {
    error.position().map_or(0, csv::Position::line)
}

fn csv_message(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "expected {expected_len} fields, found {len} (a quoted field left open swallows \
             the lines after it)"
        ),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => format!("CSV parse error: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str, format: ExportFormat) -> Result<Vec<ImportedReading>, ImportError> {
        let mut reader = ImportReader::new(text.as_bytes(), format)?;
        let mut readings = Vec::new();
        while let Some(reading) = reader.next_reading()? {
            readings.push(reading);
        }
        Ok(readings)
    }

    #[test]
    fn csv_with_ids_keeps_them_and_errors_name_the_line() {
        let ok = all(
            "id,name,timestamp,temperature,lat,lon\n7,a,1,2.5,3,4\n9,\"b, c\",1,2,3,4\n",
            ExportFormat::Csv,
        )
        .unwrap();
        assert_eq!(
            ok.iter().map(|r| (r.line, r.id)).collect::<Vec<_>>(),
            [(2, Some(7)), (3, Some(9))]
        );
        assert_eq!(ok[1].reading.name.as_ref(), "b, c");
        let bad = all(
            "name,timestamp,temperature,lat,lon\na,1,2,3,4\nb,1,NaN,3,4\n",
            ExportFormat::Csv,
        )
        .unwrap_err();
        assert_eq!(bad.line, 3);
        assert!(bad.message.starts_with("temperature: "), "{bad}");
        let missing = all("name,timestamp,lat,lon\n", ExportFormat::Csv).unwrap_err();
        assert!(missing.to_string().contains("\"temperature\" is missing"));
        let marked = all(
            "\u{feff}name,timestamp,temperature,lat,lon\na,1,2,3,4\n",
            ExportFormat::Csv,
        );
        assert_eq!(
            marked.unwrap().len(),
            1,
            "a byte-order mark is not part of the first name"
        );
        let zero_id = all(
            "id,name,timestamp,temperature,lat,lon\n0,a,1,2,3,4\n",
            ExportFormat::Csv,
        )
        .unwrap_err();
        assert_eq!(
            zero_id.to_string(),
            "line 2: id: must be a whole number of at least 1"
        );
    }

    #[test]
    fn ndjson_decides_on_ids_from_its_first_line() {
        let line = |id: &str| {
            format!(
                "{{{id}\"name\":\"a\",\"timestamp\":1,\"temperature\":2,\"lat\":3,\"lon\":4}}\n"
            )
        };
        let text = format!("{}\n{}", line("\"id\":4,"), line(""));
        let error = all(&text, ExportFormat::Ndjson).unwrap_err();
        assert_eq!(error.line, 3);
        let broken = all("{\"name\":\n", ExportFormat::Ndjson).unwrap_err();
        assert_eq!(broken.line, 1);
        assert!(broken.message.starts_with("JSON parse error"));
        assert_eq!(all(&line(""), ExportFormat::Ndjson).unwrap()[0].id, None);
    }
}
