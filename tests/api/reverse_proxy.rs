//! The deployment files as they are shipped: the nginx example (`deploy/nginx/station-api.conf`)
//! runs in front of the service on loopback with a self-signed certificate, and the systemd unit
//! (`deploy/systemd/station-api.service`) must pass `systemd-analyze verify`. Both programs are
//! Debian packages `.ci/run` installs; without them these tests fail, they do not skip.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::helpers::{ADMIN, TestApp, reading, spawn_app, spawn_app_with};
use crate::process::BINARY;

const NGINX: &str = "/usr/sbin/nginx";
const NGINX_EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx/station-api.conf");
const SYSTEMD_UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/systemd/station-api.service"
);
/// The example's `server_name`: curl is told it lives on 127.0.0.1, and the certificate names it.
const HOST: &str = "api.example.com";

/// A port nothing listens on right now (nginx cannot be given port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `text` with `from` replaced by `to`, where `from` must occur exactly once: if the example
/// changes so that a replacement no longer applies, the test says so instead of testing
/// something else.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the example should hold {from:?} exactly once; update the test with it"
    );
    text.replacen(from, to, 1)
}

/// nginx running the example in front of `upstream_port`, stopped on drop.
struct Nginx {
    child: Child,
    directory: TempDir,
    http_port: u16,
    https_port: u16,
}

impl Nginx {
    /// Starts nginx with the example, its listen ports on loopback, `upstream_port` for the
    /// service's and a fresh self-signed certificate for [`HOST`]; returns once it accepts.
    async fn start(upstream_port: u16) -> Self {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: install Debian's nginx-light (`.ci/run` does)"
        );
        let directory = tempfile::tempdir().expect("temporary directory");
        // nginx's workers run as `nobody` under root, and keep large bodies in temporary
        // directories in here; the key stays readable by its owner alone.
        set_mode(directory.path(), 0o755);
        let dir = directory.path();
        let (certificate, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        make_certificate(&certificate, &key);

        let (http_port, https_port) = (free_port(), free_port());
        let example = std::fs::read_to_string(NGINX_EXAMPLE).expect("the nginx example");
        let site = [
            ("listen 80;", format!("listen 127.0.0.1:{http_port};")),
            (
                "listen 443 ssl http2;",
                format!("listen 127.0.0.1:{https_port} ssl http2;"),
            ),
            (
                "server 127.0.0.1:8000;",
                format!("server 127.0.0.1:{upstream_port};"),
            ),
            (
                "/etc/letsencrypt/live/api.example.com/fullchain.pem",
                certificate.display().to_string(),
            ),
            (
                "/etc/letsencrypt/live/api.example.com/privkey.pem",
                key.display().to_string(),
            ),
        ]
        .iter()
        .fold(example, |site, (from, to)| replace_once(&site, from, to));
        std::fs::write(dir.join("station-api.conf"), site).unwrap();
        // Debian's /etc/nginx/nginx.conf includes the site inside `http { }`; this one does the
        // same and keeps every file nginx writes in the temporary directory.
        let main = format!(
            "events {{}}\n\
             http {{\n\
             access_log {dir}/access.log;\n\
             client_body_temp_path {dir}/body;\n\
             proxy_temp_path {dir}/proxy;\n\
             fastcgi_temp_path {dir}/fastcgi;\n\
             uwsgi_temp_path {dir}/uwsgi;\n\
             scgi_temp_path {dir}/scgi;\n\
             include {dir}/station-api.conf;\n\
             }}\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();

        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-g")
            .arg(format!(
                "daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;",
                dir = dir.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Self {
            child,
            directory,
            http_port,
            https_port,
        };
        nginx.wait_until_accepting().await;
        nginx
    }

    async fn wait_until_accepting(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(self.directory.path().join("error.log"))
                    .unwrap_or_default();
                panic!("nginx exited ({status}) before it accepted connections:\n{log}");
            }
            let ready = [self.http_port, self.https_port]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "nginx did not start listening");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `https://HOST:PORT` as clients of this nginx address it.
    fn https_origin(&self) -> String {
        format!("https://{HOST}:{}", self.https_port)
    }

    /// `http://HOST:PORT`, the plain-http listener.
    fn http_origin(&self) -> String {
        format!("http://{HOST}:{}", self.http_port)
    }

    /// Runs curl with `args` against this nginx: [`HOST`] resolves to 127.0.0.1 and the
    /// self-signed certificate is the only one trusted.
    async fn curl(&self, args: &[&str]) -> Answer {
        let certificate = self.directory.path().join("cert.pem");
        let output = tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--include", "--max-time", "30"])
            .arg("--cacert")
            .arg(&certificate)
            .arg("--resolve")
            .arg(format!("{HOST}:{}:127.0.0.1", self.https_port))
            .arg("--resolve")
            .arg(format!("{HOST}:{}:127.0.0.1", self.http_port))
            .args(args)
            .output()
            .await
            .expect("curl runs");
        assert!(
            output.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Answer::parse(&String::from_utf8_lossy(&output.stdout))
    }

    /// Runs curl with `args` as the admin user.
    async fn curl_as_admin(&self, args: &[&str]) -> Answer {
        let credentials = format!("{}:{}", ADMIN.0, ADMIN.1);
        let with_credentials: Vec<&str> = ["--user", credentials.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        self.curl(&with_credentials).await
    }

    /// POSTs a reading as the admin user, over https through nginx.
    async fn create_reading(&self, name: &str) -> Answer {
        self.curl_as_admin(&[
            "--header",
            "Content-Type: application/json",
            "--data",
            &reading(name).to_string(),
            &format!("{}/station/", self.https_origin()),
        ])
        .await
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not `Child::kill`: killed with SIGKILL, the master leaves its workers running
        // (and holding the ports); on SIGTERM it stops them and waits for them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A self-signed certificate for [`HOST`], made by the `openssl` command.
fn make_certificate(certificate: &Path, key: &Path) {
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={HOST}")])
        .args(["-addext", &format!("subjectAltName=DNS:{HOST}")])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(certificate)
        .output()
        .expect("the openssl command runs");
    assert!(
        output.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An answer as `curl --include` prints it.
struct Answer {
    status: u16,
    /// Names in lower case, as HTTP/2 sends them.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn parse(printed: &str) -> Self {
        let (head, body) = printed
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {printed:?}"));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {printed:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Self {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn port_of(app: &TestApp) -> u16 {
    app.address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the app's port")
}

#[actix_web::test]
async fn through_the_nginx_example_links_are_https_when_the_proxy_is_trusted() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.trust_proxy = true).await;
    app.seed_stations(10).await;
    let nginx = Nginx::start(port_of(&app)).await;
    let origin = nginx.https_origin();

    // Act
    let created = nginx.create_reading("Oslo").await;
    let list = nginx.curl_as_admin(&[&format!("{origin}/station/")]).await;
    let document_url = format!("{origin}/api-docs/openapi.json");
    let document = nginx.curl(&[&document_url]).await;

    // Assert
    assert_eq!(created.status, 201, "{}", created.body);
    let url = format!("{origin}/station/11/");
    assert_eq!(created.header("location"), Some(url.as_str()));
    assert_eq!(created.json()["url"], url);
    assert_eq!(list.status, 200, "{}", list.body);
    let list = list.json();
    assert_eq!(list["next"], format!("{origin}/station/?page=2"));
    assert_eq!(list["results"][0]["url"], format!("{origin}/station/1/"));
    // A generated client or Swagger UI resolves the document's server against the address it
    // fetched the document from: the public https one.
    let server = document.json()["servers"][0]["url"]
        .as_str()
        .expect("the document names a server")
        .to_owned();
    let base = url::Url::parse(&document_url)
        .and_then(|document| document.join(&server))
        .unwrap();
    assert_eq!(base.as_str(), format!("{origin}/"));
}

#[actix_web::test]
async fn through_the_nginx_example_links_stay_http_without_trust_proxy() {
    // Arrange
    let app = spawn_app().await;
    let nginx = Nginx::start(port_of(&app)).await;

    // Act
    let created = nginx.create_reading("Oslo").await;

    // Assert: the service sees nginx's plain-http request and, not trusting the proxy's
    // headers, links to that.
    assert_eq!(created.status, 201, "{}", created.body);
    let url = created.json()["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("http://{HOST}/")), "{url}");
    assert_eq!(created.header("location"), Some(url.as_str()));
}

#[actix_web::test]
async fn plain_http_to_the_nginx_example_is_redirected_to_https() {
    // Arrange
    let app = spawn_app().await;
    let nginx = Nginx::start(port_of(&app)).await;

    // Act
    let read = nginx
        .curl(&[&format!("{}/station/?page=2", nginx.http_origin())])
        .await;
    let write = nginx
        .curl(&["--data", "{}", &format!("{}/station/", nginx.http_origin())])
        .await;

    // Assert: to the https port clients use, 443; the request's path and query kept, and a
    // POST stays a POST (308).
    assert_eq!(read.status, 308);
    assert_eq!(
        read.header("location"),
        Some(format!("https://{HOST}/station/?page=2").as_str())
    );
    assert_eq!(write.status, 308);
    assert_eq!(
        write.header("location"),
        Some(format!("https://{HOST}/station/").as_str())
    );
}

#[actix_web::test]
async fn the_nginx_example_answers_its_own_errors_in_json() {
    // Arrange: nothing listens where nginx expects the service.
    let nginx = Nginx::start(free_port()).await;
    let origin = nginx.https_origin();
    let too_large = nginx.directory.path().join("too-large.json");
    std::fs::write(&too_large, vec![b' '; 4 * 1024 * 1024 + 1]).unwrap();

    // Act
    let down = nginx.curl(&[&format!("{origin}/station/")]).await;
    let large = nginx
        .curl(&[
            "--header",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{}", too_large.display()),
            &format!("{origin}/station/"),
        ])
        .await;

    // Assert
    assert_eq!(down.status, 503);
    assert_eq!(down.header("retry-after"), Some("5"));
    assert_eq!(
        down.json()["detail"],
        "Service temporarily unavailable.",
        "as the service's own 503"
    );
    assert_eq!(large.status, 413);
    assert_eq!(large.json()["detail"], "Request body is too large.");
}

/// The value of the unit's `KEY=` line (the last one, as systemd reads it).
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    // Arrange: the unit as shipped, but starting the binary these tests built (verify checks
    // that ExecStart's program exists).
    let unit = std::fs::read_to_string(SYSTEMD_UNIT).expect("the systemd unit");
    let directory = tempfile::tempdir().unwrap();
    let copy: PathBuf = directory.path().join("station-api.service");
    std::fs::write(
        &copy,
        replace_once(
            &unit,
            "ExecStart=/usr/local/bin/station-api ",
            &format!("ExecStart={BINARY} "),
        ),
    )
    .unwrap();

    // Act
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs (Debian's systemd package; `.ci/run` installs it)");

    // Assert: it exits 0 even for an unknown key or a value it ignores, so anything it
    // prints is a failure too.
    let printed = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{printed}");
    assert!(printed.trim().is_empty(), "{printed}");
}

#[test]
fn the_systemd_unit_fits_the_nginx_example() {
    // Arrange
    let unit = std::fs::read_to_string(SYSTEMD_UNIT).expect("the systemd unit");
    let example = std::fs::read_to_string(NGINX_EXAMPLE).expect("the nginx example");
    let seconds = |value: &str| -> u64 {
        value
            .trim_end_matches('s')
            .parse()
            .unwrap_or_else(|_| panic!("{value:?} is not a number of seconds"))
    };

    // Act
    let exec_start = unit_value(&unit, "ExecStart");
    let shutdown = unit
        .lines()
        .find_map(|line| line.strip_prefix("Environment=STATION_SHUTDOWN_TIMEOUT_SECS="))
        .map(seconds)
        .expect("the unit sets STATION_SHUTDOWN_TIMEOUT_SECS");
    let stop = seconds(unit_value(&unit, "TimeoutStopSec"));

    // Assert: the service listens where nginx sends requests, trusts its headers, and systemd
    // waits for the graceful stop before it kills.
    assert!(exec_start.contains("--bind 127.0.0.1:8000"), "{exec_start}");
    assert!(example.contains("server 127.0.0.1:8000;"));
    assert!(exec_start.contains("--trust-proxy"), "{exec_start}");
    assert!(
        stop > shutdown,
        "TimeoutStopSec={stop} <= shutdown {shutdown}"
    );
}
