//! Reading the page a request asks for, through the list's own queries.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::QueryParameters;
use super::{Cursor, CursorCodec, Links, ListUrl, PageNumber, PageRequest, PageSelector};
use crate::db::models::CountedRows;
use crate::db::{CallerColumn, Carried, DbConnection, QueryResult};

/// A list that can be cut into pages: a total order over its rows, the key that places a row in
/// it, and the queries that count and read the rows. Each paginated endpoint implements it once
/// for what it lists; its queries run on a query thread, within one request's read.
pub trait PagedList {
    /// A row as the list's queries return it.
    type Row;
    /// The values that place a row in the order: what a cursor token carries.
    type Key: Serialize + DeserializeOwned;

    /// The order's name, signed into every cursor token: a token made in one order is refused
    /// in another.
    fn order_name(&self) -> String;

    /// Whether `key` can place a row in this order (the values a row of it has, in number and
    /// type); a token is refused otherwise.
    fn fits(&self, key: &Self::Key) -> bool;

    /// Where `row` stands in the order.
    fn key_of(&self, row: &Self::Row) -> Self::Key;

    /// How many rows the list has.
    fn count(&self, conn: &mut DbConnection) -> QueryResult<i64>;

    /// At most `limit` rows, `offset` rows into the order.
    fn rows_at(
        &self,
        conn: &mut DbConnection,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<Self::Row>>;

    /// At most `limit` rows, `offset` rows into the order, with how many rows the list has and
    /// what `caller` read, all from one statement (no snapshot to open around two); `None` when
    /// the list cannot count itself in the statement that reads its rows, and leaves it to
    /// [`PagedList::count`] and [`PagedList::rows_at`].
    fn counted_rows_at(
        &self,
        _conn: &mut DbConnection,
        _offset: i64,
        _limit: i64,
        _caller: &CallerColumn,
    ) -> QueryResult<Option<CountedRows<Self::Row>>> {
        Ok(None)
    }

    /// At most `limit` rows strictly beyond the row whose key is `boundary`, walking the order
    /// forwards, or with `backwards` backwards, in the order walked; without a boundary, from the
    /// start of the order (from its end, backwards). Its cost should depend on `limit` alone,
    /// not on how deep the walk is.
    fn rows_beyond(
        &self,
        conn: &mut DbConnection,
        boundary: Option<&Self::Key>,
        backwards: bool,
        limit: i64,
    ) -> QueryResult<Vec<Self::Row>>;

    /// [`PagedList::rows_beyond`], with what `caller` read from the same statement (nothing when
    /// no row came back); `None` when the list cannot carry the caller column, and leaves the
    /// walk to [`PagedList::rows_beyond`].
    fn rows_beyond_carrying(
        &self,
        _conn: &mut DbConnection,
        _boundary: Option<&Self::Key>,
        _backwards: bool,
        _limit: i64,
        _caller: &CallerColumn,
    ) -> QueryResult<Option<Carried<Vec<Self::Row>>>> {
        Ok(None)
    }
}

/// One page of a list: its rows, how many rows the list has (numbered pages only: cursor pages
/// are never counted), and where the pages beside it are.
#[derive(Debug)]
pub struct Page<R, K> {
    /// How many rows the list has; `None` for a cursor page.
    pub count: Option<i64>,
    /// This page's rows, in the list's order (also when a cursor walks backwards).
    pub rows: Vec<R>,
    neighbours: Neighbours<K>,
}

/// A page of the list `L`.
pub type PageOf<L> = Page<<L as PagedList>::Row, <L as PagedList>::Key>;

/// Where the next and previous pages are, if there are any.
#[derive(Debug)]
enum Neighbours<K> {
    Numbered {
        next: Option<i64>,
        previous: Option<i64>,
    },
    Cursors {
        /// The order's name, which the cursors' tokens are signed with.
        order: String,
        next: Option<Cursor<K>>,
        previous: Option<Cursor<K>>,
    },
}

impl<K> Neighbours<K> {
    /// The neighbours of page `number` of a list of `total` rows cut into pages of `size`; `None`
    /// when there is no such page (page 1 always is, if only empty).
    fn numbered(number: i64, total: i64, size: i64) -> Option<Self> {
        let page_count = ((total + size - 1) / size).max(1);
        (1..=page_count)
            .contains(&number)
            .then(|| Neighbours::Numbered {
                next: (number < page_count).then_some(number + 1),
                previous: (number > 1).then_some(number - 1),
            })
    }
}

impl<K> PageRequest<K> {
    /// Reads the page asked for from `list`; `None` when a page number is past the end (DRF's
    /// `Invalid page.`). For a query thread.
    pub fn read<L: PagedList<Key = K>>(
        &self,
        conn: &mut DbConnection,
        list: &L,
    ) -> QueryResult<Option<Page<L::Row, K>>> {
        match &self.page {
            PageSelector::Number(number) => read_numbered(conn, list, *number, self.size),
            PageSelector::Cursor(cursor) => {
                read_from_cursor(conn, list, cursor, self.size).map(Some)
            }
        }
    }
}

impl<K> PageRequest<K> {
    /// [`PageRequest::read`], carrying `caller` in the statement that reads the page when the
    /// list can: a cursor page, or a numbered page of a list that counts itself in that statement
    /// too, is then one statement.
    pub fn read_carrying<L: PagedList<Key = K>>(
        &self,
        conn: &mut DbConnection,
        list: &L,
        caller: Option<&CallerColumn>,
    ) -> QueryResult<Carried<Option<PageOf<L>>>> {
        if let (PageSelector::Cursor(cursor), Some(caller)) = (&self.page, caller) {
            let (boundary, backwards) = cursor.boundary();
            if let Some(carried) =
                list.rows_beyond_carrying(conn, boundary, backwards, self.size + 1, caller)?
            {
                return Ok(Carried {
                    value: Some(cursor_page(list, cursor, self.size, carried.value)),
                    caller: carried.caller,
                });
            }
        }
        if let (PageSelector::Number(PageNumber::Number(number)), Some(caller)) =
            (&self.page, caller)
            && let Some(offset) = number
                .checked_sub(1)
                .filter(|before| *before >= 0)
                .and_then(|before| before.checked_mul(self.size))
            && let Some(counted) = list.counted_rows_at(conn, offset, self.size, caller)?
        {
            return Ok(match counted {
                // A row at the offset: the page is within the list.
                CountedRows::Found {
                    rows,
                    total,
                    caller,
                } => Carried {
                    value: Neighbours::numbered(*number, total, self.size).map(|neighbours| Page {
                        count: Some(total),
                        rows,
                        neighbours,
                    }),
                    caller: Some(caller),
                },
                // Nothing at the first page's offset: the list is empty, and its first page is
                // too. Nothing beyond: the page is past the end, as when counted.
                CountedRows::NoneAtOffset => Carried::alone((offset == 0).then(|| Page {
                    count: Some(0),
                    rows: Vec::new(),
                    neighbours: Neighbours::Numbered {
                        next: None,
                        previous: None,
                    },
                })),
            });
        }
        self.read(conn, list).map(Carried::alone)
    }
}

/// Counts the list and reads one numbered page of it, in one snapshot so `count` and the rows
/// agree. The count may scan every row (the list's `count` decides), and the page skips every row
/// before it; cursor pages do neither.
fn read_numbered<L: PagedList>(
    conn: &mut DbConnection,
    list: &L,
    number: PageNumber,
    size: i64,
) -> QueryResult<Option<Page<L::Row, L::Key>>> {
    conn.in_one_snapshot(|conn| {
        let total = list.count(conn)?;
        let number = match number {
            PageNumber::Number(n) => n,
            PageNumber::Last => ((total + size - 1) / size).max(1),
        };
        let Some(neighbours) = Neighbours::numbered(number, total, size) else {
            return Ok(None);
        };
        let rows = list.rows_at(conn, (number - 1) * size, size)?;
        Ok(Some(Page {
            count: Some(total),
            rows,
            neighbours,
        }))
    })
}

impl<K> Cursor<K> {
    /// The row a walk from this cursor starts beyond (none: from an end of the order), and
    /// whether it walks backwards.
    fn boundary(&self) -> (Option<&K>, bool) {
        match self {
            Cursor::Start => (None, false),
            Cursor::After(key) => (Some(key), false),
            Cursor::Before(key) => (Some(key), true),
            Cursor::End => (None, true),
        }
    }
}

/// Reads the page that starts just beyond `cursor`: one row more than a page, to learn whether
/// more lie beyond it.
fn read_from_cursor<L: PagedList>(
    conn: &mut DbConnection,
    list: &L,
    cursor: &Cursor<L::Key>,
    size: i64,
) -> QueryResult<Page<L::Row, L::Key>> {
    let (boundary, backwards) = cursor.boundary();
    let rows = list.rows_beyond(conn, boundary, backwards, size + 1)?;
    Ok(cursor_page(list, cursor, size, rows))
}

/// The page beyond `cursor` from `rows`, the walk's first rows in the order walked: at most a
/// page of them, and one more if more lie beyond.
fn cursor_page<L: PagedList>(
    list: &L,
    cursor: &Cursor<L::Key>,
    size: i64,
    mut rows: Vec<L::Row>,
) -> Page<L::Row, L::Key> {
    let backwards = cursor.boundary().1;
    let more_beyond = rows.len() as u64 > size.unsigned_abs();
    rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    if backwards {
        rows.reverse();
    }
    // Forwards from the start there is nothing before; forwards from a row, that row is before;
    // backwards from a row, that row is after (from the end, nothing is).
    let (has_next, has_previous) = match cursor {
        Cursor::Start => (more_beyond, false),
        Cursor::After(_) => (more_beyond, true),
        Cursor::Before(_) => (true, more_beyond),
        Cursor::End => (false, more_beyond),
    };
    let next = has_next.then(|| match rows.last() {
        Some(row) => Cursor::After(list.key_of(row)),
        // Nothing before the cursor: the walk forward starts at the beginning.
        None => Cursor::Start,
    });
    let previous = has_previous.then(|| match rows.first() {
        Some(row) => Cursor::Before(list.key_of(row)),
        // Nothing after the cursor: the page before is the last page.
        None => Cursor::End,
    });
    Page {
        count: None,
        rows,
        neighbours: Neighbours::Cursors {
            order: list.order_name(),
            next,
            previous,
        },
    }
}

impl<R, K: Serialize> Page<R, K> {
    /// The links to the next and previous pages, on the list's URL with the request's other
    /// query parameters kept: `page=N` (no `page` for page 1, as DRF), or `cursor=` with a token
    /// signed by `cursors`.
    pub fn links(
        &self,
        list_url: &ListUrl<'_, impl QueryParameters>,
        cursors: &CursorCodec,
    ) -> Links {
        let (next, previous) = match &self.neighbours {
            Neighbours::Numbered { next, previous } => {
                let link = |number: i64| {
                    let number = number.to_string();
                    list_url.with("page", (number != "1").then_some(number.as_str()))
                };
                (next.map(link), previous.map(link))
            }
            Neighbours::Cursors {
                order,
                next,
                previous,
            } => {
                let link = |cursor: &Cursor<K>| {
                    list_url.with("cursor", Some(&cursors.encode(order, cursor)))
                };
                (next.as_ref().map(link), previous.as_ref().map(link))
            }
        };
        Links { next, previous }
    }
}
