//! What a client asks of a paginated list: how many rows a page holds (`page_size`), and which
//! page (`page`, or `cursor`).

use serde::de::DeserializeOwned;

use super::{Cursor, CursorCodec, InvalidCursor, PagedList, QueryParameters};
use crate::domain::listing::{InvalidQuery, NOT_A_WHOLE_NUMBER, parse_whole_number};

/// The page sizes a client may ask for.
#[derive(Debug, Clone, Copy)]
pub struct PageSizeLimits {
    /// Used when `page_size` is absent or empty.
    pub default: i64,
    /// The largest `page_size` accepted.
    pub max: i64,
}

/// A page number as `?page=` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageNumber {
    /// A 1-based page number.
    Number(i64),
    /// Whatever page is last now.
    Last,
}

/// Which page: by number (with a `count`), or by cursor (no `count`, cost independent of depth).
#[derive(Debug, Clone, PartialEq)]
pub enum PageSelector<K> {
    /// `?page=N` or `?page=last`, or no paging parameter at all.
    Number(PageNumber),
    /// `?cursor=`: where the page starts.
    Cursor(Cursor<K>),
}

/// A page request, parsed: how many rows a page holds and which page, for a list whose rows are
/// placed by keys of type `K`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest<K> {
    /// How many rows a page holds.
    pub size: i64,
    /// Which page.
    pub page: PageSelector<K>,
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

impl<K: DeserializeOwned> PageRequest<K> {
    /// Reads `page_size`, then `page` or `cursor`, from `query`, for `list`, whose own parameters
    /// were read first with their faults in `invalid`. Every bad parameter is reported at once,
    /// in that order, as a 400; a page number that is not one is DRF's 404, but only when nothing
    /// else is wrong.
    pub fn parse<L: PagedList<Key = K>>(
        query: &impl QueryParameters,
        limits: PageSizeLimits,
        cursors: &CursorCodec,
        list: &L,
        mut invalid: InvalidQuery,
    ) -> Result<Self, ListQueryError> {
        let size = page_size(query.last("page_size"), limits, &mut invalid);
        let page = match (query.last("cursor"), query.last("page")) {
            (Some(_), Some(_)) => {
                invalid.add("cursor", "Use either page or cursor, not both.");
                None
            }
            (Some(""), None) => Some(PageSelector::Cursor(Cursor::Start)),
            (Some(token), None) => {
                match cursors.decode(token, &list.order_name(), |key| list.fits(key)) {
                    Ok(cursor) => Some(PageSelector::Cursor(cursor)),
                    Err(InvalidCursor) => {
                        invalid.add("cursor", "Invalid cursor.");
                        None
                    }
                }
            }
            (None, raw) => match page_number(raw) {
                Ok(number) => Some(PageSelector::Number(number)),
                Err(InvalidPage) if invalid.is_empty() => {
                    return Err(ListQueryError::Page(InvalidPage));
                }
                Err(InvalidPage) => None,
            },
        };
        match page {
            Some(page) if invalid.is_empty() => Ok(Self { size, page }),
            _ => Err(ListQueryError::Invalid(invalid)),
        }
    }
}

/// `?page_size=`: a whole number from 1 to the limit; absent or empty is the default. A bad
/// value is noted in `invalid`, and the default stands in for it.
fn page_size(raw: Option<&str>, limits: PageSizeLimits, invalid: &mut InvalidQuery) -> i64 {
    let Some(raw) = raw.filter(|value| !value.trim().is_empty()) else {
        return limits.default;
    };
    match parse_whole_number(raw) {
        None => invalid.add("page_size", NOT_A_WHOLE_NUMBER),
        Some(size) if size < 1 => invalid.add(
            "page_size",
            "Ensure this value is greater than or equal to 1.",
        ),
        Some(size) if size > limits.max => invalid.add(
            "page_size",
            format!("Ensure this value is less than or equal to {}.", limits.max),
        ),
        Some(size) => return size,
    }
    limits.default
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PageSizeLimits = PageSizeLimits {
        default: 10,
        max: 1000,
    };

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
    fn page_sizes_are_whole_numbers_within_the_limits() {
        let size = |raw| {
            let mut invalid = InvalidQuery::default();
            let size = page_size(raw, LIMITS, &mut invalid);
            (size, invalid.errors().to_vec())
        };
        assert_eq!(size(None), (10, vec![]));
        assert_eq!(size(Some(" ")), (10, vec![]));
        assert_eq!(size(Some("25.0")), (25, vec![]));
        assert_eq!(size(Some("1000")), (1000, vec![]));
        assert_eq!(
            size(Some("x")),
            (10, vec![("page_size", NOT_A_WHOLE_NUMBER.to_owned())])
        );
        assert_eq!(
            size(Some("0")),
            (
                10,
                vec![(
                    "page_size",
                    "Ensure this value is greater than or equal to 1.".to_owned()
                )]
            )
        );
    }
}
