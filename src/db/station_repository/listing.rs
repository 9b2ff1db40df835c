//! The list's queries (filters, orderings, keyset conditions), written once and compiled for each
//! engine's own connection type.
//!
//! Through the multi-backend connection Diesel renders and prepares a dynamically built (boxed)
//! query on every run, and reads its rows through a generic row type: in the list benchmark that
//! was a third of the request's time. On the engine's own connection the prepared statement is
//! kept, keyed by its SQL, and rows are read directly. Clients can combine filters and orderings
//! into millions of distinct statements, so only the first few shapes a process sees are kept
//! ([`may_keep_prepared`]); the rest are prepared for the one run, as before.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, ValidGrouping};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Text};

use super::KeptCount;
use crate::db::CallerColumn;
use crate::db::models::StationRow;
use crate::db::schema::station;
use crate::db::statement_deadline::within_statement_time;
use crate::domain::listing::{Bounds, Ordering, SortField, SortValue, StationFilter};

/// How many distinct list statements each connection may keep prepared.
const MOST_KEPT_SHAPES: usize = 64;

/// The list's queries on one engine's connection.
pub(super) trait ListQueries {
    /// How many readings `filter` lets through.
    fn count_matching(&mut self, filter: &StationFilter) -> QueryResult<i64>;

    /// The readings `filter` lets through, in `ordering`, `offset` rows in, at most `limit`.
    fn numbered_rows(
        &mut self,
        filter: &StationFilter,
        ordering: &Ordering,
        limit: i64,
        offset: i64,
    ) -> QueryResult<Vec<StationRow>>;

    /// At most `limit` readings `filter` lets through, in `ordering`, `offset` rows in, each with
    /// how many readings it lets through (the kept count when it lets every reading through) and
    /// the value `caller` read, from one statement.
    fn counted_rows(
        &mut self,
        filter: &StationFilter,
        ordering: &Ordering,
        limit: i64,
        offset: i64,
        caller: &CallerColumn,
    ) -> QueryResult<Vec<(StationRow, i64, Option<i64>)>>;

    /// At most `limit` readings `filter` lets through, strictly beyond the one whose sort keys
    /// are `boundary`, walking `ordering` forwards or `backwards` (from the start or the end of
    /// the order without one), in the order walked.
    fn rows_from(
        &mut self,
        filter: &StationFilter,
        ordering: &Ordering,
        boundary: Option<&[SortValue]>,
        backwards: bool,
        limit: i64,
    ) -> QueryResult<Vec<StationRow>>;

    /// [`ListQueries::rows_from`], each row with the value `caller` read, from one statement.
    fn rows_from_carrying(
        &mut self,
        filter: &StationFilter,
        ordering: &Ordering,
        boundary: Option<&[SortValue]>,
        backwards: bool,
        limit: i64,
        caller: &CallerColumn,
    ) -> QueryResult<Vec<(StationRow, Option<i64>)>>;
}

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

/// What decides a list statement's SQL text: which filters are present (not their values), the
/// ordering, the kind of query, and for a keyset condition which way it walks.
fn shape(
    kind: &str,
    filter: &StationFilter,
    ordering: &Ordering,
    keyset_backwards: Option<bool>,
) -> u64 {
    let bounds = |b: &Bounds<f64>| {
        [
            b.gte.is_some(),
            b.gt.is_some(),
            b.lte.is_some(),
            b.lt.is_some(),
        ]
    };
    let mut hasher = DefaultHasher::new();
    kind.hash(&mut hasher);
    ordering.to_string().hash(&mut hasher);
    keyset_backwards.hash(&mut hasher);
    filter.name.is_some().hash(&mut hasher);
    filter.station_bound.is_some().hash(&mut hasher);
    filter.name_contains.is_some().hash(&mut hasher);
    filter.search_terms.len().hash(&mut hasher);
    [
        filter.timestamp.gte.is_some(),
        filter.timestamp.gt.is_some(),
        filter.timestamp.lte.is_some(),
        filter.timestamp.lt.is_some(),
    ]
    .hash(&mut hasher);
    bounds(&filter.temperature).hash(&mut hasher);
    bounds(&filter.lat).hash(&mut hasher);
    bounds(&filter.lon).hash(&mut hasher);
    hasher.finish()
}

/// `shape` for a statement that also reads `caller`: the two kinds of caller render two
/// statements.
fn carrying(shape: u64, caller: &CallerColumn) -> u64 {
    let mut hasher = DefaultHasher::new();
    shape.hash(&mut hasher);
    matches!(caller, CallerColumn::Account { .. }).hash(&mut hasher);
    hasher.finish()
}

/// Whether statements of this shape may be kept prepared: the first [`MOST_KEPT_SHAPES`] shapes
/// this process sees may, so the statements kept per connection stay bounded.
fn may_keep_prepared(shape: u64) -> bool {
    static KEPT: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let mut kept = KEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if kept.contains(&shape) {
        return true;
    }
    if kept.len() < MOST_KEPT_SHAPES {
        kept.push(shape);
        return true;
    }
    false
}

/// `query`, whose prepared statement Diesel keeps only when `keep` is true.
#[derive(Debug, Clone)]
struct KeptIf<Q> {
    query: Q,
    keep: bool,
}

impl<Q> KeptIf<Q> {
    fn shaped(query: Q, shape: u64) -> Self {
        Self {
            query,
            keep: may_keep_prepared(shape),
        }
    }
}

impl<Q> QueryId for KeptIf<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for KeptIf<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for KeptIf<Q> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.keep {
            pass.unsafe_to_cache_prepared();
        }
        self.query.walk_ast(pass)
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for KeptIf<Q> {}

/// How an engine writes a page's `LIMIT` and `OFFSET`.
///
/// PostgreSQL plans a kept prepared statement once for all values only when that plan looks no
/// dearer than one made for the values at hand. A bind parameter as the limit (or the offset)
/// is planned as a tenth of the table, so the plan for all values looked dearer than the one for
/// `LIMIT 10`, and the first page was planned anew on every request: more of the database's CPU
/// than running it (bench/README.md, "Planning the list"). Written into the SQL, the limit (a
/// page size, from a bounded set) and a zero offset (left out) plan exactly; the statement is
/// planned once per connection. SQLite and MySQL plan a statement the same whatever the values,
/// so they keep both as bind parameters, and one statement for every page size.
trait PageClause: Backend {
    /// Whether the limit is written into the SQL, and a zero offset left out.
    const LITERAL_LIMIT: bool;
}

impl PageClause for diesel::sqlite::Sqlite {
    const LITERAL_LIMIT: bool = false;
}

impl PageClause for diesel::pg::Pg {
    const LITERAL_LIMIT: bool = true;
}

impl PageClause for diesel::mysql::Mysql {
    const LITERAL_LIMIT: bool = false;
}

/// `query`, at most `limit` of its rows, `offset` rows in, written as [`PageClause`] says.
#[derive(Debug, Clone)]
struct Paged<Q> {
    query: Q,
    limit: i64,
    offset: i64,
}

impl<Q> Paged<Q> {
    /// What sets the statement's SQL besides `shape`: on an engine that writes the limit into
    /// the SQL, the limit and whether there is an offset.
    fn shape<DB: PageClause>(&self, shape: u64) -> u64 {
        if !DB::LITERAL_LIMIT {
            return shape;
        }
        let mut hasher = DefaultHasher::new();
        (shape, self.limit, self.offset == 0).hash(&mut hasher);
        hasher.finish()
    }
}

impl<Q> QueryId for Paged<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Paged<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<DB>, DB: PageClause> QueryFragment<DB> for Paged<Q>
where
    i64: diesel::serialize::ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass.reborrow())?;
        if DB::LITERAL_LIMIT {
            pass.push_sql(&format!(" LIMIT {}", self.limit));
            if self.offset == 0 {
                return Ok(());
            }
        } else {
            pass.push_sql(" LIMIT ");
            pass.push_bind_param::<BigInt, _>(&self.limit)?;
        }
        pass.push_sql(" OFFSET ");
        pass.push_bind_param::<BigInt, _>(&self.offset)
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Paged<Q> {}

/// Conditions that must all hold, written `(a) AND (b) AND …` in one loop. Diesel's `.filter`
/// and `.and` nest each new condition around the previous ones, and rendering walks that
/// nesting recursively: a list request with thousands of search terms once overflowed a query
/// thread's stack.
struct AllOf<C>(Vec<C>);

impl<C> Expression for AllOf<C> {
    type SqlType = Bool;
}

impl<C: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for AllOf<C> {}

impl<C: ValidGrouping<()>> ValidGrouping<()> for AllOf<C> {
    type IsAggregate = C::IsAggregate;
}

impl<C> QueryId for AllOf<C> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for AllOf<C> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        for (position, condition) in self.0.iter().enumerate() {
            pass.push_sql(if position == 0 { "(" } else { " AND (" });
            condition.walk_ast(pass.reborrow())?;
            pass.push_sql(")");
        }
        Ok(())
    }
}

/// `(query)`: a query of one `BIGINT` value (a count) as a column of another statement. An
/// uncorrelated subquery: the engines run it once per statement, not once per row.
struct Subquery<Q>(Q);

impl<Q> Expression for Subquery<Q> {
    type SqlType = BigInt;
}

impl<Q, QS> AppearsOnTable<QS> for Subquery<Q> {}

impl<Q, QS> diesel::expression::SelectableExpression<QS> for Subquery<Q> {}

impl<Q, GroupByClause> ValidGrouping<GroupByClause> for Subquery<Q> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl<Q> QueryId for Subquery<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Subquery<Q> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        pass.push_sql("(");
        self.0.walk_ast(pass.reborrow())?;
        pass.push_sql(")");
        Ok(())
    }
}

/// How a key's column compares with a cursor's value.
#[derive(Clone, Copy)]
enum Comparison {
    Equal,
    Beyond,
    BeyondOrEqual,
}

/// The list's queries for one engine: `$engine` names the module, `$connection` the engine's
/// connection type, and `timed` whether the statements carry [`within_statement_time`] (SQLite,
/// which has no statement timeout of its own). The body is the same for every engine; only the
/// types differ.
macro_rules! list_queries {
    ($engine:ident, $connection:ty, timed: $timed:literal) => {
        mod $engine {
            use super::*;

            type Db = <$connection as diesel::Connection>::Backend;
            type StationQuery = station::BoxedQuery<'static, Db>;
            type Condition = Box<dyn BoxableExpression<station::table, Db, SqlType = Bool>>;

            /// The readings `filter` lets through, unordered: one flat conjunction of every
            /// condition, so neither the SQL nor the work of building it nests deeper as a client
            /// adds conditions.
            fn filtered(filter: &StationFilter) -> StationQuery {
                use crate::db::schema::station::dsl::{lat, lon, name, temperature, timestamp};

                let mut conditions: Vec<Condition> = Vec::new();
                let scans_patterns =
                    filter.name_contains.is_some() || !filter.search_terms.is_empty();
                if $timed && scans_patterns {
                    // First, so it runs for every row examined, whatever the others decide. Only
                    // where patterns are matched: those scans are what can run for minutes (a
                    // `LIKE '%…%'` per term per row, no index), while the other filters walk an
                    // index range, and calling the check for each row of those doubled the CPU of
                    // the filtered-page benchmark.
                    conditions.push(Box::new(within_statement_time()));
                }
                if let Some(exact) = &filter.name {
                    conditions.push(Box::new(name.eq(exact.clone())));
                }
                if let Some(bound) = &filter.station_bound {
                    conditions.push(Box::new(name.eq(bound.clone())));
                }
                for term in filter.name_contains.iter().chain(&filter.search_terms) {
                    conditions.push(Box::new(
                        lower(name).like(lower(contains_pattern(term))).escape('!'),
                    ));
                }
                macro_rules! bounded {
                    ($column:expr, $bounds:expr) => {
                        if let Some(value) = $bounds.gte {
                            conditions.push(Box::new($column.ge(value)));
                        }
                        if let Some(value) = $bounds.gt {
                            conditions.push(Box::new($column.gt(value)));
                        }
                        if let Some(value) = $bounds.lte {
                            conditions.push(Box::new($column.le(value)));
                        }
                        if let Some(value) = $bounds.lt {
                            conditions.push(Box::new($column.lt(value)));
                        }
                    };
                }
                bounded!(timestamp, filter.timestamp);
                bounded!(temperature, filter.temperature);
                bounded!(lat, filter.lat);
                bounded!(lon, filter.lon);
                let query = station::table.into_boxed();
                if conditions.is_empty() {
                    query
                } else {
                    query.filter(AllOf(conditions))
                }
            }

            /// `query` sorted by `ordering`, or by its exact reverse.
            fn ordered(
                mut query: StationQuery,
                ordering: &Ordering,
                reverse: bool,
            ) -> StationQuery {
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
                    (SortField::Temperature, SortValue::Integer(v)) => {
                        condition!(temperature, *v as f64)
                    }
                    (SortField::Name, SortValue::Text(v)) => condition!(name, v.clone()),
                    _ => return None,
                })
            }

            /// Rows strictly beyond the one whose sort keys are `values`, walking `ordering`
            /// forwards or (`reverse`) backwards: `(k1 > v1) OR (k1 = v1 AND k2 > v2) OR …`, led
            /// by `k1 >= v1` so an index on the first key can start the scan at the cursor
            /// instead of at the table's start.
            fn beyond(
                ordering: &Ordering,
                values: &[SortValue],
                reverse: bool,
            ) -> Option<Condition> {
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

            impl ListQueries for $connection {
                fn count_matching(&mut self, filter: &StationFilter) -> QueryResult<i64> {
                    let shape = shape("count", filter, &Ordering::default(), None);
                    KeptIf::shaped(filtered(filter).count(), shape).get_result(self)
                }

                fn numbered_rows(
                    &mut self,
                    filter: &StationFilter,
                    ordering: &Ordering,
                    limit: i64,
                    offset: i64,
                ) -> QueryResult<Vec<StationRow>> {
                    if !<Db as PageClause>::LITERAL_LIMIT
                        && filter.lets_everything_through()
                        && *ordering == Ordering::default()
                    {
                        // `GET /station/`, the page every client asks for: a statement typed in
                        // full, which Diesel finds in its cache without rendering any SQL.
                        return station::table
                            .order(station::id.asc())
                            .limit(limit)
                            .offset(offset)
                            .select(StationRow::as_select())
                            .load(self);
                    }
                    let query = Paged {
                        query: ordered(filtered(filter), ordering, false)
                            .select(StationRow::as_select()),
                        limit,
                        offset,
                    };
                    let shape = query.shape::<Db>(shape("page", filter, ordering, None));
                    KeptIf::shaped(query, shape).load(self)
                }

                fn counted_rows(
                    &mut self,
                    filter: &StationFilter,
                    ordering: &Ordering,
                    limit: i64,
                    offset: i64,
                    caller: &CallerColumn,
                ) -> QueryResult<Vec<(StationRow, i64, Option<i64>)>> {
                    let caller_kind = match caller {
                        CallerColumn::Account { .. } => "counted for an account",
                        CallerColumn::Token { .. } => "counted for a token",
                    };
                    if !filter.lets_everything_through() {
                        // The count of what the filter lets through is a scan of its own, as a
                        // statement or as this subquery; in the page's statement it shares the
                        // page's snapshot and round trip.
                        let query = Paged {
                            query: ordered(filtered(filter), ordering, false).select((
                                StationRow::as_select(),
                                Subquery(filtered(filter).count()),
                                caller.clone(),
                            )),
                            limit,
                            offset,
                        };
                        let shape = query.shape::<Db>(shape(caller_kind, filter, ordering, None));
                        return KeptIf::shaped(query, shape).load(self);
                    }
                    let query = Paged {
                        query: ordered(station::table.into_boxed(), ordering, false).select((
                            StationRow::as_select(),
                            KeptCount,
                            caller.clone(),
                        )),
                        limit,
                        offset,
                    };
                    if !<Db as PageClause>::LITERAL_LIMIT {
                        // Few shapes: the orderings of the whole list, times the two kinds of
                        // caller.
                        return query.load(self);
                    }
                    // Times the page sizes too, which are many: kept within the bound.
                    let everything = StationFilter::default();
                    let shape = query.shape::<Db>(shape(caller_kind, &everything, ordering, None));
                    KeptIf::shaped(query, shape).load(self)
                }

                fn rows_from(
                    &mut self,
                    filter: &StationFilter,
                    ordering: &Ordering,
                    boundary: Option<&[SortValue]>,
                    backwards: bool,
                    limit: i64,
                ) -> QueryResult<Vec<StationRow>> {
                    let (query, shape) = walk(filter, ordering, boundary, backwards)?;
                    let query = Paged {
                        query: query.select(StationRow::as_select()),
                        limit,
                        offset: 0,
                    };
                    let shape = query.shape::<Db>(shape);
                    KeptIf::shaped(query, shape).load(self)
                }

                fn rows_from_carrying(
                    &mut self,
                    filter: &StationFilter,
                    ordering: &Ordering,
                    boundary: Option<&[SortValue]>,
                    backwards: bool,
                    limit: i64,
                    caller: &CallerColumn,
                ) -> QueryResult<Vec<(StationRow, Option<i64>)>> {
                    let (query, shape) = walk(filter, ordering, boundary, backwards)?;
                    let query = Paged {
                        query: query.select((StationRow::as_select(), caller.clone())),
                        limit,
                        offset: 0,
                    };
                    let shape = query.shape::<Db>(carrying(shape, caller));
                    KeptIf::shaped(query, shape).load(self)
                }
            }

            /// The readings `filter` lets through, strictly beyond the one whose sort keys are
            /// `boundary`, in the order of the walk along `ordering` (`backwards` or not), with
            /// the shape of its statement.
            pub(super) fn walk(
                filter: &StationFilter,
                ordering: &Ordering,
                boundary: Option<&[SortValue]>,
                backwards: bool,
            ) -> QueryResult<(StationQuery, u64)> {
                let mut query = filtered(filter);
                let mut keyset = None;
                if let Some(values) = boundary {
                    // The codec only hands out cursors whose keys fit the ordering.
                    let condition = beyond(ordering, values, backwards)
                        .ok_or(diesel::result::Error::NotFound)?;
                    query = query.filter(condition);
                    keyset = Some(backwards);
                }
                let shape = shape(
                    if backwards { "walk back" } else { "walk" },
                    filter,
                    ordering,
                    keyset,
                );
                Ok((ordered(query, ordering, backwards), shape))
            }
        }
    };
}

list_queries!(on_sqlite, diesel::SqliteConnection, timed: true);
list_queries!(on_postgres, diesel::PgConnection, timed: false);
list_queries!(on_mysql, diesel::MysqlConnection, timed: false);

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::mysql::Mysql;
    use diesel::pg::Pg;
    use diesel::sqlite::Sqlite;

    use super::*;

    fn page(offset: i64) -> Paged<impl Query + QueryFragment<Pg> + QueryFragment<Sqlite>> {
        Paged {
            query: station::table.select(station::id).order(station::id),
            limit: 10,
            offset,
        }
    }

    #[test]
    fn postgresql_gets_the_limit_written_out_and_no_offset_on_the_first_page() {
        let first = debug_query::<Pg, _>(&page(0)).to_string();
        let second = debug_query::<Pg, _>(&page(10)).to_string();

        assert!(
            first.contains(r#"ORDER BY "station"."id" LIMIT 10 -- binds: []"#),
            "{first}"
        );
        assert!(
            second.contains(r#"ORDER BY "station"."id" LIMIT 10 OFFSET $1 -- binds: [10]"#),
            "{second}"
        );
    }

    #[test]
    fn sqlite_and_mysql_keep_both_as_bind_parameters() {
        let sqlite = debug_query::<Sqlite, _>(&page(0)).to_string();
        let mysql = debug_query::<Mysql, _>(&Paged {
            query: station::table.select(station::id),
            limit: 10,
            offset: 0,
        })
        .to_string();

        assert!(
            sqlite.contains("LIMIT ? OFFSET ? -- binds: [10, 0]"),
            "{sqlite}"
        );
        assert!(
            mysql.contains("LIMIT ? OFFSET ? -- binds: [10, 0]"),
            "{mysql}"
        );
    }

    #[test]
    fn only_postgresql_tells_page_sizes_apart_when_keeping_statements() {
        let (ten, twenty) = (
            page(0),
            Paged {
                limit: 20,
                ..page(0)
            },
        );

        assert_ne!(ten.shape::<Pg>(7), twenty.shape::<Pg>(7));
        assert_ne!(ten.shape::<Pg>(7), page(10).shape::<Pg>(7));
        assert_eq!(page(10).shape::<Pg>(7), page(30).shape::<Pg>(7));
        assert_eq!(ten.shape::<Sqlite>(7), twenty.shape::<Sqlite>(7));
        assert_eq!(ten.shape::<Sqlite>(7), 7);
    }
}

#[cfg(test)]
mod sqlite_plans {
    //! SQLite's plans for the list's walks: whatever the ordering and wherever a cursor points,
    //! a page is read from an index in order, never sorted, and a cursor's page starts with a
    //! seek. This is what the indexes of the SQLite migrations are for; a page that needed a sort
    //! would cost time in proportion to the table.

    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sql_types::{Integer, Text};
    use diesel::sqlite::Sqlite;
    use diesel::{Connection, RunQueryDsl, SqliteConnection};

    use super::on_sqlite::walk;
    use crate::db::DbConnection;
    use crate::domain::listing::{Bounds, Ordering, SortField, SortValue, StationFilter};

    /// `EXPLAIN QUERY PLAN` of a query, its parameters bound as the service binds them.
    struct ExplainQueryPlan<Q>(Q);

    impl<Q> QueryId for ExplainQueryPlan<Q> {
        type QueryId = ();
        const HAS_STATIC_QUERY_ID: bool = false;
    }

    impl<Q> Query for ExplainQueryPlan<Q> {
        type SqlType = (Integer, Integer, Integer, Text);
    }

    impl<Q: QueryFragment<Sqlite>> QueryFragment<Sqlite> for ExplainQueryPlan<Q> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> diesel::QueryResult<()> {
            out.push_sql("EXPLAIN QUERY PLAN ");
            self.0.walk_ast(out.reborrow())
        }
    }

    impl<Q> RunQueryDsl<SqliteConnection> for ExplainQueryPlan<Q> {}

    /// A migrated database in memory, with readings of a few stations.
    fn seeded() -> SqliteConnection {
        let mut conn = DbConnection::Sqlite(
            SqliteConnection::establish(":memory:").expect("an in-memory database"),
        );
        conn.run_migrations().expect("the migrations");
        let DbConnection::Sqlite(mut sqlite) = conn else {
            unreachable!("opened as SQLite")
        };
        diesel::sql_query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO station (name, timestamp, temperature, lat, lon) \
             SELECT 'pi-' || (i % 7), 1700000000 + i * 10, (i % 300) / 10.0, 59.9, 10.7 FROM n",
        )
        .execute(&mut sqlite)
        .expect("the readings");
        sqlite
    }

    /// The plan's lines for a page of the walk.
    fn plan(
        conn: &mut SqliteConnection,
        filter: &StationFilter,
        ordering: &Ordering,
        boundary: Option<&[SortValue]>,
        backwards: bool,
    ) -> Vec<String> {
        use diesel::QueryDsl;
        use diesel::SelectableHelper;

        let (query, _) = walk(filter, ordering, boundary, backwards).expect("a walk");
        let page = query
            .select(crate::db::models::StationRow::as_select())
            .limit(10);
        ExplainQueryPlan(page)
            .load::<(i32, i32, i32, String)>(conn)
            .expect("a plan")
            .into_iter()
            .map(|(_, _, _, detail)| detail)
            .collect()
    }

    /// A value of `field` from the middle of the seeded readings.
    fn middle_value(field: SortField) -> SortValue {
        match field {
            SortField::Id => SortValue::Integer(1000),
            SortField::Timestamp => SortValue::Integer(1_700_010_000),
            SortField::Temperature => SortValue::Real(15.0),
            SortField::Name => SortValue::Text("pi-3".to_owned()),
        }
    }

    #[test]
    fn every_walk_reads_an_index_in_order_and_a_cursor_page_starts_with_a_seek() {
        let mut conn = seeded();
        let one_station = StationFilter {
            name: Some("pi-3".to_owned()),
            ..StationFilter::default()
        };
        let one_hour = StationFilter {
            timestamp: Bounds {
                gte: Some(1_700_005_000),
                lt: Some(1_700_008_600),
                ..Bounds::default()
            },
            ..StationFilter::default()
        };
        let walks = [
            ("every reading", StationFilter::default(), "id"),
            ("every reading", StationFilter::default(), "-id"),
            ("every reading", StationFilter::default(), "timestamp"),
            ("every reading", StationFilter::default(), "temperature"),
            ("every reading", StationFilter::default(), "name"),
            ("every reading", StationFilter::default(), "-timestamp"),
            ("every reading", StationFilter::default(), "-temperature"),
            ("every reading", StationFilter::default(), "-name"),
            ("every reading", StationFilter::default(), "name,timestamp"),
            (
                "every reading",
                StationFilter::default(),
                "-name,-timestamp",
            ),
            ("name=pi-3", one_station.clone(), "id"),
            ("name=pi-3", one_station, "-id"),
            ("one hour", one_hour.clone(), "timestamp"),
            ("one hour", one_hour, "-timestamp"),
        ];
        let mut wrong = Vec::new();
        for (readings, filter, raw_ordering) in &walks {
            let ordering = Ordering::parse(raw_ordering).expect("an ordering");
            let cursor: Vec<SortValue> = ordering
                .keys()
                .iter()
                .map(|key| middle_value(key.field))
                .collect();
            for backwards in [false, true] {
                for boundary in [None, Some(cursor.as_slice())] {
                    let lines = plan(&mut conn, filter, &ordering, boundary, backwards);
                    let sorts = lines.iter().any(|line| line.contains("TEMP B-TREE"));
                    let seeks = lines.first().is_some_and(|line| line.starts_with("SEARCH"));
                    if sorts || (boundary.is_some() && !seeks) {
                        wrong.push(format!(
                            "{readings}, ordering={raw_ordering}, backwards={backwards}, \
                             cursor={}: {lines:?}",
                            boundary.is_some()
                        ));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "walks without an index in order:\n{}",
            wrong.join("\n")
        );
    }
}
