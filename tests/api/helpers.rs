//! The harness: a fresh server and database per test, on the engine the test runs for, and
//! typed request helpers.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use station_api::accounts::{self, Role};
use station_api::auth::password::{HashCost, PasswordHasher};
use station_api::config::Settings;
use station_api::db::Database;
use station_api::domain::user::{NewPassword, Username};
use station_api::startup::Application;

pub use crate::databases::{Backend, TestDatabase, on_backend};

/// The active staff user every test can use.
pub const ADMIN: (&str, &str) = ("admin", "admin-password");
/// An active user who is not staff: authenticates, but gets 403.
pub const VIEWER: (&str, &str) = ("viewer", "viewer-password");

/// Argon2 parameters cheap enough for a debug build (the real cost is a setting).
pub const CHEAP_HASHING: HashCost = HashCost {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// A running server on its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// The server's database, for arranging data and checking what was stored.
    pub database: Database,
    /// The URL the server was given, for other processes (the CLI) to open the same database.
    pub database_url: String,
    /// A client that does not follow redirects, so tests see them.
    pub client: reqwest::Client,
    /// `http://127.0.0.1:PORT` of the metrics listener; `None` unless the settings gave one.
    pub metrics_address: Option<String>,
    /// Dropped (and the database with it) after the server's handles above.
    _database: TestDatabase,
}

/// Starts a server with the test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after `customize` has adjusted the test defaults.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let test_database = TestDatabase::fresh();
    let mut settings = Settings::new("127.0.0.1:0", test_database.url.clone());
    settings.handle_signals = false;
    settings.workers = Some(2);
    settings.auth.hash_cost = CHEAP_HASHING;
    customize(&mut settings);
    let application = Application::build(settings)
        .await
        .expect("application builds");
    let port = application.port();
    let metrics_port = application.metrics_port();
    let database = application.database().clone();
    actix_web::rt::spawn(application.run_until_stopped());
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        metrics_address: metrics_port.map(|port| format!("http://127.0.0.1:{port}")),
        database,
        database_url: test_database.url.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client"),
        _database: test_database,
    };
    app.add_user(ADMIN.0, ADMIN.1, Role::Superuser);
    app.add_user(VIEWER.0, VIEWER.1, Role::Regular);
    app
}

impl TestApp {
    /// Starts another instance of the service on this app's database, as a load balancer in
    /// front of several would; returns its address.
    pub async fn another_instance(&self) -> String {
        let mut settings = Settings::new("127.0.0.1:0", self.database_url.clone());
        settings.handle_signals = false;
        settings.workers = Some(1);
        settings.auth.hash_cost = CHEAP_HASHING;
        let application = Application::build(settings)
            .await
            .expect("second instance builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        actix_web::rt::spawn(application.run_until_stopped());
        address
    }

    /// Creates an account directly in the database.
    pub fn add_user(&self, username: &str, password: &str, role: Role) {
        let hasher = PasswordHasher::new(CHEAP_HASHING).expect("hasher");
        accounts::create(
            &self.database,
            &hasher,
            &Username::parse(username).expect("username"),
            &NewPassword::parse(password.to_owned()).expect("password"),
            role,
        )
        .expect("user created");
    }

    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with no credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request as the admin user.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path)
            .basic_auth(ADMIN.0, Some(ADMIN.1))
    }

    /// GET as the admin user.
    pub async fn get(&self, path: &str) -> Response {
        self.admin(Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    /// POST a JSON body as the admin user.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.admin(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a reading through the API and returns its JSON.
    pub async fn create_station(&self, body: &Value) -> Value {
        let response = self.post_json("/station/", body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("JSON body")
    }

    /// Creates `count` readings named `station-1`, `station-2`, …
    pub async fn seed_stations(&self, count: usize) -> Vec<Value> {
        let mut created = Vec::with_capacity(count);
        for n in 1..=count {
            created.push(self.create_station(&reading(&format!("station-{n}"))).await);
        }
        created
    }
}

/// The textbook's reading, every value a string as the textbook's curl session sends it.
pub fn textbook_reading() -> Value {
    json!({"name": "CityName", "timestamp": "1393926310", "temperature": "28",
           "lat": "30.733315", "lon": "76.779418"})
}

/// A valid reading with typed values and the given name.
pub fn reading(name: &str) -> Value {
    json!({"name": name, "timestamp": 1_700_000_000_i64, "temperature": 21.5,
           "lat": 59.91, "lon": 10.75})
}

/// The response body as JSON, asserting it is JSON.
pub async fn json_body(response: Response) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "expected JSON, got {content_type:?}"
    );
    response.json().await.expect("JSON body")
}

/// Asserts a status and a `{"detail": ...}` body.
pub async fn assert_detail(response: Response, status: StatusCode, detail: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(json_body(response).await, json!({ "detail": detail }));
}

/// The `Accept` header the textbook's curl session sent: JSON, pretty-printed with 4 spaces.
pub const PRETTY_JSON: &str = "application/json; indent=4";

impl TestApp {
    /// A request as the viewer: authenticated, but not staff.
    pub fn viewer(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path)
            .basic_auth(VIEWER.0, Some(VIEWER.1))
    }

    /// Sends a JSON body with `method` as the admin user.
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Response {
        send(self.admin(method, path).json(body)).await
    }

    /// Sends `body` as it is, labelled `content_type`, with `method` as the admin user.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        send(
            self.admin(method, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// GETs `path` as the admin user, asserting a 200, and returns the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        json_body(response).await
    }

    /// Follows a link the server gave (an absolute `next` or `previous` URL) as the admin user,
    /// asserting a 200; returns the JSON body.
    pub async fn follow(&self, url: &str) -> Value {
        let response = send(self.client.get(url).basic_auth(ADMIN.0, Some(ADMIN.1))).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        json_body(response).await
    }

    /// Every stored reading as the API lists it, page after page.
    pub async fn all_stations(&self) -> Vec<Value> {
        let mut stations = Vec::new();
        let mut next = Some(self.url("/station/"));
        while let Some(url) = next {
            let response = send(self.client.get(url).basic_auth(ADMIN.0, Some(ADMIN.1))).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page = json_body(response).await;
            stations.extend(page["results"].as_array().expect("results").iter().cloned());
            next = page["next"].as_str().map(str::to_owned);
        }
        stations
    }

    /// Writes `request` (a whole HTTP/1.1 message) on a fresh connection and reads the answer;
    /// for framings reqwest cannot produce.
    pub async fn raw_exchange(&self, request: Vec<u8>) -> RawResponse {
        let authority = self.address.trim_start_matches("http://").to_owned();
        // Blocking socket I/O on the blocking pool, so this runtime keeps driving the server.
        actix_web::rt::task::spawn_blocking(move || exchange(&authority, &request))
            .await
            .expect("exchange finished")
    }
}

/// Sends a request, asserting it got an answer.
pub async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("request sent")
}

/// A response header as text, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("header is text").to_owned())
}

/// The response body as text, exactly as sent.
pub async fn text_body(response: Response) -> String {
    response.text().await.expect("text body")
}

/// The path of the reading `station` (a created reading's JSON).
pub fn station_path(station: &Value) -> String {
    format!("/station/{}/", station["id"])
}

/// `value` pretty-printed as the server does for `Accept: application/json; indent=N`.
pub fn pretty(value: &Value, indent: usize) -> String {
    use serde::Serialize as _;

    let spaces = " ".repeat(indent);
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer).expect("serializable");
    String::from_utf8(out).expect("UTF-8")
}

/// A response read off the wire by [`TestApp::raw_exchange`].
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

fn exchange(authority: &str, request: &[u8]) -> RawResponse {
    use std::io::{Read as _, Write as _};

    let mut stream = std::net::TcpStream::connect(authority).expect("connected");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout set");
    stream.write_all(request).expect("request written");
    // Read up to the end of the body its Content-Length announces, not to the connection's end:
    // a server may keep a connection open for a while after answering early.
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(response) = complete_response(&raw) {
            return response;
        }
        let read = stream.read(&mut buffer).expect("response read");
        assert!(read > 0, "connection closed mid-response: {raw:?}");
        raw.extend_from_slice(&buffer[..read]);
    }
}

/// The response in `raw`, once its head and its Content-Length of body have arrived.
fn complete_response(raw: &[u8]) -> Option<RawResponse> {
    let text = std::str::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().expect("numeric Content-Length"))
        })
        .expect("a Content-Length");
    if body.len() < length {
        return None;
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    Some(RawResponse {
        status,
        body: body.to_owned(),
    })
}

/// The value of an `Authorization` header carrying these basic credentials.
pub fn basic_authorization((username, password): (&str, &str)) -> String {
    use base64::Engine as _;

    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// Reads whose statement returns rows (which carry the caller's account or token read) and
/// reads whose statement returns none (after which the caller is read on its own), with what
/// each answers: the reading `id`, the first page and the first cursor page, the first page of
/// readings named `name` (which the reading is), a missing reading, a page past the end, of all
/// readings and of those named `name`, a filter that matches nothing, as a numbered and as a
/// cursor page.
pub fn reads_that_find_rows_and_reads_that_find_none(
    id: &str,
    name: &str,
) -> [(String, StatusCode); 9] {
    [
        (format!("/station/{id}/"), StatusCode::OK),
        ("/station/".to_owned(), StatusCode::OK),
        ("/station/?cursor=".to_owned(), StatusCode::OK),
        (format!("/station/?name={name}"), StatusCode::OK),
        ("/station/999999/".to_owned(), StatusCode::NOT_FOUND),
        ("/station/?page=9".to_owned(), StatusCode::NOT_FOUND),
        (
            format!("/station/?name={name}&page=2"),
            StatusCode::NOT_FOUND,
        ),
        ("/station/?name=nobody".to_owned(), StatusCode::OK),
        ("/station/?name=nobody&cursor=".to_owned(), StatusCode::OK),
    ]
}
