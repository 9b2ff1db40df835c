//! Which readings a client may ask the list for, and in which order: django-filter style filters
//! and an ordering, parsed once, at the edge, into values that cannot be wrong. How the list is cut
//! into pages is [`crate::pagination`]'s business.

use std::fmt;

use serde::{Deserialize, Serialize};

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

/// A total order over readings: the client's keys, then `id` unless they named it, in the
/// direction of the key before it (ascending when there is none).
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
            // In the last key's direction: an index on (key, id), or SQLite's on (key) that ends
            // with the rowid, read backwards is in (key descending, id descending) order. With
            // id ascending under a descending key, every page would sort all the readings that
            // share the key's value (all of a station's, for `-name`).
            let descending = keys.last().is_some_and(|key| key.descending);
            keys.push(SortKey {
                field: SortField::Id,
                descending,
            });
        }
        Ok(Self(keys))
    }

    /// The keys, most significant first; the last one is always `id`.
    pub fn keys(&self) -> &[SortKey] {
        &self.0
    }

    /// True when `values` could be a row's sort keys in this order: one per key, each of the type
    /// its column holds.
    pub fn fits(&self, values: &[SortValue]) -> bool {
        self.keys().len() == values.len()
            && self.keys().iter().zip(values).all(|(key, value)| {
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
    /// Not a parameter: the one station a bound device token may see, added by the handler.
    pub station_bound: Option<String>,
}

impl<T: PartialOrd + Copy> Bounds<T> {
    /// Whether `value` is within every bound given.
    pub fn admits(&self, value: T) -> bool {
        self.gte.is_none_or(|bound| value >= bound)
            && self.gt.is_none_or(|bound| value > bound)
            && self.lte.is_none_or(|bound| value <= bound)
            && self.lt.is_none_or(|bound| value < bound)
    }
}

impl StationFilter {
    /// True when every reading passes: no filter was given.
    pub fn lets_everything_through(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a reading with these values passes every filter, by the rules the database
    /// applies (names compared ignoring ASCII case only): for readings already read, such as
    /// the latest of each station.
    pub fn admits(&self, name: &str, timestamp: i64, temperature: f64, lat: f64, lon: f64) -> bool {
        // Folded only when a case-blind filter needs it: the change feed asks this of every
        // subscriber for every change.
        let folded = std::cell::OnceCell::new();
        let contains = |term: &str| {
            folded
                .get_or_init(|| name.to_ascii_lowercase())
                .contains(&term.to_ascii_lowercase())
        };
        self.name.as_deref().is_none_or(|exact| exact == name)
            && self
                .station_bound
                .as_deref()
                .is_none_or(|bound| bound == name)
            && self.name_contains.as_deref().is_none_or(contains)
            && self.search_terms.iter().all(|term| contains(term))
            && self.timestamp.admits(timestamp)
            && self.temperature.admits(temperature)
            && self.lat.admits(lat)
            && self.lon.admits(lon)
    }
}

/// Which readings a list shows, and in which order.
#[derive(Debug, Clone, PartialEq)]
pub struct StationList {
    /// Which readings.
    pub filter: StationFilter,
    /// In which order.
    pub ordering: Ordering,
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

    /// Records that `parameter` is wrong, and why.
    pub fn add(&mut self, parameter: &'static str, message: impl Into<String>) {
        self.errors.push((parameter, message.into()));
    }

    /// True while no parameter was found wrong.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The most characters a filter's value may have: more can only be an attack (a name has at most
/// 64), and each character is work for the database.
pub const MAX_FILTER_VALUE_CHARS: usize = 1000;
/// The most terms `search` may have: each is a pattern match over every candidate row.
pub const MAX_SEARCH_TERMS: usize = 16;

/// The parameters that filter or order the list, whose values [`MAX_FILTER_VALUE_CHARS`] bounds.
pub const FILTER_PARAMETERS: [&str; 14] = [
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
/// Django's message for a value `IntegerField` cannot read.
pub const NOT_A_WHOLE_NUMBER: &str = "Enter a whole number.";

impl StationList {
    /// Reads the filter and ordering parameters through `get` (the last value of a parameter, if
    /// given), adding what is wrong with them to `invalid`; a wrong one counts as absent. Empty
    /// filter values are ignored, as django-filter does.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>, invalid: &mut InvalidQuery) -> Self {
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
            name: text("name", invalid).map(str::to_owned),
            name_contains: text("name__icontains", invalid).map(str::to_owned),
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
            gte: whole("timestamp__gte", invalid),
            gt: whole("timestamp__gt", invalid),
            lte: whole("timestamp__lte", invalid),
            lt: whole("timestamp__lt", invalid),
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
            gte: number("temperature__gte", invalid),
            lte: number("temperature__lte", invalid),
            ..Bounds::default()
        };
        filter.lat = Bounds {
            gte: number("lat__gte", invalid),
            lte: number("lat__lte", invalid),
            ..Bounds::default()
        };
        filter.lon = Bounds {
            gte: number("lon__gte", invalid),
            lte: number("lon__lte", invalid),
            ..Bounds::default()
        };

        let ordering = match Ordering::parse(get("ordering").unwrap_or_default()) {
            Ok(ordering) => ordering,
            Err(message) => {
                invalid.add("ordering", message);
                Ordering::default()
            }
        };

        Self { filter, ordering }
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
pub fn parse_whole_number(raw: &str) -> Option<i64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The list `query` asks for, or what is wrong with it.
    fn parse(query: &str) -> Result<StationList, InvalidQuery> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut invalid = InvalidQuery::default();
        let list = StationList::parse(
            |name| {
                pairs
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            },
            &mut invalid,
        );
        if invalid.is_empty() {
            Ok(list)
        } else {
            Err(invalid)
        }
    }

    fn errors(query: &str) -> Vec<(&'static str, String)> {
        match parse(query) {
            Err(invalid) => invalid.errors().to_vec(),
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn orderings_always_end_with_id_running_the_way_the_key_before_it_does() {
        assert_eq!(Ordering::parse("").unwrap().to_string(), "id");
        assert_eq!(
            Ordering::parse("-timestamp,name").unwrap().to_string(),
            "-timestamp,name,id"
        );
        assert_eq!(Ordering::parse("-id").unwrap().to_string(), "-id");
        assert_eq!(
            Ordering::parse("-timestamp,id").unwrap().to_string(),
            "-timestamp,id"
        );
        assert_eq!(
            Ordering::parse("name, name ,-temperature")
                .unwrap()
                .to_string(),
            "name,-temperature,-id"
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
}
