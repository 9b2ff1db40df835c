//! Device tokens: what a token may do ([`Scopes`]) and the rules a new one must satisfy
//! ([`NewToken::parse`], DRF's field messages). The key itself is made and hashed in `auth`.

use serde_json::Value;
use validator::ValidateLength as _;

use crate::domain::station::{FieldError, StationName, TIMESTAMP_MAX, python_type_name};

/// The most characters a token's label may have.
pub const LABEL_MAX_CHARS: u64 = 64;
/// The scope names a token may hold, in the order they are shown.
pub const SCOPE_NAMES: [&str; 2] = ["read", "write"];

/// What a token may do: read readings, add readings, or both; never anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    read: bool,
    write: bool,
}

impl Scopes {
    /// Both scopes, or one of them; `None` when neither is given.
    pub fn new(read: bool, write: bool) -> Option<Self> {
        (read || write).then_some(Self { read, write })
    }

    /// May read readings.
    pub fn read(self) -> bool {
        self.read
    }

    /// May add readings.
    pub fn write(self) -> bool {
        self.write
    }

    /// The stored form: `read`, `write` or `read,write`.
    pub fn as_stored(self) -> &'static str {
        match (self.read, self.write) {
            (true, true) => "read,write",
            (true, false) => "read",
            (false, _) => "write",
        }
    }

    /// Reads the stored form back; `None` for anything [`Scopes::as_stored`] never writes.
    pub fn from_stored(stored: &str) -> Option<Self> {
        match stored {
            "read,write" => Self::new(true, true),
            "read" => Self::new(true, false),
            "write" => Self::new(false, true),
            _ => None,
        }
    }

    /// The scope names, in [`SCOPE_NAMES`] order.
    pub fn names(self) -> Vec<&'static str> {
        let [read, write] = SCOPE_NAMES;
        [(self.read, read), (self.write, write)]
            .into_iter()
            .filter_map(|(held, name)| held.then_some(name))
            .collect()
    }
}

/// A token's label: trimmed, not blank, at most [`LABEL_MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLabel(String);

impl TokenLabel {
    /// Accepts a string (trimmed), as DRF's `CharField` does.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let text = match value {
            Value::Null => return Err(FieldError::Null.to_string()),
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return Err(FieldError::NotAString.to_string()),
        };
        if text.is_empty() {
            return Err(FieldError::Blank.to_string());
        }
        if !text.validate_length(None, Some(LABEL_MAX_CHARS), None) {
            return Err(format!(
                "Ensure this field has no more than {LABEL_MAX_CHARS} characters."
            ));
        }
        if text.contains('\0') {
            return Err(FieldError::NullCharacter.to_string());
        }
        Ok(Self(text))
    }
}

impl AsRef<str> for TokenLabel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Everything wrong with a token request: DRF's `{"field": ["message"]}` shape, in field order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvalidTokenRequest {
    errors: Vec<(&'static str, String)>,
}

impl InvalidTokenRequest {
    /// `(field, message)` pairs in the order they should be reported.
    pub fn errors(&self) -> &[(&'static str, String)] {
        &self.errors
    }
}

/// A token to issue: every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// What the token is for (a device's name).
    pub label: TokenLabel,
    /// What it may do.
    pub scopes: Scopes,
    /// The one station whose readings it may read and write, if bound.
    pub station: Option<StationName>,
    /// When it stops working, in Unix seconds; `None` never.
    pub expires: Option<i64>,
}

impl NewToken {
    /// Parses `{"label","scopes","station","expires"}`, judging `expires` against `now` (Unix
    /// seconds); every failing field is reported, in that order.
    pub fn parse(body: &Value, now: i64) -> Result<Self, InvalidTokenRequest> {
        let Value::Object(fields) = body else {
            let message = match body {
                Value::Null => "No data provided".to_owned(),
                Value::Array(_) => "Invalid data. Expected a dictionary, but got list.".to_owned(),
                Value::String(_) => "Invalid data. Expected a dictionary, but got str.".to_owned(),
                Value::Bool(_) => "Invalid data. Expected a dictionary, but got bool.".to_owned(),
                Value::Number(n) if n.is_f64() => {
                    "Invalid data. Expected a dictionary, but got float.".to_owned()
                }
                _ => "Invalid data. Expected a dictionary, but got int.".to_owned(),
            };
            return Err(InvalidTokenRequest {
                errors: vec![("non_field_errors", message)],
            });
        };
        let mut invalid = InvalidTokenRequest::default();
        let mut note = |field: &'static str, error: String| invalid.errors.push((field, error));
        let label = match fields.get("label") {
            None => Err(FieldError::Required.to_string()),
            Some(value) => TokenLabel::parse(value),
        }
        .map_err(|error| note("label", error))
        .ok();
        let scopes = parse_scopes(fields.get("scopes"))
            .map_err(|error| note("scopes", error))
            .ok();
        let station = match fields.get("station") {
            None | Some(Value::Null) => Ok(None),
            Some(value) => StationName::parse(value).map(Some),
        }
        .map_err(|error| note("station", error.to_string()))
        .ok()
        .flatten();
        let expires = parse_expiry(fields.get("expires"), now)
            .map_err(|error| note("expires", error))
            .ok()
            .flatten();
        match (label, scopes) {
            (Some(label), Some(scopes)) if invalid.errors.is_empty() => Ok(Self {
                label,
                scopes,
                station,
                expires,
            }),
            _ => Err(invalid),
        }
    }
}

/// DRF's `MultipleChoiceField`: a non-empty list of known scope names; repeats count once.
fn parse_scopes(value: Option<&Value>) -> Result<Scopes, String> {
    let items = match value {
        None => return Err(FieldError::Required.to_string()),
        Some(Value::Null) => return Err(FieldError::Null.to_string()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(format!(
                "Expected a list of items but got type \"{}\".",
                python_type_name(other)
            ));
        }
    };
    let (mut read, mut write) = (false, false);
    for item in items {
        match item.as_str() {
            Some("read") => read = true,
            Some("write") => write = true,
            Some(other) => return Err(format!("\"{other}\" is not a valid choice.")),
            None => return Err(format!("\"{item}\" is not a valid choice.")),
        }
    }
    Scopes::new(read, write).ok_or_else(|| "This selection may not be empty.".to_owned())
}

/// Null or absent (never expires), or whole Unix seconds after `now`.
fn parse_expiry(value: Option<&Value>, now: i64) -> Result<Option<i64>, String> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| FieldError::NotAnInteger.to_string())?;
    if seconds <= now {
        return Err("Ensure this value is in the future.".to_owned());
    }
    if seconds > TIMESTAMP_MAX {
        return Err(FieldError::AboveMaximum("253402300799").to_string());
    }
    Ok(Some(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn errors(body: Value) -> Vec<(&'static str, String)> {
        NewToken::parse(&body, NOW).unwrap_err().errors().to_vec()
    }

    #[test]
    fn a_full_request_parses() {
        let token = NewToken::parse(
            &json!({"label": " pi ", "scopes": ["write", "read", "write"], "station": "Kitchen",
                    "expires": NOW + 10}),
            NOW,
        )
        .unwrap();
        assert_eq!(token.label.as_ref(), "pi");
        assert_eq!(token.scopes.as_stored(), "read,write");
        assert_eq!(token.station.unwrap().as_ref(), "Kitchen");
        assert_eq!(token.expires, Some(NOW + 10));
    }

    #[test]
    fn every_bad_field_is_reported_in_order() {
        assert_eq!(
            errors(json!({})),
            vec![
                ("label", "This field is required.".to_owned()),
                ("scopes", "This field is required.".to_owned()),
            ]
        );
        assert_eq!(
            errors(json!({"label": "", "scopes": [], "station": "", "expires": NOW})),
            vec![
                ("label", "This field may not be blank.".to_owned()),
                ("scopes", "This selection may not be empty.".to_owned()),
                ("station", "This field may not be blank.".to_owned()),
                ("expires", "Ensure this value is in the future.".to_owned()),
            ]
        );
        assert_eq!(
            errors(json!({"label": "x".repeat(65), "scopes": "write", "expires": "soon"})),
            vec![
                (
                    "label",
                    "Ensure this field has no more than 64 characters.".to_owned()
                ),
                (
                    "scopes",
                    "Expected a list of items but got type \"str\".".to_owned()
                ),
                ("expires", "A valid integer is required.".to_owned()),
            ]
        );
        assert_eq!(
            errors(json!({"label": "x", "scopes": ["admin"]})),
            vec![("scopes", "\"admin\" is not a valid choice.".to_owned())]
        );
        assert_eq!(
            errors(json!([])),
            vec![(
                "non_field_errors",
                "Invalid data. Expected a dictionary, but got list.".to_owned()
            )]
        );
    }

    #[test]
    fn scopes_round_trip_through_their_stored_form() {
        for (read, write) in [(true, false), (false, true), (true, true)] {
            let scopes = Scopes::new(read, write).unwrap();
            assert_eq!(Scopes::from_stored(scopes.as_stored()), Some(scopes));
        }
        assert_eq!(Scopes::new(false, false), None);
        assert_eq!(Scopes::from_stored("admin"), None);
    }
}
