//! The `station-api` command line: `serve` (the default), database and user management, and
//! the OpenAPI document. Every flag can also be set from the environment.

mod data;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

use crate::accounts::{self, InitialAdmin, InitialPassword, Role};
use crate::auth::AuthSettings;
use crate::auth::password::{HashCost, PasswordHasher};
use crate::auth::throttle::ThrottleSettings;
use crate::auth::token::{NewKey, now_unix_seconds};
use crate::config::{
    HomeSettings, HttpSettings, IdempotencySettings, MapTiles, Settings, StreamSettings,
};
use crate::db::models::NewTokenRow;
use crate::db::{Database, DatabaseSettings, SqliteSynchronous, redact_password, token_repository};
use crate::domain::token::NewToken;
use crate::domain::user::{NewPassword, Username};
use crate::startup::Application;
use crate::telemetry::LogFormat;

/// An HTTP API for weather-station sensor readings.
#[derive(Debug, Parser)]
#[command(name = "station-api", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
    /// How log lines are written: text (one line per event) or json (one object per line).
    #[arg(
        long,
        env = "STATION_LOG_FORMAT",
        value_enum,
        default_value_t,
        global = true
    )]
    log_format: LogFormat,
}

impl Cli {
    /// How log lines are to be written.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (what runs when no command is given).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations, then exit.
    Migrate(DatabaseArgs),
    /// Create a superuser (staff, may use the API). The password is read from standard input
    /// when it is not a terminal, and prompted for twice otherwise.
    Createsuperuser(UserArgs),
    /// Create a user; with --staff the user may use the API.
    Createuser(CreateUserArgs),
    /// Set a user's password. Every running server stops accepting the old one at once.
    Changepassword(UserArgs),
    /// Delete a user.
    Deleteuser(UserArgs),
    /// List users.
    Listusers(DatabaseArgs),
    /// Issue a device token; prints its key alone on standard output (it is shown only once).
    Createtoken(CreateTokenArgs),
    /// List device tokens (never their keys).
    Listtokens(DatabaseArgs),
    /// Revoke a device token; every running server refuses it from its next request on.
    Revoketoken(RevokeTokenArgs),
    /// Import readings from a CSV or NDJSON file (as `export` writes them), checked as the API
    /// checks them, in chunked transactions; a failure says how to continue.
    Import(data::ImportArgs),
    /// Write every reading the filters let through to standard output, as CSV or NDJSON.
    Export(data::ExportArgs),
    /// Delete readings older than an age (`--older-than 90d`), in batches.
    Prune(data::PruneArgs),
    /// Copy an SQLite database to a new file while the service runs.
    Backup(data::BackupArgs),
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Clone, Args)]
struct DatabaseArgs {
    /// The database: sqlite://PATH (or a plain file path), postgres://USER@HOST/DB or
    /// mysql://USER@HOST/DB.
    // `--help` never shows the environment's value: it may hold a password.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://station.db",
        hide_env_values = true
    )]
    database_url: String,
    /// The most database connections to open for queries [default: one per two cores on SQLite
    /// (at least one), 8 on PostgreSQL and MySQL/MariaDB].
    #[arg(long, env = "STATION_DB_POOL_SIZE")]
    db_pool_size: Option<u32>,
    /// Seconds a request waits for a free connection before answering 503.
    #[arg(long, env = "STATION_DB_CHECKOUT_TIMEOUT_SECS", default_value_t = 5)]
    db_checkout_timeout_secs: u64,
    /// Milliseconds SQLite waits for another process's write lock.
    #[arg(long, env = "STATION_DB_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    db_busy_timeout_ms: u64,
    /// Milliseconds one statement may run (on SQLite, the list's pattern scans: search and
    /// name__icontains) before the request gets 503 (0: no limit).
    #[arg(
        long,
        env = "STATION_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    db_statement_timeout_ms: u64,
    /// When SQLite syncs its log: full (every acknowledged write survives a power cut) or normal
    /// (faster; a power cut or OS crash can lose the last acknowledged writes). Ignored by
    /// PostgreSQL and MySQL/MariaDB.
    #[arg(long, env = "STATION_SQLITE_SYNCHRONOUS", value_enum, default_value_t)]
    sqlite_synchronous: SqliteSynchronous,
}

impl DatabaseArgs {
    fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.clone().into(),
            pool_size: self.db_pool_size,
            checkout_timeout: Duration::from_secs(self.db_checkout_timeout_secs),
            busy_timeout: Duration::from_millis(self.db_busy_timeout_ms),
            statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
            sqlite_synchronous: self.sqlite_synchronous,
        }
    }

    fn open(&self) -> anyhow::Result<Database> {
        let database = Database::connect(&self.settings()).with_context(|| {
            format!(
                "cannot open the database at {}",
                redact_password(&self.database_url)
            )
        })?;
        database.run_migrations()?;
        Ok(database)
    }
}

#[derive(Debug, Clone, Args)]
struct HashArgs {
    /// Argon2id memory per password hash, in KiB.
    #[arg(long, env = "STATION_ARGON2_MEMORY_KIB", default_value_t = HashCost::default().memory_kib)]
    argon2_memory_kib: u32,
    /// Argon2id passes.
    #[arg(long, env = "STATION_ARGON2_ITERATIONS", default_value_t = HashCost::default().iterations)]
    argon2_iterations: u32,
    /// Argon2id lanes.
    #[arg(long, env = "STATION_ARGON2_PARALLELISM", default_value_t = HashCost::default().parallelism)]
    argon2_parallelism: u32,
}

impl HashArgs {
    fn cost(&self) -> HashCost {
        HashCost {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }

    fn hasher(&self) -> anyhow::Result<PasswordHasher> {
        PasswordHasher::new(self.cost()).context("invalid Argon2 settings")
    }
}

#[derive(Debug, Clone, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "STATION_BIND", default_value = "127.0.0.1:8000")]
    bind: String,
    /// Serve Prometheus metrics at /metrics on this address (HOST:PORT), a listener apart from
    /// the API's. It asks for no credentials: bind it to loopback or an operator's network.
    /// Unset: no metrics are kept.
    #[arg(long, env = "STATION_METRICS_BIND", value_name = "ADDR")]
    metrics_bind: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    hashing: HashArgs,
    /// Trust X-Forwarded-Proto/-Host/-For from a reverse proxy (only behind one).
    #[arg(long, env = "STATION_TRUST_PROXY")]
    trust_proxy: bool,
    /// A file holding the password of the `admin` superuser the first start creates (a secret
    /// mount: the whole file, less one trailing newline). Without it, a random password is
    /// printed once on a terminal; when standard output is not one (a container or journal
    /// log), none is created: use `createsuperuser`.
    #[arg(long, env = "STATION_ADMIN_PASSWORD_FILE", value_name = "PATH")]
    admin_password_file: Option<PathBuf>,
    /// The largest request body accepted, in bytes.
    #[arg(long, env = "STATION_MAX_BODY_BYTES", default_value_t = HttpSettings::default().max_body_bytes)]
    max_body_bytes: usize,
    /// The largest bulk upload accepted (a JSON array, CSV or NDJSON), in bytes.
    #[arg(long, env = "STATION_MAX_BULK_BODY_BYTES", default_value_t = HttpSettings::default().max_bulk_body_bytes)]
    max_bulk_body_bytes: usize,
    /// The most readings one bulk upload may hold.
    #[arg(long, env = "STATION_MAX_BULK_ITEMS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_bulk_items: u64,
    /// Hours an `Idempotency-Key`'s answer is kept and replayed.
    #[arg(long, env = "STATION_IDEMPOTENCY_TTL_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u64).range(1..=8760))]
    idempotency_ttl_hours: u64,
    /// The most `/station/stream/` connections served at once; more get 503 with Retry-After.
    #[arg(long, env = "STATION_MAX_STREAM_CLIENTS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_stream_clients: u64,
    /// Days the change log keeps changes for streams that resume with `Last-Event-ID`; older
    /// ones are removed in the background, and a stream resuming from before them is told to
    /// re-read the list (`event: reset`).
    #[arg(long, env = "STATION_CHANGE_LOG_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u64).range(1..=36_500))]
    change_log_retention_days: u64,
    /// Seconds between the comment lines an idle stream gets, so proxies keep it open.
    #[arg(long, env = "STATION_STREAM_KEEP_ALIVE_SECS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    stream_keep_alive_secs: u64,
    /// How many changes a stream client may fall behind before it is disconnected (it resumes
    /// with `Last-Event-ID` and loses nothing); a client's queue holds only the changes its
    /// filters admit, as pointers to changes all clients share.
    #[arg(long, env = "STATION_STREAM_BUFFER", default_value_t = StreamSettings::default().buffer as u64,
          value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    stream_buffer: u64,
    /// The largest page a client may ask for with `page_size=`.
    #[arg(long, env = "STATION_MAX_PAGE_SIZE", default_value_t = HttpSettings::default().max_page_size,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    max_page_size: i64,
    /// Seconds a request's body may take to arrive (counted from its head); a slower one gets
    /// 408 and its connection is closed.
    #[arg(long, env = "STATION_BODY_TIMEOUT_SECS", default_value_t = HttpSettings::default().body_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout_secs: u64,
    /// The most connections served at once, all workers together; more wait to be accepted
    /// [default: what the open-file limit allows, less a reserve for the database and logs].
    #[arg(long, env = "STATION_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// A host name requests may be addressed to (repeatable; the environment variable takes a
    /// comma-separated list). Compared without the port and case-insensitively; `.example.com`
    /// also allows its subdomains, `*` allows any. Others get 400. Unset: every host is accepted.
    #[arg(
        long = "allowed-host",
        env = "STATION_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
    /// An origin (scheme://host[:port]) whose browser apps may call the API, credentials
    /// included; repeatable. `*` admits any origin without credentials. Unset: no CORS headers.
    #[arg(
        long = "cors-origin",
        env = "STATION_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = crate::api::cors::parse_origin
    )]
    cors_origins: Vec<String>,
    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "STATION_WORKERS")]
    workers: Option<usize>,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "STATION_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    shutdown_timeout_secs: u64,
    /// Seconds a verified password is trusted before it is hashed again.
    #[arg(long, env = "STATION_AUTH_CACHE_TTL_SECS", default_value_t = 300)]
    auth_cache_ttl_secs: u64,
    /// The most verified credentials remembered at once; past it the least used are forgotten
    /// (and cost one hash when they come back).
    #[arg(long, env = "STATION_AUTH_CACHE_CAPACITY", default_value_t = 10_000)]
    auth_cache_capacity: usize,
    /// Failed logins allowed in a burst, per client address.
    #[arg(long, env = "STATION_AUTH_FAILURE_BURST", default_value_t = 10)]
    auth_failure_burst: u32,
    /// Seconds after which one more failed login is allowed.
    #[arg(long, env = "STATION_AUTH_FAILURE_REFILL_SECS", default_value_t = 6)]
    auth_failure_refill_secs: u64,
    /// The most password hashes computed at once (default: one per CPU core).
    #[arg(long, env = "STATION_MAX_CONCURRENT_HASHES")]
    max_concurrent_hashes: Option<usize>,
    /// Make the /home/ page, and the reads it makes (latest readings, aggregates, the stream),
    /// public, as the textbook's `home` view was; everything else still needs credentials.
    /// Unset: the page asks for staff credentials.
    #[arg(long, env = "STATION_PUBLIC_HOME")]
    public_home: bool,
    /// A map tile URL template the /home/ page may load tiles from, e.g.
    /// https://tile.openstreetmap.org/{z}/{x}/{y}.png. Unset: the map shows a world outline
    /// served by the binary, and the page loads nothing from elsewhere.
    #[arg(long, env = "STATION_MAP_TILE_URL", value_name = "TEMPLATE",
          value_parser = crate::api::home::parse_tile_url)]
    map_tile_url: Option<MapTiles>,
    /// The attribution shown with the tiles (HTML); the default is OpenStreetMap's.
    #[arg(long, env = "STATION_MAP_ATTRIBUTION", value_name = "HTML",
          default_value = crate::api::home::OPENSTREETMAP_ATTRIBUTION)]
    map_attribution: String,
}

impl ServeArgs {
    fn settings(&self) -> Settings {
        let mut settings = Settings::new(self.bind.clone(), self.database.database_url.clone());
        settings.database = self.database.settings();
        settings.metrics_bind = self.metrics_bind.clone();
        settings.http = HttpSettings {
            trust_proxy: self.trust_proxy,
            max_body_bytes: self.max_body_bytes,
            max_bulk_body_bytes: self.max_bulk_body_bytes,
            max_bulk_items: usize::try_from(self.max_bulk_items).unwrap_or(usize::MAX),
            max_page_size: self.max_page_size,
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            allowed_hosts: self
                .allowed_hosts
                .iter()
                .map(|host| host.trim().to_owned())
                .filter(|host| !host.is_empty())
                .collect(),
            cors_origins: self.cors_origins.clone(),
            home: HomeSettings {
                public: self.public_home,
                map_tiles: self.map_tile_url.clone().map(|tiles| MapTiles {
                    attribution: self.map_attribution.clone(),
                    ..tiles
                }),
            },
            max_connections: self
                .max_connections
                .map(|most| usize::try_from(most).unwrap_or(usize::MAX)),
            ..HttpSettings::default()
        };
        settings.auth = AuthSettings {
            cache_ttl: Duration::from_secs(self.auth_cache_ttl_secs),
            cache_capacity: self.auth_cache_capacity,
            throttle: ThrottleSettings {
                burst: self.auth_failure_burst,
                refill_every: Duration::from_secs(self.auth_failure_refill_secs),
            },
            max_concurrent_hashes: self
                .max_concurrent_hashes
                .unwrap_or(AuthSettings::default().max_concurrent_hashes),
            hash_cost: self.hashing.cost(),
        };
        settings.idempotency = IdempotencySettings {
            ttl: Duration::from_secs(self.idempotency_ttl_hours * 60 * 60),
            ..IdempotencySettings::default()
        };
        settings.stream = StreamSettings {
            max_clients: usize::try_from(self.max_stream_clients).unwrap_or(usize::MAX),
            keep_alive: Duration::from_secs(self.stream_keep_alive_secs),
            buffer: usize::try_from(self.stream_buffer).unwrap_or(usize::MAX),
            retention: Duration::from_secs(self.change_log_retention_days * 24 * 60 * 60),
            ..StreamSettings::default()
        };
        settings.workers = self.workers;
        settings.shutdown_timeout = Duration::from_secs(self.shutdown_timeout_secs);
        settings
    }
}

#[derive(Debug, Clone, Args)]
struct UserArgs {
    /// The user's username.
    #[arg(long)]
    username: String,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    hashing: HashArgs,
}

#[derive(Debug, Clone, Args)]
struct CreateUserArgs {
    #[command(flatten)]
    user: UserArgs,
    /// Let the user use the API (DRF's is_staff).
    #[arg(long)]
    staff: bool,
}

#[derive(Debug, Clone, Args)]
struct CreateTokenArgs {
    /// What the token is for (a device's name).
    #[arg(long)]
    label: String,
    /// What it may do: read, write (repeat for both).
    #[arg(long = "scope", required = true, value_parser = ["read", "write"])]
    scopes: Vec<String>,
    /// Bind it to one station name: it may read and write only that station's readings.
    #[arg(long)]
    station: Option<String>,
    /// Make it stop working after this many days.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    expires_in_days: Option<u32>,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Debug, Clone, Args)]
struct RevokeTokenArgs {
    /// The token's id (see listtokens).
    #[arg(long)]
    id: i64,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Migrate(args)) => {
            let database = Database::connect(&args.settings())?;
            let applied = database.run_migrations()?;
            println!("Applied {} migration(s).", applied.len());
            Ok(())
        }
        Some(Command::Createsuperuser(args)) => create_user(&args, Role::Superuser),
        Some(Command::Createuser(args)) => {
            let role = if args.staff {
                Role::Staff
            } else {
                Role::Regular
            };
            create_user(&args.user, role)
        }
        Some(Command::Changepassword(args)) => {
            let username = parse_username(&args.username)?;
            let database = args.database.open()?;
            let hasher = args.hashing.hasher()?;
            let password = read_new_password()?;
            accounts::change_password(&database, &hasher, &username, &password)?;
            println!("Password changed successfully for user '{username}'.");
            Ok(())
        }
        Some(Command::Deleteuser(args)) => {
            let username = parse_username(&args.username)?;
            accounts::delete(&args.database.open()?, &username)?;
            println!("User '{username}' deleted.");
            Ok(())
        }
        Some(Command::Listusers(args)) => list_users(&args.open()?),
        Some(Command::Createtoken(args)) => create_token(&args),
        Some(Command::Listtokens(args)) => list_tokens(&args.open()?),
        Some(Command::Revoketoken(args)) => {
            let revoked = args
                .database
                .open()?
                .write_blocking(|conn| token_repository::delete(conn, args.id))?;
            if !revoked {
                bail!("there is no token with id {}", args.id);
            }
            println!("Token {} revoked.", args.id);
            Ok(())
        }
        Some(Command::Import(args)) => data::import(&args),
        Some(Command::Export(args)) => data::export(&args),
        Some(Command::Prune(args)) => data::prune(&args),
        Some(Command::Backup(args)) => data::backup(&args),
        Some(Command::Openapi) => {
            let document = crate::openapi::pretty_json(&crate::api::document())?;
            match std::io::stdout().lock().write_all(document.as_bytes()) {
                // `openapi | head`: the reader has what it wanted.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                written => written.context("cannot write the document"),
            }
        }
    }
}

fn parse_username(raw: &str) -> anyhow::Result<Username> {
    Username::parse(raw).map_err(anyhow::Error::msg)
}

fn create_user(args: &UserArgs, role: Role) -> anyhow::Result<()> {
    let username = parse_username(&args.username)?;
    let database = args.database.open()?;
    let hasher = args.hashing.hasher()?;
    let password = read_new_password()?;
    accounts::create(&database, &hasher, &username, &password, role)?;
    let kind = match role {
        Role::Superuser => "Superuser",
        Role::Staff => "Staff user",
        Role::Regular => "User",
    };
    println!("{kind} '{username}' created successfully.");
    Ok(())
}

/// Issues a token by the same rules as `POST /tokens/`, and prints its key alone.
fn create_token(args: &CreateTokenArgs) -> anyhow::Result<()> {
    let now = now_unix_seconds();
    let expires = args
        .expires_in_days
        .map(|days| now.saturating_add(i64::from(days) * 86_400));
    let body = serde_json::json!({
        "label": args.label,
        "scopes": args.scopes,
        "station": args.station,
        "expires": expires,
    });
    let token = NewToken::parse(&body, now).map_err(|invalid| {
        let problems: Vec<String> = invalid
            .errors()
            .iter()
            .map(|(field, message)| format!("{field}: {message}"))
            .collect();
        anyhow::anyhow!(problems.join("; "))
    })?;
    let key = NewKey::generate();
    let hash = key.hash();
    args.database.open()?.write_blocking(|conn| {
        token_repository::insert(
            conn,
            &NewTokenRow::new(&token, hash.as_ref(), key.prefix(), now),
        )
    })?;
    println!("{}", key.expose());
    Ok(())
}

fn list_tokens(database: &Database) -> anyhow::Result<()> {
    let tokens = database.blocking(token_repository::list)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<6} {:<24} {:<10} {:<16} {:<8} {:<11} {:<11} {:<11}",
        "ID", "LABEL", "SCOPES", "STATION", "PREFIX", "CREATED", "LAST_USED", "EXPIRES"
    )?;
    let time = |seconds: Option<i64>| seconds.map_or_else(|| "-".to_owned(), |s| s.to_string());
    for token in tokens {
        writeln!(
            out,
            "{:<6} {:<24} {:<10} {:<16} {:<8} {:<11} {:<11} {:<11}",
            token.id,
            token.label,
            token.scopes,
            token.station.as_deref().unwrap_or("-"),
            token.prefix,
            token.created,
            time(token.last_used),
            time(token.expires)
        )?;
    }
    Ok(())
}

fn list_users(database: &Database) -> anyhow::Result<()> {
    let users = accounts::list(database)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<30} {:<6} {:<10} {:<7}",
        "USERNAME", "STAFF", "SUPERUSER", "ACTIVE"
    )?;
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    for user in users {
        writeln!(
            out,
            "{:<30} {:<6} {:<10} {:<7}",
            user.username,
            yes_no(user.is_staff),
            yes_no(user.is_superuser),
            yes_no(user.is_active)
        )?;
    }
    Ok(())
}

/// A new password: from standard input when it is not a terminal (one line), otherwise prompted
/// for twice without echo. Never from the command line, where other users could read it.
fn read_new_password() -> anyhow::Result<NewPassword> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        return NewPassword::parse(password).map_err(anyhow::Error::msg);
    }
    for _ in 0..3 {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Password (again): ")?;
        if first != second {
            eprintln!("Error: Your passwords didn't match.");
            continue;
        }
        match NewPassword::parse(first) {
            Ok(password) => return Ok(password),
            Err(message) => eprintln!("Error: {message}"),
        }
    }
    bail!("no valid password after three attempts")
}

/// The password in `path`: the whole file, less one trailing newline (what `echo` and most
/// secret stores leave), checked against the password rule.
fn read_password_file(path: &Path) -> anyhow::Result<NewPassword> {
    let shown = path.display();
    let contents = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the admin password file {shown}"))?;
    let password = contents
        .strip_suffix("\r\n")
        .or_else(|| contents.strip_suffix('\n'))
        .unwrap_or(&contents);
    NewPassword::parse(password.to_owned())
        .map_err(|rule| anyhow::anyhow!("the admin password file {shown}: {rule}"))
}

/// Says what the first start did about the first superuser: a generated password is printed
/// (on a terminal only), nothing else about a password ever is.
fn report_initial_admin(outcome: InitialAdmin) {
    let admin = accounts::INITIAL_ADMIN;
    match outcome {
        InitialAdmin::NotNeeded => {}
        InitialAdmin::CreatedWithGivenPassword => {
            tracing::info!(
                username = admin,
                "no users existed: created the superuser with the password from the admin password file"
            );
        }
        InitialAdmin::CreatedWithGeneratedPassword(password) => println!(
            "No users existed, so a superuser was created:\n  \
             username: {admin}\n  password: {password}\n\
             This password is shown only once. Change it with:\n  \
             station-api changepassword --username {admin}"
        ),
        InitialAdmin::Missing => tracing::warn!(
            "no users exist, and none was created: a generated password would end up in logs \
             (standard output is not a terminal). Create one with `station-api createsuperuser`, \
             or start with --admin-password-file"
        ),
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings();
    let hasher = args.hashing.hasher()?;
    let initial_password = match &args.admin_password_file {
        Some(path) => InitialPassword::Given(read_password_file(path)?),
        None if std::io::stdout().is_terminal() => InitialPassword::Generated,
        None => InitialPassword::Withheld,
    };
    actix_web::rt::System::new().block_on(async move {
        let application = Application::build(settings).await?;
        report_initial_admin(accounts::ensure_initial_admin(
            application.database(),
            &hasher,
            initial_password,
        )?);
        tracing::info!(
            address = %args.bind,
            port = application.port(),
            docs = "/swagger-ui/",
            "station-api listening"
        );
        application.run_until_stopped().await?;
        Ok(())
    })
}
