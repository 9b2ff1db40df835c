//! Query strings as an ordered list of pairs, so generated links keep what the client sent.

use std::convert::Infallible;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};

use crate::pagination::QueryParameters;

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// Decodes a raw query string (`a=1&b=2`); malformed escapes are decoded leniently.
    pub fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The last value given for `key`, as Django's `QueryDict.get` returns it.
    pub fn last(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A copy with every `key` removed, then `key=value` added in the first one's place
    /// (or at the end); with `value` `None`, just removed.
    pub fn with(&self, key: &str, value: Option<&str>) -> Self {
        let position = self.0.iter().position(|(k, _)| k == key);
        let mut pairs: Vec<(String, String)> =
            self.0.iter().filter(|(k, _)| k != key).cloned().collect();
        if let Some(value) = value {
            let at = position.unwrap_or(pairs.len()).min(pairs.len());
            pairs.insert(at, (key.to_owned(), value.to_owned()));
        }
        Self(pairs)
    }

    /// Encodes the pairs back into a query string (empty when there are none).
    pub fn encode(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.0.iter())
            .finish()
    }
}

impl QueryParameters for QueryPairs {
    fn last(&self, name: &str) -> Option<&str> {
        Self::last(self, name)
    }

    fn encoded_with(&self, name: &str, value: Option<&str>) -> String {
        self.with(name, value).encode()
    }
}

/// The request's query string, as content negotiation parsed it (parsed here only for a route
/// without negotiation).
impl FromRequest for QueryPairs {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = req.extensions_mut().remove::<Self>();
        ready(Ok(parsed.unwrap_or_else(|| Self::parse(req.query_string()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_a_key_keeps_the_others_in_order() {
        let query = QueryPairs::parse("format=json&page=2&x=a+b");
        assert_eq!(query.last("page"), Some("2"));
        assert_eq!(
            query.with("page", Some("3")).encode(),
            "format=json&page=3&x=a+b"
        );
        assert_eq!(query.with("page", None).encode(), "format=json&x=a+b");
        assert_eq!(
            QueryPairs::parse("").with("page", Some("2")).encode(),
            "page=2"
        );
    }

    #[test]
    fn the_last_repeated_value_wins() {
        let query = QueryPairs::parse("page=1&page=3");
        assert_eq!(query.last("page"), Some("3"));
        assert_eq!(query.with("page", Some("4")).encode(), "page=4");
    }
}
