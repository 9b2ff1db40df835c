//! The wire formats of a bulk upload: a JSON array, CSV with a header row, NDJSON. Each is decoded
//! one item at a time into the domain's [`UploadCollector`], which checks the item and keeps only
//! what it needs; a body that cannot be decoded is a 400 naming the item (JSON) or line (CSV,
//! NDJSON) where it went wrong.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::api::body::{CreateBody, CreateFormat, parse_form, parse_json};
use crate::domain::bulk::{NewStations, UploadCollector};
use crate::domain::station::{FIELDS, NewStation};
use crate::error::ApiError;
use crate::transfer::import::csv_header_columns;

/// What a create's body asks for.
#[derive(Debug)]
pub enum Creation {
    /// One reading (a JSON object or form fields): answered with the reading and `Location`.
    One(NewStation),
    /// A bulk upload: answered with the array of readings.
    Many(NewStations),
}

impl Creation {
    /// Decodes and checks `body`, holding an upload to at most `max_items` readings.
    pub fn parse(body: &CreateBody, max_items: usize) -> Result<Self, ApiError> {
        let bytes = &body.bytes[..];
        let mut upload = UploadCollector::new(max_items);
        match body.format {
            CreateFormat::Json if starts_an_array(bytes) => decode_json_array(bytes, &mut upload)?,
            CreateFormat::Json if bytes.is_empty() => return parse_one(&Value::Object(Map::new())),
            CreateFormat::Json => return parse_one(&parse_json(bytes)?),
            CreateFormat::Form if bytes.is_empty() => return parse_one(&Value::Object(Map::new())),
            CreateFormat::Form => return parse_one(&parse_form(bytes)?),
            CreateFormat::Csv => decode_csv(bytes, &mut upload)?,
            CreateFormat::Ndjson => decode_ndjson(bytes, &mut upload)?,
        }
        upload
            .finish()
            .map(Self::Many)
            .map_err(ApiError::InvalidUpload)
    }
}

fn parse_one(body: &Value) -> Result<Creation, ApiError> {
    NewStation::parse(body)
        .map(Creation::One)
        .map_err(ApiError::Invalid)
}

fn starts_an_array(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'[')
}

/// serde_json's message without its " at line L column C", which we say in our own terms.
fn message_of(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix)
        .map_or(text.clone(), str::to_owned)
}

/// Decodes a JSON array item by item; each item is parsed as JSON, checked and dropped before
/// the next, so the body is never held as one large JSON value.
fn decode_json_array(bytes: &[u8], upload: &mut UploadCollector) -> Result<(), ApiError> {
    let mut decoder = serde_json::Deserializer::from_slice(bytes);
    let mut items = ArrayItems { upload, index: 0 };
    let place = match (&mut items).deserialize(&mut decoder) {
        Ok(()) => match decoder.end() {
            Ok(()) => return Ok(()),
            Err(error) => ("after the array".to_owned(), error),
        },
        Err(error) => (format!("item at index {}", items.index), error),
    };
    let (place, error) = place;
    Err(ApiError::MalformedBody(format!(
        "JSON parse error - {place}: {} (line {} column {})",
        message_of(&error),
        error.line(),
        error.column()
    )))
}

/// The items of a JSON array, handed to the collector one at a time.
struct ArrayItems<'u> {
    upload: &'u mut UploadCollector,
    /// The index of the item being decoded.
    index: usize,
}

impl<'de> DeserializeSeed<'de> for &mut ArrayItems<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, decoder: D) -> Result<(), D::Error> {
        decoder.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for &mut ArrayItems<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of readings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        if let Some(count) = items.size_hint() {
            self.upload.expect(count);
        }
        while let Some(item) = items.next_element::<Value>()? {
            self.upload.push(&item);
            self.index += 1;
            if self.upload.is_over_limit() {
                // Refused whatever the rest holds; it is still read, so a broken body is
                // reported as broken.
                while items.next_element::<IgnoredAny>()?.is_some() {
                    self.index += 1;
                }
            }
        }
        Ok(())
    }
}

/// Decodes NDJSON: one JSON value a line; blank lines are skipped.
fn decode_ndjson(bytes: &[u8], upload: &mut UploadCollector) -> Result<(), ApiError> {
    for (number, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        if upload.is_over_limit() {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item: Value = serde_json::from_slice(line).map_err(|error| {
            ApiError::MalformedBody(format!(
                "JSON parse error - line {}: {} (column {})",
                number + 1,
                message_of(&error),
                error.column()
            ))
        })?;
        upload.push(&item);
    }
    Ok(())
}

fn csv_error(message: impl fmt::Display) -> ApiError {
    ApiError::MalformedBody(format!("CSV parse error - {message}"))
}

/// Decodes CSV: a header row naming the five fields in any order (other columns are ignored, as
/// unknown keys are in JSON), then one reading a row, every value a string as in a form.
fn decode_csv(bytes: &[u8], upload: &mut UploadCollector) -> Result<(), ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let (columns, _) =
        csv_header_columns(reader.byte_headers().map_err(csv_error)?).map_err(csv_error)?;
    let mut record = csv::ByteRecord::new();
    // One item, its strings overwritten row by row: no allocation a row once they have grown.
    let mut item = Value::Object(
        FIELDS
            .iter()
            .map(|field| ((*field).to_owned(), Value::String(String::new())))
            .collect(),
    );
    let mut last_start = None;
    loop {
        if upload.is_over_limit() {
            return Ok(());
        }
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|error| match error.kind() {
                csv::ErrorKind::UnequalLengths { pos: Some(pos), .. }
                    if quote_left_open(bytes, pos.byte()) =>
                {
                    csv_error(format_args!(
                        "line {}: a quoted field is not closed",
                        pos.line()
                    ))
                }
                csv::ErrorKind::UnequalLengths {
                    pos: Some(pos),
                    expected_len,
                    len,
                } => csv_error(format_args!(
                    "line {}: expected {expected_len} fields, found {len}",
                    pos.line()
                )),
                _ => csv_error(error),
            })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, csv::Position::line);
        last_start = record.position().map(csv::Position::byte);
        for (field, column) in FIELDS.iter().zip(columns) {
            let raw = record.get(column).unwrap_or_default();
            let text = std::str::from_utf8(raw)
                .map_err(|_| csv_error(format_args!("line {line}: {field} is not valid UTF-8")))?;
            if let Some(Value::String(slot)) = item.get_mut(*field) {
                slot.clear();
                slot.push_str(text);
            }
        }
        upload.push(&item);
    }
    // The csv reader ends a quoted field left open at the end of the body instead of refusing
    // it; such a field can only be in the last record.
    if last_start.is_some_and(|start| quote_left_open(bytes, start)) {
        return Err(csv_error(format_args!(
            "line {}: a quoted field is not closed",
            record.position().map_or(0, csv::Position::line)
        )));
    }
    Ok(())
}

/// Whether the CSV record starting at byte `start` of `body` leaves a quoted field open, which
/// then runs to the end of the body.
fn quote_left_open(body: &[u8], start: u64) -> bool {
    usize::try_from(start)
        .ok()
        .and_then(|start| body.get(start..))
        .is_some_and(ends_inside_quotes)
}

/// Whether a CSV record starting at the beginning of `record` leaves a quoted field open.
fn ends_inside_quotes(record: &[u8]) -> bool {
    let mut in_quotes = false;
    let mut at_field_start = true;
    let mut bytes = record.iter().peekable();
    while let Some(byte) = bytes.next() {
        if in_quotes {
            if *byte == b'"' {
                if bytes.peek() == Some(&&b'"') {
                    bytes.next();
                } else {
                    in_quotes = false;
                }
            }
            continue;
        }
        match byte {
            b'"' if at_field_start => in_quotes = true,
            b',' | b'\n' | b'\r' => {
                at_field_start = true;
                continue;
            }
            _ => {}
        }
        at_field_start = false;
    }
    in_quotes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bulk::InvalidUpload;

    fn upload(format: CreateFormat, body: &str, max_items: usize) -> Result<Creation, ApiError> {
        Creation::parse(
            &CreateBody {
                format,
                bytes: actix_web::web::Bytes::copy_from_slice(body.as_bytes()),
            },
            max_items,
        )
    }

    fn names(creation: Result<Creation, ApiError>) -> Vec<String> {
        match creation {
            Ok(Creation::Many(readings)) => readings
                .as_slice()
                .iter()
                .map(|r| r.name.as_ref().to_owned())
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn malformed(creation: Result<Creation, ApiError>) -> String {
        match creation {
            Err(ApiError::MalformedBody(message)) => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_columns_may_come_in_any_order_with_extra_ones() {
        let body =
            "lon,extra,lat,name,temperature,timestamp\r\n1,x,2,\"Oslo, N\",3,4\n5,y,6,Bergen,7,8\n";
        assert_eq!(
            names(upload(CreateFormat::Csv, body, 10)),
            ["Oslo, N", "Bergen"]
        );
    }

    #[test]
    fn broken_csv_says_which_line() {
        let header = "name,timestamp,temperature,lat,lon\n";
        assert_eq!(
            malformed(upload(
                CreateFormat::Csv,
                &format!("{header}a,1,1,1,1\nb,1,1,1\n"),
                10
            )),
            "CSV parse error - line 3: expected 5 fields, found 4"
        );
        assert_eq!(
            malformed(upload(
                CreateFormat::Csv,
                &format!("{header}a,1,1,1,1\n\"b,1,1,1,1\nc,1,1,1,1\n"),
                10
            )),
            "CSV parse error - line 3: a quoted field is not closed"
        );
        assert!(
            malformed(upload(CreateFormat::Csv, "name,lat\nx,1\n", 10)).contains("\"timestamp\"")
        );
    }

    #[test]
    fn a_quoted_field_with_escaped_quotes_is_closed() {
        assert!(!ends_inside_quotes(br#""a ""b"" c",1,2"#));
        assert!(ends_inside_quotes(br#"x,"a ""b"#));
        assert!(!ends_inside_quotes(br#"a"b,1"#));
    }

    #[test]
    fn json_and_ndjson_errors_name_the_item_or_line() {
        let good = r#"{"name":"a","timestamp":1,"temperature":1,"lat":1,"lon":1}"#;
        let message = malformed(upload(
            CreateFormat::Json,
            &format!("[{good},{good},{{\"lat\": NaN}}]"),
            10,
        ));
        assert!(
            message.starts_with("JSON parse error - item at index 2: "),
            "{message}"
        );
        let message = malformed(upload(
            CreateFormat::Ndjson,
            &format!("{good}\n\n{good}\nnot json\n"),
            10,
        ));
        assert!(
            message.starts_with("JSON parse error - line 4: "),
            "{message}"
        );
        assert_eq!(
            names(upload(
                CreateFormat::Ndjson,
                &format!("{good}\r\n{good}"),
                10
            ))
            .len(),
            2
        );
    }

    #[test]
    fn an_array_over_the_limit_is_refused_as_a_whole() {
        let good = r#"{"name":"a","timestamp":1,"temperature":1,"lat":1,"lon":1}"#;
        let body = format!("[{good},{good},{good}]");
        assert!(matches!(
            upload(CreateFormat::Json, &body, 2),
            Err(ApiError::InvalidUpload(InvalidUpload::Whole(_)))
        ));
        assert_eq!(names(upload(CreateFormat::Json, &body, 3)).len(), 3);
    }
}
