//! The change feed: one per instance, it reads the change log (which triggers write in the same
//! transaction as every change to a reading) in id order and hands each change, once it is
//! final, to every stream subscriber of this instance.
//!
//! "Final" is the product here. Change ids come from a sequence (PostgreSQL) or AUTO_INCREMENT
//! (MySQL/MariaDB), so two transactions can take ids 7 and 8 and commit 8 first; a feed that
//! moved past 8 would never deliver 7. So the feed delivers a visible change only when every
//! smaller id is known: delivered, or visible now, or dead. When it sees a gap below a visible id
//! it notes which transactions were still writing right after that read
//! ([`change_repository::writers_in_progress`]): any transaction that took a smaller id took it
//! before the visible one committed, so it was one of them or had already ended. Once all of
//! them have ended, whatever is still missing below that id never commits, and the feed moves
//! on. SQLite has one writer, whose ids commit in order: there is never anything to wait for.
//!
//! A Galera node lists only its own transactions, and applies other nodes' commits shortly after
//! they are made. There the feed decides a gap no sooner than [`CLUSTER_WRITERS_GRACE`] after it
//! saw it, so that a transaction still running on another node then has committed, and first
//! waits until its node has applied everything the cluster has committed
//! ([`change_repository::catch_up_with_cluster`]).
//!
//! Changes made through this instance wake the feed at once ([`Database::next_commit`]); those
//! made through other instances sharing the database are found by polling every
//! [`StreamSettings::poll_every`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use tokio::sync::{Notify, watch};

use crate::config::StreamSettings;
use crate::db::models::{ChangeRow, StationRow};
use crate::db::{Database, DbError, change_repository};
use crate::domain::listing::StationFilter;

/// Changes read from the log at a time.
const CHANGES_PER_READ: i64 = 1000;
/// Changes read at a time while a gap is being waited out: enough to see it filled, without
/// reading a thousand rows it cannot hand out at every commit meanwhile.
const CHANGES_PER_READ_WHILE_WAITING: i64 = 100;
/// The shortest time between two reads of the log, unless the last read left more to read: the
/// most a change waits for others committed right after it.
const GATHER_COMMITS_FOR: Duration = Duration::from_millis(5);
/// On a Galera node, how long after seeing a gap the feed decides it at the soonest. The node can
/// list only its own transactions: one on another node that took a missing id must have
/// reached the cluster by the time the feed decides (the causal read then waits until it is
/// applied here). A write transaction of the service is usually far quicker than this; one held
/// up for longer (while the cluster stalls, its commits wait) could have its change skipped by
/// the streams of other nodes, which the fault tests would report as a lost reading. A stream on
/// Galera is this much later whenever ids go missing (a rolled-back write, ids another node's
/// counter stepped over), which there is most of the time.
const CLUSTER_WRITERS_GRACE: Duration = Duration::from_secs(1);
/// Changes removed by retention in one transaction, so pruning never holds long locks.
const CHANGES_PER_PRUNE: i64 = 10_000;

/// What happened to a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// It was stored.
    Created,
    /// Some or all of its fields were replaced.
    Updated,
    /// It was removed.
    Deleted,
}

impl ChangeKind {
    /// The event name on the stream, as the change log spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }

    fn parse(kind: &str) -> Option<Self> {
        match kind {
            "created" => Some(Self::Created),
            "updated" => Some(Self::Updated),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// One committed change, as the feed hands it to subscribers.
#[derive(Debug)]
pub struct Change {
    /// The change's id in the log: subscribers get changes in this order.
    pub id: i64,
    /// What happened.
    pub kind: ChangeKind,
    /// The reading after the change; for a delete, as it was.
    pub reading: StationRow,
    /// The event as last written for one origin (the scheme and host of the stream's URLs),
    /// shared by every subscriber that came through the same one: a thousand subscribers then
    /// cost one serialisation, not a thousand.
    pub rendered: OnceLock<(String, Bytes)>,
}

impl Change {
    /// Whether `filter` admits the reading (for a delete, as it was).
    pub fn admitted_by(&self, filter: &StationFilter) -> bool {
        let reading = &self.reading;
        filter.admits(
            &reading.name,
            reading.timestamp,
            reading.temperature,
            reading.lat,
            reading.lon,
        )
    }

    /// The change a log row records; `None` for a kind the log should not hold.
    pub fn from_row(row: ChangeRow) -> Option<Self> {
        Some(Self {
            id: row.id,
            kind: ChangeKind::parse(&row.kind)?,
            reading: StationRow {
                id: row.station_id,
                name: row.name,
                timestamp: row.timestamp,
                temperature: row.temperature,
                lat: row.lat,
                lon: row.lon,
            },
            rendered: OnceLock::new(),
        })
    }
}

/// Where the feed stands: every change up to `delivered` has been handed out (or is dead).
#[derive(Debug, Default)]
struct FeedCursor {
    /// Every id up to here was delivered, or never commits.
    delivered: i64,
    /// Every id up to here is decided: visible now, or dead.
    decided_through: i64,
    /// A gap being waited out: the transactions that were writing when it was seen.
    waiting: Option<Gap>,
    /// False until the changes in flight when the feed started are decided.
    settled: bool,
    /// The database is a Galera node (learnt when the feed starts).
    on_galera: bool,
}

/// Ids missing below `through` when they were seen, and who may still commit them.
#[derive(Debug)]
struct Gap {
    through: i64,
    writers: Vec<String>,
    /// When the writers were listed.
    listed_at: Instant,
}

impl Gap {
    /// A gap below `through` whose `writers` were listed just now.
    fn new(through: i64, writers: Vec<String>) -> Self {
        Self {
            through,
            writers,
            listed_at: Instant::now(),
        }
    }
}

impl FeedCursor {
    /// How long a gap stays undecided after its writers were listed, however soon they end: on
    /// Galera a transaction of another node may still be on its way to this one.
    fn grace(&self) -> Duration {
        if self.on_galera {
            CLUSTER_WRITERS_GRACE
        } else {
            Duration::ZERO
        }
    }
}

/// The instance's feed of committed changes, and its subscribers' bookkeeping.
#[derive(Debug)]
pub struct ChangeFeed {
    database: Database,
    settings: StreamSettings,
    /// The id every change up to which has been put in the mailboxes of the subscribers it
    /// concerns; a subscriber's starting point is taken with this held, so the two agree.
    delivered: Mutex<i64>,
    /// Every subscriber, by what it wants. Locked after `delivered` when both are.
    subscribers: Mutex<Subscribers>,
    next_subscriber: AtomicU64,
    ready: watch::Sender<bool>,
    closing: watch::Sender<bool>,
    clients: AtomicUsize,
    /// The greatest change id the feed has read, delivered or not.
    newest_seen: AtomicI64,
    /// Since when the feed has held back a change it read (waiting out a gap); `None` when it
    /// has delivered everything it read.
    behind_since: Mutex<Option<Instant>>,
}

/// Who gets which changes. A change is offered only to the subscribers that may want it: those
/// of its station (by `name=` or a token bound to it), found by the name, and those with no
/// one station; so a thousand streams of other stations cost a change nothing.
#[derive(Debug, Default)]
struct Subscribers {
    by_id: HashMap<u64, Subscription>,
    by_station: HashMap<String, Vec<u64>>,
    any_station: Vec<u64>,
}

#[derive(Debug)]
struct Subscription {
    filter: StationFilter,
    mailbox: Arc<Mailbox>,
}

impl Subscribers {
    fn station_of(filter: &StationFilter) -> Option<&String> {
        filter.name.as_ref().or(filter.station_bound.as_ref())
    }

    fn insert(&mut self, id: u64, subscription: Subscription) {
        match Self::station_of(&subscription.filter) {
            Some(station) => self.by_station.entry(station.clone()).or_default().push(id),
            None => self.any_station.push(id),
        }
        self.by_id.insert(id, subscription);
    }

    fn remove(&mut self, id: u64) {
        let Some(subscription) = self.by_id.remove(&id) else {
            return;
        };
        match Self::station_of(&subscription.filter) {
            None => self.any_station.retain(|other| *other != id),
            Some(station) => {
                if let Some(ids) = self.by_station.get_mut(station) {
                    ids.retain(|other| *other != id);
                    if ids.is_empty() {
                        self.by_station.remove(station);
                    }
                }
            }
        }
    }

    /// Puts each change in the mailbox of every subscriber whose filter admits it, waking
    /// those that had nothing waiting.
    fn deliver(&self, changes: &[Arc<Change>], capacity: usize) {
        for change in changes {
            let of_station = self
                .by_station
                .get(&change.reading.name)
                .into_iter()
                .flatten();
            for id in of_station.chain(&self.any_station) {
                if let Some(subscription) = self.by_id.get(id)
                    && change.admitted_by(&subscription.filter)
                {
                    subscription.mailbox.put(change, capacity);
                }
            }
        }
    }
}

/// The changes delivered to one subscriber that it has not taken yet, at most
/// `--stream-buffer` of them.
#[derive(Debug, Default)]
pub struct Mailbox {
    inbox: Mutex<Inbox>,
    arrived: Notify,
}

#[derive(Debug, Default)]
struct Inbox {
    changes: VecDeque<Arc<Change>>,
    /// More came than it holds: the subscriber is too slow, and what it missed is in the log
    /// only. Nothing more is put in until it starts again ([`ClientSlot::subscribe`]).
    overflowed: bool,
}

/// A mailbox filled up before its subscriber took from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflowed;

impl Mailbox {
    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put(&self, change: &Arc<Change>, capacity: usize) {
        let mut inbox = self.inbox();
        if inbox.overflowed {
            return;
        }
        let was_empty = inbox.changes.is_empty();
        if inbox.changes.len() >= capacity {
            inbox.changes.clear();
            inbox.overflowed = true;
        } else {
            inbox.changes.push_back(Arc::clone(change));
        }
        drop(inbox);
        // A subscriber sleeps only after finding its inbox empty, so waking it when the first
        // change lands is enough.
        if was_empty {
            self.arrived.notify_one();
        }
    }

    /// The oldest changes waiting, at most `at_most`; empty when none are.
    pub fn take(&self, at_most: usize) -> Result<Vec<Arc<Change>>, Overflowed> {
        let mut inbox = self.inbox();
        if inbox.overflowed {
            return Err(Overflowed);
        }
        let count = at_most.min(inbox.changes.len());
        Ok(inbox.changes.drain(..count).collect())
    }

    /// Waits until a change has been put in since the last [`Mailbox::take`] found none (at
    /// once if one was).
    pub async fn arrival(&self) {
        self.arrived.notified().await;
    }
}

/// A subscriber's place among the `--max-stream-clients`, given back when dropped, and its
/// mailbox.
#[derive(Debug)]
pub struct ClientSlot {
    feed: Arc<ChangeFeed>,
    id: u64,
    mailbox: Arc<Mailbox>,
}

impl ClientSlot {
    /// The changes the feed has delivered to this subscriber.
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    /// Starts (or starts again) taking the feed's changes: empties the mailbox and returns the
    /// id every change up to which was delivered before (read those from the log); every
    /// later change the filter admits is put in the mailbox.
    pub fn subscribe(&self) -> i64 {
        let delivered = self
            .feed
            .delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut inbox = self.mailbox.inbox();
        inbox.changes.clear();
        inbox.overflowed = false;
        *delivered
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.feed.clients.fetch_sub(1, Ordering::Relaxed);
        self.feed
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(self.id);
    }
}

impl ChangeFeed {
    /// A feed over `database`'s change log; it reads nothing until [`ChangeFeed::run`].
    pub fn new(database: Database, settings: StreamSettings) -> Arc<Self> {
        Arc::new(Self {
            database,
            settings,
            delivered: Mutex::new(0),
            subscribers: Mutex::new(Subscribers::default()),
            next_subscriber: AtomicU64::new(0),
            ready: watch::Sender::new(false),
            closing: watch::Sender::new(false),
            clients: AtomicUsize::new(0),
            newest_seen: AtomicI64::new(0),
            behind_since: Mutex::new(None),
        })
    }

    /// The stream settings the feed runs with.
    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Subscribers connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// How far the feed is behind the log: the changes it has read but holds back (waiting for
    /// transactions that may still commit a smaller id), and for how long it has held one back.
    pub fn lag(&self) -> (i64, Duration) {
        let delivered = *self
            .delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = (self.newest_seen.load(Ordering::Relaxed) - delivered).max(0);
        let since = *self
            .behind_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (held, since.map_or(Duration::ZERO, |since| since.elapsed()))
    }

    /// A place for a subscriber to the changes `filter` admits, or `None` past
    /// `--max-stream-clients`. Its mailbox stays empty until [`ClientSlot::subscribe`].
    pub fn take_slot(self: &Arc<Self>, filter: StationFilter) -> Option<ClientSlot> {
        let before = self.clients.fetch_add(1, Ordering::Relaxed);
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let mailbox = Arc::new(Mailbox::default());
        // Closed until the subscriber starts, so nothing piles up before it has a start point.
        mailbox.inbox().overflowed = true;
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                id,
                Subscription {
                    filter,
                    mailbox: Arc::clone(&mailbox),
                },
            );
        let slot = ClientSlot {
            feed: Arc::clone(self),
            id,
            mailbox,
        };
        (before < self.settings.max_clients).then_some(slot)
    }

    /// Waits, at most `patience`, until the changes in flight when the feed started are decided;
    /// false if they are not by then (or the feed is closing).
    pub async fn wait_until_ready(&self, patience: Duration) -> bool {
        let mut ready = self.ready.subscribe();
        matches!(
            tokio::time::timeout(patience, ready.wait_for(|ready| *ready)).await,
            Ok(Ok(_))
        )
    }

    /// Tells the feed and every subscriber's stream to end (the service is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// A signal that turns true when the feed closes.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Reads the change log and hands out changes until [`ChangeFeed::close`].
    pub async fn run(self: Arc<Self>) {
        let mut closing = self.closing();
        let mut cursor = FeedCursor::default();
        let mut failing = false;
        loop {
            let stepped_at = tokio::time::Instant::now();
            let more = match self.step(&mut cursor).await {
                Ok(more) => {
                    if failing {
                        tracing::info!("change feed reading the log again");
                        failing = false;
                    }
                    more
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "change feed cannot read the change log; retrying");
                        failing = true;
                    }
                    false
                }
            };
            if *closing.borrow() {
                return;
            }
            if more {
                continue;
            }
            tokio::select! {
                () = self.database.next_commit() => {}
                () = tokio::time::sleep(self.settings.poll_every) => {}
                _ = closing.changed() => return,
            }
            // Under a burst of commits, read them together: every subscriber is woken once per
            // read, so a read per commit would cost a thousand subscribers a thousand wake-ups
            // per commit.
            tokio::select! {
                () = tokio::time::sleep_until(stepped_at + GATHER_COMMITS_FOR) => {}
                _ = closing.changed() => return,
            }
        }
    }

    /// One look at the log; true when there is more to read at once.
    async fn step(&self, cursor: &mut FeedCursor) -> Result<bool, DbError> {
        if !cursor.settled && cursor.waiting.is_none() {
            // Starting: everything committed so far is history, served from the log; what was
            // in flight must be decided before the first subscriber starts from here.
            let (newest, on_galera) = self
                .database
                .read(|conn| {
                    let newest = change_repository::newest_id(conn)?;
                    Ok((newest, change_repository::in_galera_cluster(conn)?))
                })
                .await?;
            cursor.on_galera = on_galera;
            let writers = self.writers_in_progress_after_that().await?;
            cursor.delivered = newest;
            cursor.decided_through = newest;
            cursor.waiting = Some(Gap::new(newest, writers));
        }
        // The writers of a gap too young to decide are not asked about.
        let grace = cursor.grace();
        let waiting_on = cursor
            .waiting
            .as_ref()
            .map(|gap| (gap.listed_at.elapsed() >= grace).then(|| gap.writers.clone()));
        let after = cursor.delivered;
        let settled = cursor.settled;
        let on_galera = cursor.on_galera;
        let (gap_decided, limit, rows) = self
            .database
            .read(move |conn| {
                // First who is still writing, then the changes: a change read after its
                // writer ended is visible, whichever way the writer ended.
                let decided = match &waiting_on {
                    Some(Some(writers)) if !writers.is_empty() => {
                        let now = change_repository::writers_in_progress(conn)?;
                        !writers.iter().any(|writer| now.contains(writer))
                    }
                    Some(Some(_)) => true,
                    Some(None) | None => false,
                };
                if decided && on_galera {
                    change_repository::catch_up_with_cluster(conn)?;
                }
                let limit = if waiting_on.is_some() && !decided {
                    CHANGES_PER_READ_WHILE_WAITING
                } else {
                    CHANGES_PER_READ
                };
                let rows = if settled || decided {
                    change_repository::after(conn, after, None, limit)?
                } else {
                    Vec::new()
                };
                Ok((decided, limit, rows))
            })
            .await?;
        if gap_decided && let Some(gap) = cursor.waiting.take() {
            tracing::debug!(
                below = gap.through,
                waited_ms = gap.listed_at.elapsed().as_millis(),
                "change feed saw the transactions end"
            );
            cursor.decided_through = cursor.decided_through.max(gap.through);
            if !cursor.settled {
                cursor.settled = true;
                self.publish(Vec::new(), cursor.delivered);
                self.ready.send_replace(true);
            }
        }
        if !cursor.settled {
            return Ok(false);
        }
        let read_everything = i64::try_from(rows.len()).unwrap_or(i64::MAX) < limit;
        let mut ready = Vec::new();
        let mut gap_below = None;
        let delivered_before = cursor.delivered;
        let mut never_committed = 0;
        for row in &rows {
            if row.id == cursor.delivered + 1 || row.id <= cursor.decided_through {
                never_committed += row.id - cursor.delivered - 1;
                cursor.delivered = row.id;
                if let Some(change) = Change::from_row(row.clone()) {
                    ready.push(Arc::new(change));
                }
            } else {
                gap_below = Some(row.id);
                break;
            }
        }
        if gap_below.is_none() && read_everything {
            // What is missing up to the decided horizon never commits.
            never_committed += (cursor.decided_through - cursor.delivered).max(0);
            cursor.delivered = cursor.delivered.max(cursor.decided_through);
        }
        if never_committed > 0 {
            // What a lost event would be traced to: ids given up on as never committing.
            tracing::debug!(
                after = delivered_before,
                through = cursor.delivered,
                never_committed,
                "change feed moved past ids no transaction committed"
            );
        }
        if !ready.is_empty() || gap_below.is_none() {
            self.publish(ready, cursor.delivered);
        }
        if let Some(last) = rows.last() {
            self.newest_seen.fetch_max(last.id, Ordering::Relaxed);
        }
        self.note_whether_behind(gap_below.is_some());
        if gap_below.is_some() && cursor.waiting.is_none() {
            // Everything visible now, not only what this read reached: a feed behind by more
            // than a read would otherwise decide one read's worth per wait, and never catch up
            // where gaps are common (Galera).
            let through = if read_everything {
                rows.last().map_or(cursor.delivered, |row| row.id)
            } else {
                self.database.read(change_repository::newest_id).await?
            };
            let writers = self.writers_in_progress_after_that().await?;
            let nothing_to_wait_for = writers.is_empty();
            tracing::debug!(
                below = through,
                writers = writers.len(),
                "change feed waits for the transactions that may still commit a missing id"
            );
            cursor.waiting = Some(Gap::new(through, writers));
            return Ok(nothing_to_wait_for && !cursor.on_galera);
        }
        Ok(gap_below.is_none() && !read_everything)
    }

    /// Records whether the feed is holding back a change it read, and since when.
    fn note_whether_behind(&self, behind: bool) {
        let mut behind_since = self
            .behind_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if behind {
            behind_since.get_or_insert_with(Instant::now);
        } else {
            *behind_since = None;
        }
    }

    /// The transactions writing now, as of a moment after everything the feed read before.
    async fn writers_in_progress_after_that(&self) -> Result<Vec<String>, DbError> {
        let staleness = change_repository::writers_list_staleness(self.database.backend());
        if !staleness.is_zero() {
            tokio::time::sleep(staleness).await;
        }
        self.database
            .read(change_repository::writers_in_progress)
            .await
    }

    /// Hands `changes` to the subscribers they concern and records that everything up to
    /// `through` is out.
    fn publish(&self, changes: Vec<Arc<Change>>, through: i64) {
        let mut delivered = self
            .delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !changes.is_empty() {
            self.subscribers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .deliver(&changes, self.settings.buffer.max(1));
        }
        *delivered = (*delivered).max(through);
    }
}

/// Removes changes older than `retention` from the log, in batches, at start and then every
/// `every`, until `closing` turns true. Another instance doing the same at once is harmless.
pub async fn prune_change_log(
    database: Database,
    retention: Duration,
    every: Duration,
    mut closing: watch::Receiver<bool>,
) {
    let retention_seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    loop {
        match prune_once(&database, retention_seconds).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "pruned the change log"),
            Err(error) => tracing::warn!(%error, "pruning the change log failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = closing.changed() => return,
        }
    }
}

async fn prune_once(database: &Database, retention_seconds: i64) -> Result<usize, DbError> {
    let mut removed = 0;
    loop {
        let batch = database
            .write(move |conn| {
                let cutoff = change_repository::database_now(conn)? - retention_seconds;
                match change_repository::prunable(conn, cutoff, CHANGES_PER_PRUNE)? {
                    Some(last) => change_repository::prune_through(conn, last),
                    None => Ok(0),
                }
            })
            .await?;
        if batch == 0 {
            return Ok(removed);
        }
        removed += batch;
    }
}
