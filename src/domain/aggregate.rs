//! What `/station/aggregate/` may be asked: one station's temperatures between two instants, in
//! buckets of a whole number of seconds aligned to multiples of it, few enough to answer at once.

use crate::domain::listing::{
    InvalidQuery, MAX_FILTER_VALUE_CHARS, NOT_A_WHOLE_NUMBER, parse_whole_number,
};

/// The shortest bucket: a minute.
pub const MIN_INTERVAL_SECONDS: i64 = 60;
/// The longest bucket: a year of 365 days.
pub const MAX_INTERVAL_SECONDS: i64 = 31_536_000;
/// The most buckets one request may span.
pub const MAX_BUCKETS: i64 = 10_000;

/// A checked aggregate request: `name`'s readings with `from <= timestamp < until`, grouped by
/// `interval` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateRequest {
    /// The station.
    pub name: String,
    /// Unix seconds, inclusive.
    pub from: i64,
    /// Unix seconds, exclusive; after `from`.
    pub until: i64,
    /// Seconds per bucket, from [`MIN_INTERVAL_SECONDS`] to [`MAX_INTERVAL_SECONDS`].
    pub interval: i64,
}

impl AggregateRequest {
    /// Reads the request from query parameters; every problem is noted in `invalid`, in DRF's
    /// `{"parameter": ["message"]}` shape, and `None` comes back when there is any.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        invalid: &mut InvalidQuery,
    ) -> Option<Self> {
        let given = |name: &str| get(name).map(str::trim).filter(|value| !value.is_empty());
        let name = match given("name") {
            None => {
                invalid.add("name", "This field is required.");
                None
            }
            Some(name) if name.chars().count() > MAX_FILTER_VALUE_CHARS => {
                invalid.add(
                    "name",
                    format!("Ensure this value has at most {MAX_FILTER_VALUE_CHARS} characters."),
                );
                None
            }
            Some(name) if name.contains('\0') => {
                invalid.add("name", "Null characters are not allowed.");
                None
            }
            Some(name) => Some(name.to_owned()),
        };
        let mut whole = |parameter: &'static str| match given(parameter) {
            None => {
                invalid.add(parameter, "This field is required.");
                None
            }
            Some(raw) => parse_whole_number(raw).or_else(|| {
                invalid.add(parameter, NOT_A_WHOLE_NUMBER);
                None
            }),
        };
        let from = whole("timestamp__gte");
        let until = whole("timestamp__lt");
        let interval = whole("interval");
        let interval = interval.filter(|seconds| {
            let in_range = (MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(seconds);
            if !in_range {
                invalid.add(
                    "interval",
                    format!(
                        "Ensure this value is between {MIN_INTERVAL_SECONDS} and \
                         {MAX_INTERVAL_SECONDS} seconds."
                    ),
                );
            }
            in_range
        });
        let (name, from, until, interval) = (name?, from?, until?, interval?);
        if until <= from {
            invalid.add(
                "timestamp__lt",
                "Ensure this value is after timestamp__gte.",
            );
            return None;
        }
        let buckets = bucket_start(until - 1, interval)
            .saturating_sub(bucket_start(from, interval))
            / interval
            + 1;
        if buckets > MAX_BUCKETS {
            invalid.add(
                "interval",
                format!(
                    "Ensure the range holds at most {MAX_BUCKETS} buckets (it holds {buckets}): \
                     use a longer interval or a shorter range."
                ),
            );
            return None;
        }
        Some(Self {
            name,
            from,
            until,
            interval,
        })
    }
}

/// The start of the bucket of `interval` seconds that holds `timestamp`: the multiple of
/// `interval` at or before it (also for instants before 1970).
pub fn bucket_start(timestamp: i64, interval: i64) -> i64 {
    timestamp.div_euclid(interval).saturating_mul(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<AggregateRequest, Vec<(&'static str, String)>> {
        let mut invalid = InvalidQuery::default();
        let get = |name: &str| query.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        AggregateRequest::parse(get, &mut invalid).ok_or_else(|| invalid.errors().to_vec())
    }

    #[test]
    fn a_month_of_hours_is_one_request_and_a_decade_of_minutes_is_not() {
        let month = parse(&[
            ("name", " Kitchen "),
            ("timestamp__gte", "1393926310"),
            ("timestamp__lt", "1396518310"),
            ("interval", "3600"),
        ])
        .unwrap();
        assert_eq!(month.name, "Kitchen");
        let decade = parse(&[
            ("name", "Kitchen"),
            ("timestamp__gte", "0"),
            ("timestamp__lt", "315360000"),
            ("interval", "60"),
        ])
        .unwrap_err();
        assert_eq!(decade[0].0, "interval");
        assert!(decade[0].1.contains("it holds 5256000"), "{decade:?}");
    }

    #[test]
    fn every_missing_or_bad_parameter_is_named() {
        let errors = parse(&[("timestamp__gte", "soon"), ("interval", "59")]).unwrap_err();
        let named: Vec<&str> = errors.iter().map(|(parameter, _)| *parameter).collect();
        assert_eq!(
            named,
            ["name", "timestamp__gte", "timestamp__lt", "interval"]
        );
        let backwards = parse(&[
            ("name", "a"),
            ("timestamp__gte", "100"),
            ("timestamp__lt", "100"),
            ("interval", "60"),
        ])
        .unwrap_err();
        assert_eq!(backwards[0].0, "timestamp__lt");
    }

    #[test]
    fn buckets_align_to_multiples_of_the_interval() {
        assert_eq!(bucket_start(1_393_926_310, 3600), 1_393_923_600);
        assert_eq!(bucket_start(-1, 60), -60);
        assert_eq!(bucket_start(120, 60), 120);
    }
}
