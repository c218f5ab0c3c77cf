//! The `/metrics` endpoint behind a web config: TLS with a real certificate, basic auth with a
//! bcrypt hash and a bearer token stored as its SHA-256. Right credentials get 200, wrong or
//! missing ones 401, plain HTTP gets nothing; a real Prometheus scrapes it over TLS with basic
//! auth and with the bearer token; a web config others can read is refused; and no secret
//! reaches the log.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::Digest as _;

use crate::support::{wait_for, Guard, Prometheus};

const PASSWORD: &str = "correct horse battery staple";
const TOKEN: &str = "tm_4f6d1c0a9b8e7f2d3c5b6a7e8f9d0c1b";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A self-signed certificate for 127.0.0.1, a web config using it, and a bcrypt hash.
fn web_config(dir: &Path) -> String {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl runs");
    assert!(status.status.success(), "{status:?}");
    chmod(&dir.join("key.pem"), 0o600);
    let hash = bcrypt::hash(PASSWORD, 4).expect("hash");
    let digest: String = sha2::Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: '{hash}'\nbearer_token_sha256:\n  - {digest}\n"),
    )
    .expect("web config");
    chmod(&web, 0o600);
    hash
}

fn config(dir: &Path, port: u16) -> std::path::PathBuf {
    crate::support::endpoint_config(dir, port, "web_config = \"web.yml\"", "1h")
}

/// The HTTP status curl got (0 when there was no HTTP answer at all), with `auth` as extra
/// arguments (`-u user:password`, `-H 'Authorization: Bearer ...'`).
fn curl(dir: &Path, url: &str, auth: &[&str]) -> u16 {
    let mut command = Command::new("curl");
    command
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--cacert",
        ])
        .arg(dir.join("cert.pem"));
    let output = command.args(auth).arg(url).output().expect("curl runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn tls_and_basic_auth_guard_the_endpoint_and_prometheus_scrapes_through_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = web_config(dir.path());
    let port = crate::support::free_port();
    let config = config(dir.path(), port);
    let log_path = dir.path().join("testmeter.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let _agent = Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(&config)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "debug")
            .stdout(log.try_clone().expect("clone"))
            .stderr(log),
    );
    let https = format!("https://127.0.0.1:{port}/metrics");
    let right = format!("prometheus:{PASSWORD}");
    wait_for("the endpoint over TLS", Duration::from_secs(30), || {
        (curl(dir.path(), &https, &["-u", &right]) == 200).then_some(())
    });
    assert_eq!(curl(dir.path(), &https, &["-u", "prometheus:wrong"]), 401);
    assert_eq!(
        curl(dir.path(), &https, &["-u", &format!("nobody:{PASSWORD}")]),
        401
    );
    assert_eq!(curl(dir.path(), &https, &[]), 401);
    for path in ["/healthz", "/"] {
        assert_eq!(
            curl(dir.path(), &https.replace("/metrics", path), &[]),
            401,
            "every path is behind auth: {path}"
        );
    }
    let bearer = |token: &str| format!("Authorization: Bearer {token}");
    assert_eq!(curl(dir.path(), &https, &["-H", &bearer(TOKEN)]), 200);
    assert_eq!(
        curl(
            dir.path(),
            &https,
            &["-H", &bearer(&TOKEN[..TOKEN.len() - 1])]
        ),
        401
    );
    assert_eq!(
        curl(
            dir.path(),
            &format!("http://127.0.0.1:{port}/metrics"),
            &["-u", &right]
        ),
        0
    );

    let prometheus = Prometheus::start_with_job(
        dir.path(),
        &format!(
            "  - job_name: testmeter\n    scheme: https\n    tls_config:\n      ca_file: {cert}\n    basic_auth:\n      username: prometheus\n      password: '{PASSWORD}'\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n  - job_name: testmeter-bearer\n    scheme: https\n    tls_config:\n      ca_file: {cert}\n    authorization:\n      credentials: '{TOKEN}'\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            cert = dir.path().join("cert.pem").display()
        ),
    );
    wait_for(
        "Prometheus to scrape over TLS with basic auth",
        Duration::from_secs(60),
        || {
            let up = prometheus.query("up{job=~\"testmeter|testmeter-bearer\"} == 1");
            let runs = prometheus.query("testmeter_suite_runs_total{suite=\"s\"}");
            (up.len() == 2 && runs.len() == 2).then_some(())
        },
    );

    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(!log.contains(PASSWORD), "the password is never logged");
    assert!(!log.contains(TOKEN), "the token is never logged");
    assert!(!log.contains(&hash), "the hash is never logged");
    assert!(
        !log.contains("wrong"),
        "offered credentials are never logged"
    );
}

#[test]
fn a_web_config_others_can_read_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    web_config(dir.path());
    chmod(&dir.path().join("web.yml"), 0o644);
    let config = config(dir.path(), crate::support::free_port());
    let output = crate::support::testmeter_command(&config)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("web.yml is readable by others (mode 644); run `chmod o-rwx"),
        "{stderr}"
    );
}
