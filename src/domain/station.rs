//! A station reading as the service understands it: every value of these types has passed the
//! contract's rules, so code past the HTTP edge never re-checks them.
//!
//! Parsing starts from a `serde_json::Value` because the wire is loose on purpose: DRF clients send
//! numbers as strings (`"28"`, `" 30.73 "`), and form bodies only have strings.

use std::fmt;

use serde_json::{Map, Value};
use validator::{ValidateLength, ValidateRange};

/// The longest station name accepted, counted in Unicode scalar values (as Python's `len`).
pub const NAME_MAX_CHARS: u64 = 64;
/// The earliest accepted reading time, in Unix seconds.
pub const TIMESTAMP_MIN: i64 = 0;
/// The latest accepted reading time: 9999-12-31T23:59:59Z, in Unix seconds.
pub const TIMESTAMP_MAX: i64 = 253_402_300_799;
/// Absolute zero, in degrees Celsius.
pub const TEMPERATURE_MIN: f64 = -273.15;
/// The hottest accepted reading, in degrees Celsius.
pub const TEMPERATURE_MAX: f64 = 1000.0;
/// The southernmost latitude.
pub const LATITUDE_MIN: f64 = -90.0;
/// The northernmost latitude.
pub const LATITUDE_MAX: f64 = 90.0;
/// The westernmost longitude.
pub const LONGITUDE_MIN: f64 = -180.0;
/// The easternmost longitude.
pub const LONGITUDE_MAX: f64 = 180.0;

/// Python's `float()`/`int()` refuse absurdly long strings in DRF; so do we, before parsing.
const MAX_NUMERIC_STRING_LEN: usize = 1000;

/// The five writable fields, in the order the contract lists them (and reports errors in).
pub const FIELDS: [&str; 5] = ["name", "timestamp", "temperature", "lat", "lon"];

/// Why one field's value was refused; `Display` gives DRF's exact message.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldError {
    /// The key is missing where it is needed.
    Required,
    /// A string that is empty once trimmed.
    Blank,
    /// JSON `null`.
    Null,
    /// A name that is neither a string nor a number.
    NotAString,
    /// A name longer than [`NAME_MAX_CHARS`].
    TooLong,
    /// A name containing U+0000, which no database stores faithfully.
    NullCharacter,
    /// A timestamp that is not an integer.
    NotAnInteger,
    /// A measurement that is not a finite number.
    NotANumber,
    /// Below the field's minimum, which is kept as DRF prints it.
    BelowMinimum(&'static str),
    /// Above the field's maximum, which is kept as DRF prints it.
    AboveMaximum(&'static str),
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Required => f.write_str("This field is required."),
            Self::Blank => f.write_str("This field may not be blank."),
            Self::Null => f.write_str("This field may not be null."),
            Self::NotAString => f.write_str("Not a valid string."),
            Self::TooLong => write!(
                f,
                "Ensure this field has no more than {NAME_MAX_CHARS} characters."
            ),
            Self::NullCharacter => f.write_str("Null characters are not allowed."),
            Self::NotAnInteger => f.write_str("A valid integer is required."),
            Self::NotANumber => f.write_str("A valid number is required."),
            Self::BelowMinimum(limit) => {
                write!(f, "Ensure this value is greater than or equal to {limit}.")
            }
            Self::AboveMaximum(limit) => {
                write!(f, "Ensure this value is less than or equal to {limit}.")
            }
        }
    }
}

/// Everything wrong with a submitted body: DRF's `{"field": ["message"]}` shape, in field order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvalidStation {
    errors: Vec<(&'static str, String)>,
}

impl InvalidStation {
    /// A body that is not a JSON object at all (`non_field_errors`).
    pub fn not_an_object(value: &Value) -> Self {
        let message = match value {
            Value::Null => "No data provided".to_owned(),
            other => format!(
                "Invalid data. Expected a dictionary, but got {}.",
                python_type_name(other)
            ),
        };
        Self {
            errors: vec![("non_field_errors", message)],
        }
    }

    /// A problem with the body as a whole (`non_field_errors`), in `message`'s words.
    pub fn non_field(message: String) -> Self {
        Self {
            errors: vec![("non_field_errors", message)],
        }
    }

    fn push(&mut self, field: &'static str, error: &FieldError) {
        self.errors.push((field, error.to_string()));
    }

    /// `(field, message)` pairs in the order they should be reported.
    pub fn errors(&self) -> &[(&'static str, String)] {
        &self.errors
    }

    fn into_result<T>(self, ok: impl FnOnce() -> T) -> Result<T, Self> {
        if self.errors.is_empty() {
            Ok(ok())
        } else {
            Err(self)
        }
    }
}

/// What `type(x).__name__` would say in Python for a JSON value, as DRF's message uses it.
pub(crate) fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The rule a name must follow, as the OpenAPI document states it (ECMA-262 syntax, which JSON
/// Schema uses): no NUL character, and at least one character that is neither NUL nor white
/// space. White space is spelled out as Unicode's `White_Space` set, the one [`str::trim`] and
/// [`StationName::parse`] use, because regex engines disagree on `\s` (ECMAScript's includes
/// U+FEFF and excludes U+0085; Unicode's the opposite).
pub const NAME_PATTERN: &str = concat!(
    r"^[^\x00]*",
    r"[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^\x00]*$"
);

/// A station's name: trimmed, not blank, at most [`NAME_MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationName(String);

impl StationName {
    /// Accepts a string, or a number written as its decimal text (as DRF's `CharField` does).
    pub fn parse(value: &Value) -> Result<Self, FieldError> {
        let text = match value {
            Value::Null => return Err(FieldError::Null),
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                return Err(FieldError::NotAString);
            }
        };
        if text.is_empty() {
            return Err(FieldError::Blank);
        }
        if !text.validate_length(None, Some(NAME_MAX_CHARS), None) {
            return Err(FieldError::TooLong);
        }
        if text.contains('\0') {
            return Err(FieldError::NullCharacter);
        }
        Ok(Self(text))
    }
}

impl AsRef<str> for StationName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// When the reading was taken, in Unix seconds, between year 1970 and year 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Accepts a JSON integer, an integral float (`1.0`) or a string holding one (`" 12 "`, `"12.0"`).
    pub fn parse(value: &Value) -> Result<Self, FieldError> {
        let number = match value {
            Value::Null => return Err(FieldError::Null),
            Value::String(s) => parse_integer_text(s.trim())?,
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    i128::from(i)
                } else if let Some(u) = n.as_u64() {
                    i128::from(u)
                } else {
                    integral_float(n.as_f64().unwrap_or(f64::NAN))?
                }
            }
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                return Err(FieldError::NotAnInteger);
            }
        };
        if !number.validate_range(Some(i128::from(TIMESTAMP_MIN)), None, None, None) {
            return Err(FieldError::BelowMinimum("0"));
        }
        if !number.validate_range(None, Some(i128::from(TIMESTAMP_MAX)), None, None) {
            return Err(FieldError::AboveMaximum("253402300799"));
        }
        i64::try_from(number)
            .map(Self)
            .map_err(|_| FieldError::AboveMaximum("253402300799"))
    }

    /// Seconds since the Unix epoch.
    pub fn seconds(self) -> i64 {
        self.0
    }
}

/// DRF's `IntegerField` strips a trailing `.0…` and then lets Python's `int()` decide.
fn parse_integer_text(text: &str) -> Result<i128, FieldError> {
    if text.is_empty() {
        return Err(FieldError::Blank);
    }
    if text.len() > MAX_NUMERIC_STRING_LEN {
        return Err(FieldError::NotAnInteger);
    }
    let without_decimal_zeros = match text.split_once('.') {
        Some((whole, zeros)) if zeros.chars().all(|c| c == '0') => whole.trim_end(),
        Some(_) => return Err(FieldError::NotAnInteger),
        None => text,
    };
    let (negative, digits) = match without_decimal_zeros.as_bytes().first() {
        Some(b'-') => (true, &without_decimal_zeros[1..]),
        Some(b'+') => (false, &without_decimal_zeros[1..]),
        _ => (false, without_decimal_zeros),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::NotAnInteger);
    }
    // More digits than i128 holds is still a well-formed integer: it is simply out of range.
    let magnitude = digits.parse::<i128>().unwrap_or(i128::MAX);
    Ok(if negative { -magnitude } else { magnitude })
}

fn integral_float(value: f64) -> Result<i128, FieldError> {
    if value.is_finite() && value.fract() == 0.0 {
        // `as` saturates, which keeps out-of-range values out of range.
        Ok(value as i128)
    } else {
        Err(FieldError::NotAnInteger)
    }
}

/// A finite number from a JSON number or a string holding one.
fn parse_finite_number(value: &Value) -> Result<f64, FieldError> {
    let number = match value {
        Value::Null => return Err(FieldError::Null),
        Value::String(s) => {
            let text = s.trim();
            if text.is_empty() {
                return Err(FieldError::Blank);
            }
            if text.len() > MAX_NUMERIC_STRING_LEN || !looks_like_decimal(text) {
                return Err(FieldError::NotANumber);
            }
            text.parse::<f64>().map_err(|_| FieldError::NotANumber)?
        }
        Value::Number(n) => n.as_f64().ok_or(FieldError::NotANumber)?,
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            return Err(FieldError::NotANumber);
        }
    };
    if number.is_finite() {
        Ok(number)
    } else {
        Err(FieldError::NotANumber)
    }
}

/// Rust's `f64` parser also takes `inf`, `NaN` and `infinity`; a reading never may.
fn looks_like_decimal(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
}

/// A finite number within inclusive bounds, with DRF's messages.
fn parse_bounded(
    value: &Value,
    (min, min_text): (f64, &'static str),
    (max, max_text): (f64, &'static str),
) -> Result<f64, FieldError> {
    let number = parse_finite_number(value)?;
    if !number.validate_range(Some(min), None, None, None) {
        return Err(FieldError::BelowMinimum(min_text));
    }
    if !number.validate_range(None, Some(max), None, None) {
        return Err(FieldError::AboveMaximum(max_text));
    }
    // Negative zero becomes zero (adding +0.0 changes no other number): the engines store it as
    // zero, so a reading reads back as it was accepted.
    Ok(number + 0.0)
}

/// A temperature in degrees Celsius, from absolute zero to 1000.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temperature(f64);

impl Temperature {
    /// Accepts a finite number (or numeric string) in [−273.15, 1000].
    pub fn parse(value: &Value) -> Result<Self, FieldError> {
        parse_bounded(
            value,
            (TEMPERATURE_MIN, "-273.15"),
            (TEMPERATURE_MAX, "1000"),
        )
        .map(Self)
    }

    /// Degrees Celsius.
    pub fn celsius(self) -> f64 {
        self.0
    }
}

/// A latitude in degrees, −90 to 90.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latitude(f64);

impl Latitude {
    /// Accepts a finite number (or numeric string) in [−90, 90].
    pub fn parse(value: &Value) -> Result<Self, FieldError> {
        parse_bounded(value, (LATITUDE_MIN, "-90"), (LATITUDE_MAX, "90")).map(Self)
    }

    /// Degrees north.
    pub fn degrees(self) -> f64 {
        self.0
    }
}

/// A longitude in degrees, −180 to 180.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Longitude(f64);

impl Longitude {
    /// Accepts a finite number (or numeric string) in [−180, 180].
    pub fn parse(value: &Value) -> Result<Self, FieldError> {
        parse_bounded(value, (LONGITUDE_MIN, "-180"), (LONGITUDE_MAX, "180")).map(Self)
    }

    /// Degrees east.
    pub fn degrees(self) -> f64 {
        self.0
    }
}

/// A complete, valid reading: what POST creates and PUT replaces with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStation {
    /// Where the reading comes from.
    pub name: StationName,
    /// When it was taken.
    pub timestamp: Timestamp,
    /// What it measured.
    pub temperature: Temperature,
    /// Where the station stands (north).
    pub lat: Latitude,
    /// Where the station stands (east).
    pub lon: Longitude,
}

/// A valid subset of a reading's fields: what PATCH changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StationPatch {
    /// A new name, if given.
    pub name: Option<StationName>,
    /// A new time, if given.
    pub timestamp: Option<Timestamp>,
    /// A new temperature, if given.
    pub temperature: Option<Temperature>,
    /// A new latitude, if given.
    pub lat: Option<Latitude>,
    /// A new longitude, if given.
    pub lon: Option<Longitude>,
}

impl StationPatch {
    /// True when the patch changes nothing (`{}`).
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.timestamp.is_none()
            && self.temperature.is_none()
            && self.lat.is_none()
            && self.lon.is_none()
    }
}

/// Parses each present field, recording failures; a missing field is `None`.
struct FieldParser<'a> {
    object: &'a Map<String, Value>,
    errors: InvalidStation,
}

impl<'a> FieldParser<'a> {
    fn new(body: &'a Value) -> Result<Self, InvalidStation> {
        match body {
            Value::Object(object) => Ok(Self {
                object,
                errors: InvalidStation::default(),
            }),
            other => Err(InvalidStation::not_an_object(other)),
        }
    }

    fn optional<T>(
        &mut self,
        field: &'static str,
        parse: fn(&Value) -> Result<T, FieldError>,
    ) -> Option<T> {
        let value = self.object.get(field)?;
        parse(value)
            .map_err(|error| self.errors.push(field, &error))
            .ok()
    }

    fn required<T>(
        &mut self,
        field: &'static str,
        parse: fn(&Value) -> Result<T, FieldError>,
    ) -> Option<T> {
        if !self.object.contains_key(field) {
            self.errors.push(field, &FieldError::Required);
            return None;
        }
        self.optional(field, parse)
    }
}

impl NewStation {
    /// Parses a full body (POST, PUT): every field is required; unknown keys are ignored.
    pub fn parse(body: &Value) -> Result<Self, InvalidStation> {
        let mut fields = FieldParser::new(body)?;
        let name = fields.required("name", StationName::parse);
        let timestamp = fields.required("timestamp", Timestamp::parse);
        let temperature = fields.required("temperature", Temperature::parse);
        let lat = fields.required("lat", Latitude::parse);
        let lon = fields.required("lon", Longitude::parse);
        match (name, timestamp, temperature, lat, lon) {
            (Some(name), Some(timestamp), Some(temperature), Some(lat), Some(lon)) => Ok(Self {
                name,
                timestamp,
                temperature,
                lat,
                lon,
            }),
            _ => Err(fields.errors),
        }
    }
}

impl StationPatch {
    /// Parses a partial body (PATCH): any subset of the fields, each checked as in a full body.
    pub fn parse(body: &Value) -> Result<Self, InvalidStation> {
        let mut fields = FieldParser::new(body)?;
        let patch = Self {
            name: fields.optional("name", StationName::parse),
            timestamp: fields.optional("timestamp", Timestamp::parse),
            temperature: fields.optional("temperature", Temperature::parse),
            lat: fields.optional("lat", Latitude::parse),
            lon: fields.optional("lon", Longitude::parse),
        };
        fields.errors.into_result(|| patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(result: Result<NewStation, InvalidStation>) -> Vec<(&'static str, String)> {
        result
            .expect_err("body should be refused")
            .errors()
            .to_vec()
    }

    fn textbook() -> Value {
        json!({"name": "CityName", "timestamp": "1393926310", "temperature": "28",
               "lat": "30.733315", "lon": "76.779418"})
    }

    #[test]
    fn the_textbook_reading_parses_from_strings() {
        let station = NewStation::parse(&textbook()).expect("textbook body is valid");
        assert_eq!(station.name.as_ref(), "CityName");
        assert_eq!(station.timestamp.seconds(), 1_393_926_310);
        assert_eq!(station.temperature.celsius(), 28.0);
        assert_eq!(station.lat.degrees(), 30.733315);
        assert_eq!(station.lon.degrees(), 76.779418);
    }

    #[test]
    fn names_are_trimmed_and_numbers_become_text() {
        assert_eq!(
            StationName::parse(&json!("  Oslo ")).unwrap().as_ref(),
            "Oslo"
        );
        assert_eq!(StationName::parse(&json!(42)).unwrap().as_ref(), "42");
        assert_eq!(StationName::parse(&json!(1.5)).unwrap().as_ref(), "1.5");
    }

    #[test]
    fn the_documented_name_pattern_counts_exactly_unicode_white_space_as_blank() {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            let alone = c.to_string();
            let documented = pattern.is_match(&alone);
            let parsed = StationName::parse(&json!(alone)).is_ok();
            assert_eq!(documented, parsed, "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn name_length_is_counted_in_characters_not_bytes() {
        let sixty_four = "é".repeat(64);
        assert!(StationName::parse(&json!(sixty_four)).is_ok());
        let sixty_five = "é".repeat(65);
        assert_eq!(
            StationName::parse(&json!(sixty_five)),
            Err(FieldError::TooLong)
        );
        assert_eq!(
            StationName::parse(&json!("🌡".repeat(64))).map(|n| n.as_ref().chars().count()),
            Ok(64)
        );
    }

    #[test]
    fn names_that_are_blank_null_or_not_text_are_refused() {
        assert_eq!(StationName::parse(&json!("")), Err(FieldError::Blank));
        assert_eq!(StationName::parse(&json!(" \t\n")), Err(FieldError::Blank));
        assert_eq!(StationName::parse(&Value::Null), Err(FieldError::Null));
        assert_eq!(
            StationName::parse(&json!(true)),
            Err(FieldError::NotAString)
        );
        assert_eq!(StationName::parse(&json!([])), Err(FieldError::NotAString));
        assert_eq!(StationName::parse(&json!({})), Err(FieldError::NotAString));
        assert_eq!(
            StationName::parse(&json!("a\u{0}b")),
            Err(FieldError::NullCharacter)
        );
    }

    #[test]
    fn timestamp_bounds_are_inclusive() {
        assert_eq!(Timestamp::parse(&json!(0)).unwrap().seconds(), 0);
        assert_eq!(
            Timestamp::parse(&json!(253_402_300_799_i64))
                .unwrap()
                .seconds(),
            TIMESTAMP_MAX
        );
        assert_eq!(
            Timestamp::parse(&json!(-1)),
            Err(FieldError::BelowMinimum("0"))
        );
        assert_eq!(
            Timestamp::parse(&json!(253_402_300_800_i64)),
            Err(FieldError::AboveMaximum("253402300799"))
        );
        assert_eq!(
            Timestamp::parse(&json!(u64::MAX)),
            Err(FieldError::AboveMaximum("253402300799"))
        );
    }

    #[test]
    fn timestamp_accepts_integral_text_and_floats_like_drf() {
        assert_eq!(Timestamp::parse(&json!(" 12 ")).unwrap().seconds(), 12);
        assert_eq!(Timestamp::parse(&json!("12.0")).unwrap().seconds(), 12);
        assert_eq!(Timestamp::parse(&json!("+12")).unwrap().seconds(), 12);
        assert_eq!(Timestamp::parse(&json!(12.0)).unwrap().seconds(), 12);
        assert_eq!(
            Timestamp::parse(&json!("99999999999999999999999999999999999999999")),
            Err(FieldError::AboveMaximum("253402300799"))
        );
        assert_eq!(
            Timestamp::parse(&json!("-5")),
            Err(FieldError::BelowMinimum("0"))
        );
    }

    #[test]
    fn timestamp_refuses_fractions_words_and_booleans() {
        for bad in [
            json!("12.5"),
            json!(12.5),
            json!("abc"),
            json!("1 2"),
            json!("0x10"),
            json!("-"),
            json!(true),
            json!([1]),
            json!("NaN"),
        ] {
            assert_eq!(
                Timestamp::parse(&bad),
                Err(FieldError::NotAnInteger),
                "{bad}"
            );
        }
        assert_eq!(Timestamp::parse(&json!("  ")), Err(FieldError::Blank));
        assert_eq!(Timestamp::parse(&Value::Null), Err(FieldError::Null));
        assert_eq!(
            Timestamp::parse(&json!("1".repeat(1001))),
            Err(FieldError::NotAnInteger)
        );
    }

    #[test]
    fn temperature_bounds_are_absolute_zero_and_one_thousand() {
        assert_eq!(
            Temperature::parse(&json!(-273.15)).unwrap().celsius(),
            -273.15
        );
        assert_eq!(Temperature::parse(&json!(1000)).unwrap().celsius(), 1000.0);
        assert_eq!(
            Temperature::parse(&json!(-273.16)),
            Err(FieldError::BelowMinimum("-273.15"))
        );
        assert_eq!(
            Temperature::parse(&json!(1000.000001)),
            Err(FieldError::AboveMaximum("1000"))
        );
    }

    #[test]
    fn latitude_and_longitude_bounds_are_inclusive() {
        assert!(Latitude::parse(&json!(90)).is_ok());
        assert!(Latitude::parse(&json!(-90)).is_ok());
        assert_eq!(
            Latitude::parse(&json!(90.0001)),
            Err(FieldError::AboveMaximum("90"))
        );
        assert_eq!(
            Latitude::parse(&json!(-90.0001)),
            Err(FieldError::BelowMinimum("-90"))
        );
        assert!(Longitude::parse(&json!(180)).is_ok());
        assert!(Longitude::parse(&json!(-180)).is_ok());
        assert_eq!(
            Longitude::parse(&json!(180.5)),
            Err(FieldError::AboveMaximum("180"))
        );
        assert_eq!(
            Longitude::parse(&json!("-180.5")),
            Err(FieldError::BelowMinimum("-180"))
        );
    }

    #[test]
    fn numbers_in_strings_may_carry_spaces_but_not_words() {
        assert_eq!(Latitude::parse(&json!(" 30.73 ")).unwrap().degrees(), 30.73);
        assert_eq!(Longitude::parse(&json!("1e1")).unwrap().degrees(), 10.0);
        for bad in [
            "NaN", "nan", "inf", "-inf", "Infinity", "infinity", "abc", "1,5", "3 0",
        ] {
            assert_eq!(
                Temperature::parse(&json!(bad)),
                Err(FieldError::NotANumber),
                "{bad}"
            );
        }
        assert_eq!(
            Temperature::parse(&json!("1e999")),
            Err(FieldError::NotANumber)
        );
        assert_eq!(
            Temperature::parse(&json!(true)),
            Err(FieldError::NotANumber)
        );
        assert_eq!(Temperature::parse(&json!(" ")), Err(FieldError::Blank));
        assert_eq!(Temperature::parse(&Value::Null), Err(FieldError::Null));
    }

    #[test]
    fn missing_fields_are_required_and_reported_in_field_order() {
        let errors = messages(NewStation::parse(&json!({"lat": 100, "name": ""})));
        assert_eq!(
            errors,
            vec![
                ("name", "This field may not be blank.".to_owned()),
                ("timestamp", "This field is required.".to_owned()),
                ("temperature", "This field is required.".to_owned()),
                (
                    "lat",
                    "Ensure this value is less than or equal to 90.".to_owned()
                ),
                ("lon", "This field is required.".to_owned()),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_read_only_fields_are_ignored() {
        let mut body = textbook();
        body["url"] = json!("http://elsewhere/station/9/");
        body["id"] = json!(9);
        body["colour"] = json!("blue");
        assert!(NewStation::parse(&body).is_ok());
    }

    #[test]
    fn bodies_that_are_not_objects_get_non_field_errors() {
        let cases = [
            (
                json!([]),
                "Invalid data. Expected a dictionary, but got list.",
            ),
            (
                json!("x"),
                "Invalid data. Expected a dictionary, but got str.",
            ),
            (
                json!(1),
                "Invalid data. Expected a dictionary, but got int.",
            ),
            (
                json!(1.5),
                "Invalid data. Expected a dictionary, but got float.",
            ),
            (
                json!(true),
                "Invalid data. Expected a dictionary, but got bool.",
            ),
            (Value::Null, "No data provided"),
        ];
        for (body, message) in cases {
            assert_eq!(
                messages(NewStation::parse(&body)),
                vec![("non_field_errors", message.to_owned())]
            );
        }
    }

    #[test]
    fn a_patch_takes_any_subset_and_checks_what_it_gets() {
        let empty = StationPatch::parse(&json!({})).unwrap();
        assert!(empty.is_empty());
        let patch = StationPatch::parse(&json!({"temperature": "12.5"})).unwrap();
        assert_eq!(patch.temperature.map(Temperature::celsius), Some(12.5));
        assert!(patch.name.is_none());
        let refused = StationPatch::parse(&json!({"lon": 200, "name": null})).unwrap_err();
        assert_eq!(
            refused.errors(),
            &[
                ("name", "This field may not be null.".to_owned()),
                (
                    "lon",
                    "Ensure this value is less than or equal to 180.".to_owned()
                ),
            ]
        );
    }
}
