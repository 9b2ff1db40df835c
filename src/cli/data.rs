//! The data commands: `import`, `export`, `prune` and `backup`. Progress goes to standard error,
//! as a bar on a terminal and as a plain line every few seconds otherwise (a log keeps lines,
//! not redrawn bars); data and summaries go to standard output.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{HumanCount, ProgressBar, ProgressStyle};

use super::DatabaseArgs;
use crate::db::{Database, station_repository};
use crate::domain::listing::{FILTER_PARAMETERS, InvalidQuery, StationList};
use crate::transfer::import::{ImportReader, ImportedReading};
use crate::transfer::{EXPORT_CHUNK_ROWS, ExportFormat, WalkPosition, next_chunk};

/// `station-api import FILE`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The file: CSV with a header row naming name, timestamp, temperature, lat and lon (and
    /// optionally id), or NDJSON (one JSON object a line), as `export` writes them.
    file: PathBuf,
    /// The file's format [default: from its extension: .csv, or .ndjson/.jsonl].
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
    /// Readings written per transaction: a failure keeps the chunks before it.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    chunk_rows: u64,
    /// Readings at the start of the file to pass over: what an earlier import that stopped
    /// part-way already wrote (it says how many).
    #[arg(long, default_value_t = 0)]
    skip: u64,
}

/// `station-api export [FILTER=VALUE ...]`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The format written to standard output.
    #[arg(long, value_enum, default_value = "csv")]
    format: ExportFormat,
    /// The list's filters and ordering, as on `GET /station/`, e.g. `name=CityName
    /// timestamp__gte=1393926310 ordering=-timestamp`.
    #[arg(value_name = "FILTER=VALUE")]
    filters: Vec<String>,
}

/// `station-api prune --older-than AGE`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Delete readings taken longer ago than this: `90d`, `12h`, `2w`, `1h 30m`.
    #[arg(long, value_parser = humantime::parse_duration)]
    older_than: Duration,
    /// Readings deleted per transaction: small batches keep the service's writes flowing.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    batch_rows: i64,
}

/// `station-api backup PATH`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Where the copy goes; must not exist yet.
    path: PathBuf,
}

/// Progress on standard error.
enum Progress {
    Bar(ProgressBar),
    Lines {
        verb: &'static str,
        total: Option<u64>,
        last: Instant,
    },
}

impl Progress {
    /// A bar out of `total` (a spinner without one) on a terminal, lines otherwise.
    fn new(verb: &'static str, total: Option<u64>, unit: &str) -> Self {
        if !io::stderr().is_terminal() {
            return Self::Lines {
                verb,
                total,
                last: Instant::now(),
            };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(&format!(
                    "{verb} {{bar:40}} {{percent:>3}}% {{msg}} ({unit}: {{human_pos}}/{{human_len}}, eta {{eta}})"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Self::Bar(bar)
    }

    /// `position` out of the total; `readings` so far.
    fn update(&mut self, position: u64, readings: u64) {
        match self {
            Self::Bar(bar) => {
                bar.set_position(position);
                bar.set_message(format!("{} readings", HumanCount(readings)));
            }
            Self::Lines { verb, total, last } => {
                if last.elapsed() < Duration::from_secs(5) {
                    return;
                }
                *last = Instant::now();
                eprintln!("{}", progress_line(verb, position, *total, readings));
            }
        }
    }

    fn finish(self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn progress_line(verb: &str, position: u64, total: Option<u64>, readings: u64) -> String {
    match total {
        Some(total) if total > 0 => format!(
            "{verb}: {} readings ({}%)",
            HumanCount(readings),
            position.saturating_mul(100) / total
        ),
        _ => format!("{verb}: {} readings", HumanCount(readings)),
    }
}

/// `import`: reads the file a chunk at a time, each chunk checked whole before it is written in
/// a transaction of its own; stops at the first bad reading or failed write, saying how many
/// readings are in and how to continue.
pub fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let format = match args.format {
        Some(format) => format,
        None => format_from_extension(&args.file)?,
    };
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).ok();
    let mut reader =
        ImportReader::new(BufReader::with_capacity(1 << 16, file), format).map_err(|error| {
            anyhow::anyhow!("{}: {error}; nothing was imported", args.file.display())
        })?;
    let database = args.database.open()?;
    let started = Instant::now();
    let mut progress = Progress::new("import", size, "bytes");
    let mut skipped = 0u64;
    let mut imported = 0u64;
    let mut chunk: Vec<ImportedReading> = Vec::new();
    let chunk_rows = usize::try_from(args.chunk_rows).unwrap_or(usize::MAX);
    let outcome = loop {
        let next = match reader.next_reading() {
            Ok(next) => next,
            Err(error) => break Err(format!("{}: {error}", args.file.display())),
        };
        let Some(reading) = next else {
            break write_chunk(&database, &chunk, reader.carries_ids())
                .map(|written| imported += written);
        };
        if skipped < args.skip {
            skipped += 1;
            continue;
        }
        chunk.push(reading);
        if chunk.len() == chunk_rows {
            match write_chunk(&database, &chunk, reader.carries_ids()) {
                Ok(written) => imported += written,
                Err(error) => break Err(error),
            }
            chunk.clear();
            progress.update(reader.bytes_read(), imported);
        }
    };
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => {
            println!(
                "Imported {} readings from {} in {seconds:.1} s{}{}.",
                HumanCount(imported),
                args.file.display(),
                if reader.carries_ids() {
                    ", with the file's ids"
                } else {
                    ""
                },
                if skipped > 0 {
                    format!(", after passing over the first {}", HumanCount(skipped))
                } else {
                    String::new()
                },
            );
            Ok(())
        }
        Err(error) => {
            let done = args.skip + imported;
            bail!(
                "{error}\n{} readings were imported before it{}; the rest of the file was not. \
                 Fix the file (or the cause) and continue with: station-api import --skip {done} {}",
                HumanCount(imported),
                if args.skip > 0 {
                    format!(" (after the {} passed over)", HumanCount(args.skip))
                } else {
                    String::new()
                },
                args.file.display()
            )
        }
    }
}

fn format_from_extension(path: &Path) -> anyhow::Result<ExportFormat> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(ExportFormat::Csv),
        Some("ndjson" | "jsonl") => Ok(ExportFormat::Ndjson),
        _ => bail!(
            "cannot tell the format of {} from its name: give --format csv or --format ndjson",
            path.display()
        ),
    }
}

/// Writes `chunk` in one transaction: all of it, or (with an error naming the line) none.
fn write_chunk(
    database: &Database,
    chunk: &[ImportedReading],
    with_ids: bool,
) -> Result<u64, String> {
    let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
        return Ok(0);
    };
    let lines = format!("lines {}-{}", first.line, last.line);
    let outcome = database.write_blocking(|conn| {
        if !with_ids {
            let readings: Vec<_> = chunk.iter().map(|r| r.reading.clone()).collect();
            return station_repository::insert_many(conn, &readings).map(|rows| Ok(rows.len()));
        }
        let ids: Vec<i64> = chunk.iter().filter_map(|r| r.id).collect();
        if let Some(taken) = station_repository::taken_ids(conn, &ids)?.first() {
            return Ok(Err(*taken));
        }
        let readings: Vec<(i64, _)> = chunk
            .iter()
            .filter_map(|r| r.id.map(|id| (id, &r.reading)))
            .collect();
        station_repository::insert_with_ids(conn, &readings).map(Ok)
    });
    match outcome {
        Ok(Ok(written)) => Ok(written as u64),
        Ok(Err(taken)) => {
            let line = chunk
                .iter()
                .find(|r| r.id == Some(taken))
                .map_or(0, |r| r.line);
            Err(format!(
                "line {line}: a reading with id {taken} is already stored (nothing of {lines} was written)"
            ))
        }
        Err(error) => Err(format!("writing {lines} failed: {error}")),
    }
}

/// `export`: every reading the filters let through, to standard output, a chunk at a time.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let mut pairs = Vec::with_capacity(args.filters.len());
    for filter in &args.filters {
        let Some((key, value)) = filter.split_once('=') else {
            bail!("{filter:?} is not FILTER=VALUE");
        };
        if !FILTER_PARAMETERS.contains(&key) {
            bail!(
                "{key:?} is not a filter; the filters are {}",
                FILTER_PARAMETERS.join(", ")
            );
        }
        pairs.push((key.to_owned(), value.to_owned()));
    }
    let mut invalid = InvalidQuery::default();
    let list = StationList::parse(
        |name| {
            pairs
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        },
        &mut invalid,
    );
    if !invalid.is_empty() {
        let errors: Vec<String> = invalid
            .errors()
            .iter()
            .map(|(parameter, message)| format!("{parameter}: {message}"))
            .collect();
        bail!("{}", errors.join("; "));
    }
    let database = args.database.open()?;
    let total = database.blocking(|conn| station_repository::count(conn, &list.filter))?;
    let mut progress = Progress::new("export", u64::try_from(total).ok(), "readings");
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut position = WalkPosition::default();
    let mut written = 0u64;
    let mut bytes = args.format.preamble().to_vec();
    let outcome = loop {
        let (rows, next) =
            database.blocking(|conn| next_chunk(conn, &list, &position, EXPORT_CHUNK_ROWS))?;
        position = next;
        args.format.write_rows(&rows, &mut bytes)?;
        if let Err(error) = out.write_all(&bytes) {
            break Err(error);
        }
        bytes.clear();
        written += rows.len() as u64;
        progress.update(written, written);
        if position.is_finished() {
            break out.flush();
        }
    };
    progress.finish();
    match outcome {
        // `export | head`: the reader has what it wanted.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(error).context("cannot write the export"),
        Ok(()) => {
            eprintln!("Exported {} readings.", HumanCount(written));
            Ok(())
        }
    }
}

/// `prune`: deletes readings older than the age given, a batch per transaction.
pub fn prune(args: &PruneArgs) -> anyhow::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let cutoff = i64::try_from(now.saturating_sub(args.older_than).as_secs()).unwrap_or(0);
    let database = args.database.open()?;
    let mut progress = Progress::new("prune", None, "readings");
    let mut deleted = 0u64;
    loop {
        let batch = database.write_blocking(|conn| {
            station_repository::delete_older_than(conn, cutoff, args.batch_rows)
        })?;
        deleted += batch as u64;
        progress.update(deleted, deleted);
        if (batch as u64) < args.batch_rows.unsigned_abs() {
            break;
        }
    }
    progress.finish();
    println!(
        "Deleted {} readings taken before {} (Unix {cutoff}).",
        HumanCount(deleted),
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(cutoff.unsigned_abs()))
    );
    Ok(())
}

/// `backup`: an online copy of an SQLite database.
pub fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    if args.path.exists() {
        bail!("{} already exists: give a new path", args.path.display());
    }
    let path = args
        .path
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", args.path.display()))?
        .to_owned();
    let database = args.database.open()?;
    let copied = database.blocking(|conn| station_repository::copy_sqlite_database(conn, &path))?;
    if !copied {
        bail!(
            "backup copies SQLite databases; back up PostgreSQL with pg_dump and MySQL/MariaDB \
             with mariadb-dump (the README's \"Data: import, export, prune, backup\" shows how)"
        );
    }
    println!("Copied the database to {}.", args.path.display());
    Ok(())
}
