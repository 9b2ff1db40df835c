//! The `next` and `previous` links: absolute URLs of the list, which keep the request's other
//! query parameters.

/// A request's query parameters, as pagination reads them and rewrites them into links. The HTTP
/// layer parses the query string once per request and lends it here.
pub trait QueryParameters {
    /// The last value given for `name`, as Django's `QueryDict.get` returns it.
    fn last(&self, name: &str) -> Option<&str>;

    /// The query string with every `name` removed, then `name=value` put in the first one's place
    /// (or at the end); with `value` `None`, just removed. Empty when no parameter is left.
    fn encoded_with(&self, name: &str, value: Option<&str>) -> String;
}

/// Where a list is served: the origin the client sees (`scheme://host`), the list's path, and the
/// request's query parameters.
#[derive(Debug)]
pub struct ListUrl<'r, Q> {
    origin: &'r str,
    path: &'r str,
    query: &'r Q,
}

impl<'r, Q: QueryParameters> ListUrl<'r, Q> {
    /// The list at `path` under `origin`, as requested with `query`.
    pub fn new(origin: &'r str, path: &'r str, query: &'r Q) -> Self {
        Self {
            origin,
            path,
            query,
        }
    }

    /// The list's URL with the request's query, but `name` set to `value` (or removed).
    pub(super) fn with(&self, name: &str, value: Option<&str>) -> String {
        let query = self.query.encoded_with(name, value);
        if query.is_empty() {
            format!("{}{}", self.origin, self.path)
        } else {
            format!("{}{}?{query}", self.origin, self.path)
        }
    }
}

/// The links from one page to the pages beside it: `None` where there is no such page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// The next page's URL.
    pub next: Option<String>,
    /// The previous page's URL.
    pub previous: Option<String>,
}
