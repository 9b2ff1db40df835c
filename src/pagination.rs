//! Cutting a list into pages, as DRF's paginators do, in one place for every list.
//!
//! A list describes itself as a [`PagedList`]: a total order over its rows, the key that places a
//! row in that order, and the queries that count and read its rows. Pagination does the rest:
//! reads `page_size` and `page` or `cursor` from the request ([`PageRequest::parse`]), reads the
//! page asked for ([`PageRequest::read`]), and links it to the pages beside it ([`Page::links`]),
//! with cursor tokens that only this service can make ([`CursorCodec`]).
//!
//! Two ways to page, as the README's "Finding readings" tells clients: by number (`?page=N` or
//! `last`, with DRF's `count`), which counts the rows and skips the pages before; and by cursor
//! (`?cursor=`, no `count`), which starts just beyond a row's key, so a page costs the same at any
//! depth.

mod cursor;
mod links;
mod page;
mod request;

pub use cursor::{Cursor, CursorCodec, InvalidCursor};
pub use links::{Links, ListUrl, QueryParameters};
pub use page::{Page, PagedList};
pub use request::{
    InvalidPage, ListQueryError, PageNumber, PageRequest, PageSelector, PageSizeLimits,
};
