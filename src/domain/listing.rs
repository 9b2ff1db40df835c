//! What a client may ask of the list: django-filter style filters, an ordering, a page size, and
//! either a page number or a cursor. Parsed once, at the edge, into values that cannot be wrong.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A column the list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// The primary key; always the last key, so the order is total.
    Id,
    /// Unix seconds.
    Timestamp,
    /// Degrees Celsius.
    Temperature,
    /// Station name, by code point.
    Name,
}

impl SortField {
    const ALL: [(&'static str, Self); 4] = [
        ("id", Self::Id),
        ("timestamp", Self::Timestamp),
        ("temperature", Self::Temperature),
        ("name", Self::Name),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Timestamp => "timestamp",
            Self::Temperature => "temperature",
            Self::Name => "name",
        }
    }
}

/// One key of an ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The column.
    pub field: SortField,
    /// Largest first.
    pub descending: bool,
}

/// A total order over readings: the client's keys, then `id` (ascending) unless they named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordering(Vec<SortKey>);

impl Default for Ordering {
    fn default() -> Self {
        Self(vec![SortKey {
            field: SortField::Id,
            descending: false,
        }])
    }
}

impl Ordering {
    /// Parses `ordering=-timestamp,name`; an empty value is the default (by id).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut keys: Vec<SortKey> = Vec::new();
        for term in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (descending, name) = match term.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, term),
            };
            let field = SortField::ALL
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, field)| *field)
                .ok_or_else(|| {
                    format!(
                        "Select a valid choice. {term} is not one of the available choices \
                         (id, timestamp, temperature, name, each optionally prefixed with -)."
                    )
                })?;
            // A repeated field adds nothing to the order; the first mention decides.
            if keys.iter().all(|key| key.field != field) {
                keys.push(SortKey { field, descending });
            }
        }
        if keys.iter().all(|key| key.field != SortField::Id) {
            keys.push(SortKey {
                field: SortField::Id,
                descending: false,
            });
        }
        Ok(Self(keys))
    }

    /// The keys, most significant first; the last one is always `id`.
    pub fn keys(&self) -> &[SortKey] {
        &self.0
    }
}

impl fmt::Display for Ordering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, key) in self.0.iter().enumerate() {
            let sign = if key.descending { "-" } else { "" };
            let comma = if n > 0 { "," } else { "" };
            write!(f, "{comma}{sign}{}", key.field.name())?;
        }
        Ok(())
    }
}

/// Inclusive or exclusive bounds on one column; `None` leaves that side open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bounds<T> {
    /// `>=`
    pub gte: Option<T>,
    /// `>`
    pub gt: Option<T>,
    /// `<=`
    pub lte: Option<T>,
    /// `<`
    pub lt: Option<T>,
}

/// Which readings to list. Every field narrows; empty means everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StationFilter {
    /// `name=`: exactly this name.
    pub name: Option<String>,
    /// `name__icontains=`: the name contains this, ignoring ASCII case.
    pub name_contains: Option<String>,
    /// `search=`: the name contains each of these terms, ignoring ASCII case.
    pub search_terms: Vec<String>,
    /// `timestamp__gte|gt|lte|lt=`
    pub timestamp: Bounds<i64>,
    /// `temperature__gte|lte=`
    pub temperature: Bounds<f64>,
    /// `lat__gte|lte=`
    pub lat: Bounds<f64>,
    /// `lon__gte|lte=`
    pub lon: Bounds<f64>,
}

impl StationFilter {
    /// True when every reading passes: no filter was given.
    pub fn lets_everything_through(&self) -> bool {
        *self == Self::default()
    }
}

/// Which page: by number (with a `count`), or by cursor (no `count`, cost independent of depth).
#[derive(Debug, Clone, PartialEq)]
pub enum PageRequest {
    /// `?page=N` or `?page=last`, or no paging parameter at all.
    Number(PageNumber),
    /// `?cursor=`: empty starts at the beginning of the order.
    Cursor(Option<CursorPosition>),
}

/// A page number as `?page=` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageNumber {
    /// A 1-based page number.
    Number(i64),
    /// Whatever page is last now.
    Last,
}

/// A list request, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Which readings.
    pub filter: StationFilter,
    /// In which order.
    pub ordering: Ordering,
    /// How many a page.
    pub page_size: i64,
    /// Which page.
    pub page: PageRequest,
}

/// Every parameter that was wrong: DRF's `{"param": ["message"]}` shape, in parameter order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvalidQuery {
    errors: Vec<(&'static str, String)>,
}

impl InvalidQuery {
    /// The parameters and their messages.
    pub fn errors(&self) -> &[(&'static str, String)] {
        &self.errors
    }

    fn add(&mut self, parameter: &'static str, message: impl Into<String>) {
        self.errors.push((parameter, message.into()));
    }
}

/// Why a page number was refused: DRF answers it with a 404, not a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPage;

/// What went wrong reading a list request.
#[derive(Debug, Clone, PartialEq)]
pub enum ListQueryError {
    /// Bad parameter values: 400.
    Invalid(InvalidQuery),
    /// A page number that is not one: 404 `Invalid page.`, as DRF.
    Page(InvalidPage),
}

/// Limits the parser applies.
#[derive(Debug, Clone, Copy)]
pub struct PageSizeLimits {
    /// Used when `page_size` is absent or empty.
    pub default: i64,
    /// The largest `page_size` accepted.
    pub max: i64,
}

/// The most characters a filter's value may have: more can only be an attack (a name has at most
/// 64), and each character is work for the database.
pub const MAX_FILTER_VALUE_CHARS: usize = 1000;
/// The most terms `search` may have: each is a pattern match over every candidate row.
pub const MAX_SEARCH_TERMS: usize = 16;

/// The parameters that filter or order the list, whose values [`MAX_FILTER_VALUE_CHARS`] bounds.
const FILTER_PARAMETERS: [&str; 14] = [
    "name",
    "name__icontains",
    "search",
    "ordering",
    "timestamp__gte",
    "timestamp__gt",
    "timestamp__lte",
    "timestamp__lt",
    "temperature__gte",
    "temperature__lte",
    "lat__gte",
    "lat__lte",
    "lon__gte",
    "lon__lte",
];

const NOT_A_NUMBER: &str = "Enter a number.";
const NOT_A_WHOLE_NUMBER: &str = "Enter a whole number.";

impl ListQuery {
    /// Reads the list parameters through `get` (the last value of a parameter, if given). Empty
    /// filter values are ignored, as django-filter does.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        limits: PageSizeLimits,
        cursors: &CursorCodec,
    ) -> Result<Self, ListQueryError> {
        let mut invalid = InvalidQuery::default();
        // Refused values count as absent below, so each parameter gets one message.
        let mut too_long: Vec<&str> = Vec::new();
        for parameter in FILTER_PARAMETERS {
            let length = get(parameter).map_or(0, |value| value.chars().count());
            if length > MAX_FILTER_VALUE_CHARS {
                invalid.add(
                    parameter,
                    format!(
                        "Ensure this value has at most {MAX_FILTER_VALUE_CHARS} characters \
                         (it has {length})."
                    ),
                );
                too_long.push(parameter);
            }
        }
        let get = |name: &str| get(name).filter(|_| !too_long.contains(&name));
        let given = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        // django-filter's CharFilter is a Django CharField: it strips surrounding whitespace and
        // refuses NUL characters (no stored name can hold one anyway).
        let text = |parameter: &'static str, invalid: &mut InvalidQuery| {
            let value = get(parameter).map(str::trim).filter(|v| !v.is_empty())?;
            if value.contains('\0') {
                invalid.add(parameter, "Null characters are not allowed.");
                return None;
            }
            Some(value)
        };
        let mut filter = StationFilter {
            name: text("name", &mut invalid).map(str::to_owned),
            name_contains: text("name__icontains", &mut invalid).map(str::to_owned),
            // DRF's SearchFilter drops NUL characters, then splits on commas and whitespace.
            search_terms: get("search")
                .map(|terms| {
                    terms
                        .replace('\0', "")
                        .split(|c: char| c.is_whitespace() || c == ',')
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            ..StationFilter::default()
        };
        if filter.search_terms.len() > MAX_SEARCH_TERMS {
            invalid.add(
                "search",
                format!(
                    "Ensure this value has at most {MAX_SEARCH_TERMS} search terms (it has {}).",
                    filter.search_terms.len()
                ),
            );
        }
        let whole = |parameter: &'static str, invalid: &mut InvalidQuery| {
            given(parameter).and_then(|raw| match parse_whole_number(raw) {
                Some(value) => Some(value),
                None => {
                    invalid.add(parameter, NOT_A_WHOLE_NUMBER);
                    None
                }
            })
        };
        filter.timestamp = Bounds {
            gte: whole("timestamp__gte", &mut invalid),
            gt: whole("timestamp__gt", &mut invalid),
            lte: whole("timestamp__lte", &mut invalid),
            lt: whole("timestamp__lt", &mut invalid),
        };
        let number = |parameter: &'static str, invalid: &mut InvalidQuery| {
            given(parameter).and_then(|raw| match parse_number(raw) {
                Some(value) => Some(value),
                None => {
                    invalid.add(parameter, NOT_A_NUMBER);
                    None
                }
            })
        };
        filter.temperature = Bounds {
            gte: number("temperature__gte", &mut invalid),
            lte: number("temperature__lte", &mut invalid),
            ..Bounds::default()
        };
        filter.lat = Bounds {
            gte: number("lat__gte", &mut invalid),
            lte: number("lat__lte", &mut invalid),
            ..Bounds::default()
        };
        filter.lon = Bounds {
            gte: number("lon__gte", &mut invalid),
            lte: number("lon__lte", &mut invalid),
            ..Bounds::default()
        };

        let ordering = match Ordering::parse(get("ordering").unwrap_or_default()) {
            Ok(ordering) => ordering,
            Err(message) => {
                invalid.add("ordering", message);
                Ordering::default()
            }
        };

        let page_size = match given("page_size") {
            None => limits.default,
            Some(raw) => match parse_whole_number(raw) {
                None => {
                    invalid.add("page_size", NOT_A_WHOLE_NUMBER);
                    limits.default
                }
                Some(size) if size < 1 => {
                    invalid.add(
                        "page_size",
                        "Ensure this value is greater than or equal to 1.",
                    );
                    limits.default
                }
                Some(size) if size > limits.max => {
                    invalid.add(
                        "page_size",
                        format!("Ensure this value is less than or equal to {}.", limits.max),
                    );
                    limits.default
                }
                Some(size) => size,
            },
        };

        let page = match (get("cursor"), get("page")) {
            (Some(_), Some(_)) => {
                invalid.add("cursor", "Use either page or cursor, not both.");
                None
            }
            (Some(""), None) => Some(PageRequest::Cursor(None)),
            (Some(token), None) => match cursors.decode(token, &ordering) {
                Ok(position) => Some(PageRequest::Cursor(Some(position))),
                Err(InvalidCursor) => {
                    invalid.add("cursor", "Invalid cursor.");
                    None
                }
            },
            (None, raw) => match page_number(raw) {
                Ok(number) => Some(PageRequest::Number(number)),
                Err(InvalidPage) if invalid.errors.is_empty() => {
                    return Err(ListQueryError::Page(InvalidPage));
                }
                Err(InvalidPage) => None,
            },
        };

        match page {
            Some(page) if invalid.errors.is_empty() => Ok(Self {
                filter,
                ordering,
                page_size,
                page,
            }),
            _ => Err(ListQueryError::Invalid(invalid)),
        }
    }
}

/// `?page=`: DRF accepts a positive integer or `last`; anything else is `Invalid page.`.
fn page_number(raw: Option<&str>) -> Result<PageNumber, InvalidPage> {
    match raw {
        None | Some("") => Ok(PageNumber::Number(1)),
        Some("last") => Ok(PageNumber::Last),
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => digits
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .map(PageNumber::Number)
            .ok_or(InvalidPage),
        Some(_) => Err(InvalidPage),
    }
}

/// A decimal number as Django's `DecimalField` reads one: surrounding space allowed, finite only.
fn parse_number(raw: &str) -> Option<f64> {
    let trimmed = raw.trim();
    let looks_numeric = trimmed
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    trimmed
        .parse::<f64>()
        .ok()
        .filter(|value| looks_numeric && value.is_finite())
}

/// An integer as Django's `IntegerField` reads one: `12`, ` 12 `, `12.0`; not `12.5`.
fn parse_whole_number(raw: &str) -> Option<i64> {
    let trimmed = raw.trim();
    let integral = match trimmed.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => trimmed,
    };
    integral.parse().ok()
}

/// The sort-key values of one row, in the ordering's key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortValue {
    /// `id`, `timestamp`.
    Integer(i64),
    /// `temperature`.
    Real(f64),
    /// `name`.
    Text(String),
}

/// Which way a cursor walks from its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The rows after it (a `next` link).
    #[serde(rename = "n")]
    After,
    /// The rows before it (a `previous` link).
    #[serde(rename = "p")]
    Before,
}

/// Where a cursor page starts: strictly after (or before) the row with these sort keys.
#[derive(Debug, Clone, PartialEq)]
pub struct CursorPosition {
    /// Which way to walk.
    pub direction: Direction,
    /// The boundary row's sort-key values, one per key of the ordering; none, walking
    /// backwards, for the end of the order (the last page).
    pub keys: Vec<SortValue>,
}

impl CursorPosition {
    /// Just after the row with these sort-key values.
    pub fn after(keys: Vec<SortValue>) -> Self {
        Self {
            direction: Direction::After,
            keys,
        }
    }

    /// Just before the row with these sort-key values.
    pub fn before(keys: Vec<SortValue>) -> Self {
        Self {
            direction: Direction::Before,
            keys,
        }
    }

    /// Backwards from the end of the order: the last page.
    pub fn end() -> Self {
        Self::before(Vec::new())
    }
}

/// A cursor that was not made by this service for this ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCursor;

#[derive(Serialize, Deserialize)]
struct CursorPayload {
    /// The ordering it was made for.
    o: String,
    d: Direction,
    k: Vec<SortValue>,
}

/// Makes and checks cursor tokens: base64url of a small JSON payload and an HMAC-SHA256 tag
/// (16 bytes) over it. Opaque to clients, and any change to it is detected.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CursorCodec { .. }")
    }
}

const TAG_BYTES: usize = 16;

impl CursorCodec {
    /// A codec keyed by `key`; every instance of the service must share it.
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG_BYTES] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }

    /// The token for `position` under `ordering`.
    pub fn encode(&self, ordering: &Ordering, position: &CursorPosition) -> String {
        use base64::Engine as _;

        let payload = CursorPayload {
            o: ordering.to_string(),
            d: position.direction,
            k: position.keys.clone(),
        };
        // Serializing plain data to a Vec cannot fail.
        let mut bytes = serde_json::to_vec(&payload).unwrap_or_default();
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position in `token`, if this codec made it for `ordering`.
    pub fn decode(
        &self,
        token: &str,
        ordering: &Ordering,
    ) -> Result<CursorPosition, InvalidCursor> {
        use base64::Engine as _;

        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| InvalidCursor)?;
        if bytes.len() <= TAG_BYTES {
            return Err(InvalidCursor);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).map_err(|_| InvalidCursor)?;
        mac.update(payload);
        mac.verify_truncated_left(tag).map_err(|_| InvalidCursor)?;
        let payload: CursorPayload = serde_json::from_slice(payload).map_err(|_| InvalidCursor)?;
        let is_end = payload.d == Direction::Before && payload.k.is_empty();
        if payload.o != ordering.to_string() || !(is_end || keys_fit(ordering, &payload.k)) {
            return Err(InvalidCursor);
        }
        Ok(CursorPosition {
            direction: payload.d,
            keys: payload.k,
        })
    }
}

/// True when each value has the type its key's column holds.
fn keys_fit(ordering: &Ordering, values: &[SortValue]) -> bool {
    ordering.keys().len() == values.len()
        && ordering.keys().iter().zip(values).all(|(key, value)| {
            matches!(
                (key.field, value),
                (SortField::Id | SortField::Timestamp, SortValue::Integer(_))
                    | (
                        SortField::Temperature,
                        SortValue::Real(_) | SortValue::Integer(_)
                    )
                    | (SortField::Name, SortValue::Text(_))
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PageSizeLimits = PageSizeLimits {
        default: 10,
        max: 1000,
    };

    fn parse(query: &str) -> Result<ListQuery, ListQueryError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let codec = CursorCodec::new(b"test key");
        ListQuery::parse(
            |name| {
                pairs
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            },
            LIMITS,
            &codec,
        )
    }

    fn errors(query: &str) -> Vec<(&'static str, String)> {
        match parse(query) {
            Err(ListQueryError::Invalid(invalid)) => invalid.errors().to_vec(),
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn orderings_always_end_with_id() {
        assert_eq!(Ordering::parse("").unwrap().to_string(), "id");
        assert_eq!(
            Ordering::parse("-timestamp,name").unwrap().to_string(),
            "-timestamp,name,id"
        );
        assert_eq!(Ordering::parse("-id").unwrap().to_string(), "-id");
        assert_eq!(
            Ordering::parse("name, name ,-temperature")
                .unwrap()
                .to_string(),
            "name,-temperature,id"
        );
        assert!(Ordering::parse("colour").unwrap_err().contains("colour"));
        assert!(Ordering::parse("--id").is_err());
    }

    #[test]
    fn numbers_are_read_as_django_reads_them() {
        assert_eq!(parse_whole_number(" 12 "), Some(12));
        assert_eq!(parse_whole_number("12.00"), Some(12));
        assert_eq!(parse_whole_number("12.5"), None);
        assert_eq!(parse_whole_number("1e3"), None);
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("-0.5"), Some(-0.5));
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("1e400"), None);
    }

    #[test]
    fn every_bad_parameter_is_reported_at_once() {
        assert_eq!(
            errors("timestamp__gte=soon&lat__lte=north&ordering=colour&page_size=0"),
            vec![
                ("timestamp__gte", NOT_A_WHOLE_NUMBER.to_owned()),
                ("lat__lte", NOT_A_NUMBER.to_owned()),
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
        let query = parse("name=&temperature__gte=&search=&colour=red&page_size=").unwrap();
        assert_eq!(query.filter, StationFilter::default());
        assert_eq!(query.page_size, 10);
        assert_eq!(query.page, PageRequest::Number(PageNumber::Number(1)));
    }

    #[test]
    fn name_filters_refuse_nul_characters_and_search_drops_them() {
        assert_eq!(
            errors("name=a%00b&search=x%00&name__icontains=%00"),
            vec![
                ("name", "Null characters are not allowed.".to_owned()),
                (
                    "name__icontains",
                    "Null characters are not allowed.".to_owned()
                ),
            ]
        );
        let query = parse("search=os%00lo,%00").unwrap();
        assert_eq!(query.filter.search_terms, ["oslo"]);
    }

    #[test]
    fn name_filters_are_trimmed_as_django_forms_trim_them() {
        let query = parse("name=%20Oslo%09&name__icontains=%20%20").unwrap();
        assert_eq!(query.filter.name.as_deref(), Some("Oslo"));
        assert_eq!(query.filter.name_contains, None);
    }

    #[test]
    fn long_values_and_many_search_terms_are_refused_each_with_one_message() {
        let long = "a".repeat(MAX_FILTER_VALUE_CHARS + 1);
        assert_eq!(
            errors(&format!("name={long}&lat__gte={long}")),
            vec![
                (
                    "name",
                    "Ensure this value has at most 1000 characters (it has 1001).".to_owned()
                ),
                (
                    "lat__gte",
                    "Ensure this value has at most 1000 characters (it has 1001).".to_owned()
                ),
            ]
        );
        let at_the_limit = "é".repeat(MAX_FILTER_VALUE_CHARS);
        assert!(parse(&format!("name={at_the_limit}")).is_ok());

        let most = vec!["a"; MAX_SEARCH_TERMS].join("+");
        assert_eq!(
            parse(&format!("search={most}"))
                .unwrap()
                .filter
                .search_terms
                .len(),
            16
        );
        assert_eq!(
            errors(&format!("search={most},b")),
            vec![(
                "search",
                "Ensure this value has at most 16 search terms (it has 17).".to_owned()
            )]
        );
    }

    #[test]
    fn search_terms_split_on_spaces_and_commas() {
        let query = parse("search=oslo%20north,,bay").unwrap();
        assert_eq!(query.filter.search_terms, ["oslo", "north", "bay"]);
    }

    #[test]
    fn page_numbers_are_positive_integers_or_last() {
        assert_eq!(page_number(None), Ok(PageNumber::Number(1)));
        assert_eq!(page_number(Some("")), Ok(PageNumber::Number(1)));
        assert_eq!(page_number(Some("7")), Ok(PageNumber::Number(7)));
        assert_eq!(page_number(Some("last")), Ok(PageNumber::Last));
        for bad in ["0", "-1", "1.0", "abc", "+1", " 1", "99999999999999999999"] {
            assert_eq!(page_number(Some(bad)), Err(InvalidPage), "{bad}");
        }
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
    fn cursors_round_trip_and_refuse_tampering() {
        let codec = CursorCodec::new(b"k1");
        let ordering = Ordering::parse("-temperature,name").unwrap();
        let position = CursorPosition {
            direction: Direction::Before,
            keys: vec![
                SortValue::Real(-3.25),
                SortValue::Text("Ås \"quoted\"".into()),
                SortValue::Integer(42),
            ],
        };
        let token = codec.encode(&ordering, &position);
        assert_eq!(codec.decode(&token, &ordering), Ok(position));
        let end = codec.encode(&ordering, &CursorPosition::end());
        assert_eq!(codec.decode(&end, &ordering), Ok(CursorPosition::end()));
        let nowhere = codec.encode(&ordering, &CursorPosition::after(Vec::new()));
        assert_eq!(codec.decode(&nowhere, &ordering), Err(InvalidCursor));

        let other_ordering = Ordering::parse("name").unwrap();
        assert_eq!(codec.decode(&token, &other_ordering), Err(InvalidCursor));
        assert_eq!(
            CursorCodec::new(b"k2").decode(&token, &ordering),
            Err(InvalidCursor)
        );
        let mut flipped = token.into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(codec.decode(&flipped, &ordering), Err(InvalidCursor));
        assert_eq!(
            codec.decode("bm90IGEgY3Vyc29y", &ordering),
            Err(InvalidCursor)
        );
        assert_eq!(codec.decode("%%%", &ordering), Err(InvalidCursor));
    }

    #[test]
    fn page_and_cursor_do_not_mix() {
        assert_eq!(
            errors("page=2&cursor="),
            vec![("cursor", "Use either page or cursor, not both.".to_owned())]
        );
        assert_eq!(parse("cursor=").unwrap().page, PageRequest::Cursor(None));
        assert_eq!(
            errors("cursor=garbage"),
            vec![("cursor", "Invalid cursor.".to_owned())]
        );
    }
}
