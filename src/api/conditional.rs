//! Conditional requests (RFC 9110 §13): an `ETag` on a reading and on a list page;
//! `If-None-Match` answers 304 when the client's copy is current; `If-Match` on PUT, PATCH and
//! DELETE answers 412 when the reading changed since the client read it. The `If-Match` check
//! runs in the write's own transaction, on the row locked for it, so two clients that read the
//! same version cannot both overwrite it (the lost update).

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest as _, Sha256};

use crate::db::models::StationRow;
use crate::error::ApiError;
use crate::hex;

/// The opaque part of an ETag: this many hex digits of a SHA-256.
const ETAG_HEX_DIGITS: usize = 24;

/// The entity tags a conditional header lists: `*` (any current representation) or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTags {
    /// `*`.
    Any,
    /// `"a", W/"b"`: each tag's opaque part (between the quotes) and whether it is weak.
    Listed(Vec<(String, bool)>),
}

impl EntityTags {
    /// The header `name` of `req`, parsed; `None` when absent, 400 when it is not `*` or a list
    /// of entity tags.
    pub fn of(req: &HttpRequest, name: HeaderName) -> Result<Option<Self>, ApiError> {
        let mut values = req.headers().get_all(&name).peekable();
        if values.peek().is_none() {
            return Ok(None);
        }
        let shown = if name == header::IF_MATCH {
            "If-Match"
        } else {
            "If-None-Match"
        };
        let malformed = || ApiError::MalformedPrecondition(shown);
        let mut tags = Vec::new();
        let mut any = false;
        for value in values {
            let text = value.to_str().map_err(|_| malformed())?;
            for item in text.split(',').map(str::trim) {
                if item.is_empty() {
                    continue;
                }
                if item == "*" {
                    any = true;
                    continue;
                }
                tags.push(parse_entity_tag(item).ok_or_else(malformed)?);
            }
        }
        match (any, tags.is_empty()) {
            (true, true) => Ok(Some(Self::Any)),
            (false, false) => Ok(Some(Self::Listed(tags))),
            // `*` mixed with tags, or nothing at all.
            _ => Err(malformed()),
        }
    }

    /// `If-None-Match`'s weak comparison: whether a listed tag names `etag`, weak or not.
    pub fn match_weakly(&self, etag: &str) -> bool {
        let opaque = opaque_part(etag);
        match self {
            Self::Any => true,
            Self::Listed(tags) => tags.iter().any(|(tag, _)| tag == opaque),
        }
    }

    /// `If-Match`'s strong comparison: whether a listed strong tag is `etag` (a strong tag).
    pub fn match_strongly(&self, etag: &str) -> bool {
        let opaque = opaque_part(etag);
        match self {
            Self::Any => true,
            Self::Listed(tags) => tags.iter().any(|(tag, weak)| !weak && tag == opaque),
        }
    }
}

/// `"opaque"` or `W/"opaque"`, with only the characters RFC 9110 allows between the quotes.
fn parse_entity_tag(item: &str) -> Option<(String, bool)> {
    let (weak, quoted) = match item.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, item),
    };
    let opaque = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let allowed = |byte: u8| byte == 0x21 || (0x23..=0x7e).contains(&byte) || byte >= 0x80;
    opaque
        .bytes()
        .all(allowed)
        .then(|| (opaque.to_owned(), weak))
}

fn opaque_part(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

fn hex_digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..ETAG_HEX_DIGITS / 2])
}

/// A reading's strong ETag: its stored version, the same from every instance and engine.
pub fn reading_etag(row: &StationRow) -> String {
    let digest = hex_digest(&[
        &row.id.to_be_bytes(),
        row.name.as_bytes(),
        &row.timestamp.to_be_bytes(),
        &row.temperature.to_bits().to_be_bytes(),
        &row.lat.to_bits().to_be_bytes(),
        &row.lon.to_bits().to_be_bytes(),
    ]);
    format!("\"{digest}\"")
}

/// A list page's weak ETag: of the page as rendered (its readings, count and links).
pub fn page_etag(body: &[u8]) -> String {
    format!("W/\"{}\"", hex_digest(&[body]))
}

/// 304 Not Modified, with the current `etag`.
pub fn not_modified(etag: &str) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag))
        .finish()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn parsed(value: &str) -> Result<Option<EntityTags>, ApiError> {
        let req = TestRequest::default()
            .insert_header((header::IF_MATCH, value))
            .to_http_request();
        EntityTags::of(&req, header::IF_MATCH)
    }

    #[test]
    fn lists_stars_and_weak_tags_parse() {
        assert_eq!(parsed("*").unwrap(), Some(EntityTags::Any));
        assert_eq!(
            parsed(r#""a", W/"b""#).unwrap(),
            Some(EntityTags::Listed(vec![
                ("a".to_owned(), false),
                ("b".to_owned(), true)
            ]))
        );
        for bad in [
            "a",
            r#""a"#,
            r#"W/a"#,
            r#"*, "a""#,
            ",",
            r#""a b""#,
            r#""a"x"#,
        ] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn if_match_compares_strongly_and_if_none_match_weakly() {
        let weak = parsed(r#"W/"a""#).unwrap().unwrap();
        let strong = parsed(r#""a""#).unwrap().unwrap();

        assert!(!weak.match_strongly(r#""a""#));
        assert!(strong.match_strongly(r#""a""#));
        assert!(weak.match_weakly(r#""a""#));
        assert!(strong.match_weakly(r#"W/"a""#));
        assert!(!strong.match_weakly(r#""b""#));
    }
}
