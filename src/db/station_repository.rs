//! Queries on `station`. Each function is one unit of work on a connection it is lent.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::db::schema::station;
use crate::domain::listing::{
    CursorPosition, Direction, Ordering, PageNumber, SortField, SortValue, StationFilter,
};

use crate::db::models::{StationChanges, StationRow, StationValues};
use crate::db::{DbBackend, DbConnection, last_insert_id};
use crate::domain::station::{NewStation, StationPatch};

/// One page of readings and the total it was cut from.
#[derive(Debug)]
pub struct PageOfRows {
    /// Rows that pass the filter.
    pub total: i64,
    /// The 1-based number of this page.
    pub number: i64,
    /// How many pages there are (at least 1, even when empty).
    pub page_count: i64,
    /// This page's rows, in the requested order.
    pub rows: Vec<StationRow>,
}

/// One cursor page: its rows, and whether more lie beyond them in the walk's direction.
#[derive(Debug)]
pub struct CursorPage {
    /// This page's rows, in the requested order (also when walking backwards).
    pub rows: Vec<StationRow>,
    /// True when rows exist past the last one fetched (past the first, walking backwards).
    pub more_beyond: bool,
}

type StationQuery<'a> = station::BoxedQuery<'a, DbBackend>;
type Condition = Box<dyn BoxableExpression<station::table, DbBackend, SqlType = Bool>>;

diesel::define_sql_function! {
    /// SQL `lower()`: ASCII case folding on SQLite and PostgreSQL's "C" collation, as Django's
    /// `icontains` does on SQLite.
    fn lower(text: Text) -> Text;
}

/// `%term%` for LIKE, with LIKE's own characters escaped by `!` (not `\`, which MySQL string
/// literals treat specially).
fn contains_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The readings `filter` lets through, unordered.
fn filtered(filter: &StationFilter) -> StationQuery<'static> {
    use crate::db::schema::station::dsl::{lat, lon, name, temperature, timestamp};

    let mut query = station::table.into_boxed();
    if let Some(exact) = &filter.name {
        query = query.filter(name.eq(exact.clone()));
    }
    for term in filter.name_contains.iter().chain(&filter.search_terms) {
        query = query.filter(lower(name).like(lower(contains_pattern(term))).escape('!'));
    }
    macro_rules! bounded {
        ($column:expr, $bounds:expr) => {
            if let Some(value) = $bounds.gte {
                query = query.filter($column.ge(value));
            }
            if let Some(value) = $bounds.gt {
                query = query.filter($column.gt(value));
            }
            if let Some(value) = $bounds.lte {
                query = query.filter($column.le(value));
            }
            if let Some(value) = $bounds.lt {
                query = query.filter($column.lt(value));
            }
        };
    }
    bounded!(timestamp, filter.timestamp);
    bounded!(temperature, filter.temperature);
    bounded!(lat, filter.lat);
    bounded!(lon, filter.lon);
    query
}

/// `query` sorted by `ordering`, or by its exact reverse.
fn ordered<'a>(
    mut query: StationQuery<'a>,
    ordering: &Ordering,
    reverse: bool,
) -> StationQuery<'a> {
    use crate::db::schema::station::dsl::{id, name, temperature, timestamp};

    for key in ordering.keys() {
        let descending = key.descending != reverse;
        query = match (key.field, descending) {
            (SortField::Id, false) => query.then_order_by(id.asc()),
            (SortField::Id, true) => query.then_order_by(id.desc()),
            (SortField::Timestamp, false) => query.then_order_by(timestamp.asc()),
            (SortField::Timestamp, true) => query.then_order_by(timestamp.desc()),
            (SortField::Temperature, false) => query.then_order_by(temperature.asc()),
            (SortField::Temperature, true) => query.then_order_by(temperature.desc()),
            (SortField::Name, false) => query.then_order_by(name.asc()),
            (SortField::Name, true) => query.then_order_by(name.desc()),
        };
    }
    query
}

/// How a key's column compares with a cursor's value.
#[derive(Clone, Copy)]
enum Comparison {
    Equal,
    Beyond,
    BeyondOrEqual,
}

/// `column <op> value` for one sort key, where "beyond" means later in the walk.
fn compare(
    field: SortField,
    value: &SortValue,
    walks_up: bool,
    op: Comparison,
) -> Option<Condition> {
    use crate::db::schema::station::dsl::{id, name, temperature, timestamp};

    macro_rules! condition {
        ($column:expr, $value:expr) => {
            match (op, walks_up) {
                (Comparison::Equal, _) => Box::new($column.eq($value)) as Condition,
                (Comparison::Beyond, true) => Box::new($column.gt($value)),
                (Comparison::Beyond, false) => Box::new($column.lt($value)),
                (Comparison::BeyondOrEqual, true) => Box::new($column.ge($value)),
                (Comparison::BeyondOrEqual, false) => Box::new($column.le($value)),
            }
        };
    }
    Some(match (field, value) {
        (SortField::Id, SortValue::Integer(v)) => condition!(id, *v),
        (SortField::Timestamp, SortValue::Integer(v)) => condition!(timestamp, *v),
        (SortField::Temperature, SortValue::Real(v)) => condition!(temperature, *v),
        #[allow(clippy::cast_precision_loss)]
        (SortField::Temperature, SortValue::Integer(v)) => condition!(temperature, *v as f64),
        (SortField::Name, SortValue::Text(v)) => condition!(name, v.clone()),
        _ => return None,
    })
}

/// Rows strictly beyond the one whose sort keys are `values`, walking `ordering` forwards or
/// (`reverse`) backwards: `(k1 > v1) OR (k1 = v1 AND k2 > v2) OR …`, led by `k1 >= v1` so an
/// index on the first key can start the scan at the cursor instead of at the table's start.
fn beyond(ordering: &Ordering, values: &[SortValue], reverse: bool) -> Option<Condition> {
    let keys = ordering.keys();
    let mut any: Option<Condition> = None;
    for (position, (key, value)) in keys.iter().zip(values).enumerate() {
        let walks_up = key.descending == reverse;
        let mut branch = compare(key.field, value, walks_up, Comparison::Beyond)?;
        for (earlier, earlier_value) in keys[..position].iter().zip(values) {
            let equal = compare(earlier.field, earlier_value, true, Comparison::Equal)?;
            branch = Box::new(equal.and(branch));
        }
        any = Some(match any {
            None => branch,
            Some(previous) => Box::new(previous.or(branch)),
        });
    }
    let first = keys.first()?;
    let lead = compare(
        first.field,
        values.first()?,
        first.descending == reverse,
        Comparison::BeyondOrEqual,
    )?;
    Some(Box::new(lead.and(any?)))
}

/// The values of `row` for each key of `ordering`, for the cursor that continues after it.
pub fn sort_values(row: &StationRow, ordering: &Ordering) -> Vec<SortValue> {
    ordering
        .keys()
        .iter()
        .map(|key| match key.field {
            SortField::Id => SortValue::Integer(row.id),
            SortField::Timestamp => SortValue::Integer(row.timestamp),
            SortField::Temperature => SortValue::Real(row.temperature),
            SortField::Name => SortValue::Text(row.name.clone()),
        })
        .collect()
}

/// Counts the filtered rows and reads one numbered page of them, in one snapshot so `count` and
/// `results` agree. `None` when the page does not exist. The count costs a scan of every
/// matching row; cursor pages ([`page_by_cursor`]) have none.
pub fn page_by_number(
    conn: &mut DbConnection,
    filter: &StationFilter,
    ordering: &Ordering,
    page_size: i64,
    selector: PageNumber,
) -> QueryResult<Option<PageOfRows>> {
    conn.transaction(|conn| {
        conn.use_one_snapshot()?;
        let total: i64 = filtered(filter).count().get_result(conn)?;
        let page_count = ((total + page_size - 1) / page_size).max(1);
        let number = match selector {
            PageNumber::Number(n) if (1..=page_count).contains(&n) => n,
            PageNumber::Number(_) => return Ok(None),
            PageNumber::Last => page_count,
        };
        let rows = ordered(filtered(filter), ordering, false)
            .limit(page_size)
            .offset((number - 1) * page_size)
            .select(StationRow::as_select())
            .load(conn)?;
        Ok(Some(PageOfRows {
            total,
            number,
            page_count,
            rows,
        }))
    })
}

/// Reads the page that starts just beyond `position` (or at the start of the order when there is
/// none), from an index on the ordering's first key: its cost depends on the page size, not on
/// the table's size or on how deep the walk is.
pub fn page_by_cursor(
    conn: &mut DbConnection,
    filter: &StationFilter,
    ordering: &Ordering,
    page_size: i64,
    position: Option<&CursorPosition>,
) -> QueryResult<CursorPage> {
    let backwards = position.is_some_and(|p| p.direction == Direction::Before);
    let mut query = filtered(filter);
    if let Some(position) = position.filter(|p| !p.keys.is_empty()) {
        // The codec only hands out positions that fit the ordering.
        let condition =
            beyond(ordering, &position.keys, backwards).ok_or(diesel::result::Error::NotFound)?;
        query = query.filter(condition);
    }
    let mut rows = ordered(query, ordering, backwards)
        .limit(page_size + 1)
        .select(StationRow::as_select())
        .load(conn)?;
    let more_beyond = rows.len() as u64 > page_size.unsigned_abs();
    rows.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
    if backwards {
        rows.reverse();
    }
    Ok(CursorPage { rows, more_beyond })
}

/// The reading with this id, if any.
pub fn find(conn: &mut DbConnection, station_id: i64) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    // No `.first()`: SQLite re-prepares a statement whose `LIMIT ?` binding changes, on every run.
    on_its_backend!(conn, |conn| station
        .find(station_id)
        .select(StationRow::as_select())
        .get_result(conn)
        .optional())
}

/// Whether a reading with this id exists.
pub fn exists(conn: &mut DbConnection, station_id: i64) -> QueryResult<bool> {
    use crate::db::schema::station::dsl::{id, station};

    // Not `SELECT EXISTS(…)`: MySQL answers it with an integer the multi-backend `Bool` cannot read.
    let found = station
        .find(station_id)
        .select(id)
        .get_result::<i64>(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Stores a new reading and returns it with its id.
pub fn insert(conn: &mut DbConnection, new_station: &NewStation) -> QueryResult<StationRow> {
    use crate::db::schema::station::dsl::station;

    let statement = diesel::insert_into(station).values(StationValues::from(new_station));
    returning_row!(conn, statement, StationRow, |mysql| {
        let new_id = last_insert_id(mysql)?;
        find_on(mysql, new_id)?.ok_or(diesel::result::Error::NotFound)
    })
}

/// Replaces every field of a reading; `None` when there is no such reading.
pub fn replace(
    conn: &mut DbConnection,
    station_id: i64,
    new_station: &NewStation,
) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    let statement = diesel::update(station.find(station_id)).set(StationValues::from(new_station));
    returning_optional_row!(conn, statement, StationRow, |mysql| find_on(
        mysql, station_id
    ))
}

/// Changes the fields a patch names; `None` when there is no such reading.
pub fn patch(
    conn: &mut DbConnection,
    station_id: i64,
    changes: &StationPatch,
) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    if changes.is_empty() {
        // Diesel refuses an UPDATE with no columns; an empty PATCH is a read.
        return find(conn, station_id);
    }
    let statement = diesel::update(station.find(station_id)).set(StationChanges::from(changes));
    returning_optional_row!(conn, statement, StationRow, |mysql| find_on(
        mysql, station_id
    ))
}

/// [`find`] on a MySQL connection, for reading back a row MySQL cannot return.
fn find_on(conn: &mut MysqlConnection, station_id: i64) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    station
        .find(station_id)
        .select(StationRow::as_select())
        .get_result(conn)
        .optional()
}

/// Deletes a reading; false when there was none.
pub fn delete(conn: &mut DbConnection, station_id: i64) -> QueryResult<bool> {
    use crate::db::schema::station::dsl::station;

    let deleted = diesel::delete(station.find(station_id)).execute(conn)?;
    Ok(deleted > 0)
}
