//! Hostile clients against the `/metrics` endpoint: a flood of idle connections neither takes
//! the endpoint down nor starves suites of descriptors, and is logged once, not per
//! connection; wrong passwords cannot slow a valid scrape, and a known user is refused no
//! faster or slower than an unknown one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{wait_for, Guard};
use base64::Engine as _;

/// Starts `testmeter run` with its open-file limit set to `open_files` (soft and hard), its
/// log in `dir/agent.log`.
fn start(dir: &Path, config: &Path, open_files: u64) -> Guard {
    let log = std::fs::File::create(dir.join("agent.log")).expect("log file");
    let mut command = crate::support::testmeter_command(config);
    command
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: setrlimit is async-signal-safe and touches only the child's limits.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: open_files,
                rlim_max: open_files,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Guard::spawn("testmeter run", &mut command)
}

/// One HTTP/1.1 GET of `/metrics`: the status (0 for no answer) and the body.
fn get(port: u16, authorization: Option<&str>) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let auth = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn basic(user: &str, password: &str) -> String {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {pair}")
}

fn value(exposition: &str, series: &str) -> f64 {
    crate::support::exposition_value(exposition, series).unwrap_or(0.0)
}

/// Raises this test process's own soft open-file limit to its hard one, for the flood.
fn raise_own_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls with valid pointers to one rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

#[test]
fn a_flood_of_idle_connections_cannot_take_the_endpoint_or_the_suites_down() {
    raise_own_limit();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let config = crate::support::endpoint_config(dir.path(), port, "max_connections = 32", "2s");
    // 320 descriptors: 256 stay in reserve, so at most 32 (and at most 64) are connections.
    let _agent = start(dir.path(), &config, 320);
    let before = wait_for("the first run", Duration::from_secs(30), || {
        let (status, body) = get(port, None);
        (status == 200 && value(&body, "testmeter_suite_runs_total{") > 0.0).then_some(body)
    });
    // 600 connections that never send a byte, opened again as the agent closes them, for
    // eight seconds: four suite intervals.
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let flooding = Arc::clone(&flooding);
        std::thread::spawn(move || {
            let mut idle: Vec<TcpStream> = Vec::new();
            while flooding.load(Ordering::Relaxed) {
                idle.retain(|stream| {
                    let mut byte = [0u8; 1];
                    let _ = stream.set_nonblocking(true);
                    !matches!((&*stream).read(&mut byte), Ok(0))
                });
                while idle.len() < 600 {
                    match TcpStream::connect(("127.0.0.1", port)) {
                        Ok(stream) => idle.push(stream),
                        Err(_) => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    // Every scrape gets through at once, though the idle connections hold every slot and
    // would time out only after 10 s: the idlest is evicted to make room.
    let mut during = String::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, body) = get(port, None);
        assert_eq!(status, 200, "a scrape during the flood");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        during = body;
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(4));
    let (status, late) = get(port, None);
    assert_eq!(status, 200, "a scrape late in the flood");
    flooding.store(false, Ordering::Relaxed);
    flood.join().expect("flood thread");

    let runs = |body: &str| crate::support::suite_runs(body, "s");
    assert!(
        runs(&late) > runs(&before),
        "suites kept running through the flood: {} then {}",
        runs(&before),
        runs(&late)
    );
    assert!(
        value(
            &late,
            "testmeter_http_connection_errors_total{reason=\"evicted\"}"
        ) > 0.0
    );
    assert!(
        value(
            &during,
            "testmeter_http_connection_errors_total{reason=\"accept\"}"
        ) == 0.0,
        "the cap kept accept from running out of descriptors"
    );
    let log = std::fs::read_to_string(dir.path().join("agent.log")).expect("agent log");
    assert!(!log.contains("Too many open files"), "{log}");
    let refusals = log
        .lines()
        .filter(|l| l.contains("refused at the connection limit"))
        .count();
    assert!(
        refusals <= 1,
        "at most one rate-limited line, not one per connection"
    );
}

#[test]
fn wrong_passwords_cannot_slow_a_valid_scrape_or_tell_users_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let password = "correct horse battery staple";
    let hash = bcrypt::hash(password, 8).expect("hash");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).expect("web");
    std::fs::set_permissions(&web, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let config =
        crate::support::endpoint_config(dir.path(), port, "web_config = \"web.yml\"", "2s");
    let _agent = start(dir.path(), &config, 1024);
    let right = basic("prometheus", password);
    wait_for("a valid scrape", Duration::from_secs(30), || {
        (get(port, Some(&right)).0 == 200).then_some(())
    });

    // Refusals, one at a time: a known user with a wrong password and an unknown user.
    let refusal = |authorization: &str| {
        let mut times: Vec<Duration> = (0..7)
            .map(|_| {
                let started = Instant::now();
                assert_eq!(get(port, Some(authorization)).0, 401);
                started.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    let known = refusal(&basic("prometheus", "wrong"));
    let unknown = refusal(&basic("nobody", "wrong"));
    let ratio = known.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "a known user is refused in {known:?}, an unknown one in {unknown:?}"
    );

    // 32 clients sending wrong passwords as fast as they are answered.
    let flooding = Arc::new(AtomicBool::new(true));
    let attackers: Vec<_> = (0..32)
        .map(|i| {
            let flooding = Arc::clone(&flooding);
            std::thread::spawn(move || {
                let wrong = basic("prometheus", &format!("guess {i}"));
                while flooding.load(Ordering::Relaxed) {
                    get(port, Some(&wrong));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut scrapes: Vec<Duration> = (0..15)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(get(port, Some(&right)).0, 200);
            started.elapsed()
        })
        .collect();
    flooding.store(false, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().expect("attacker");
    }
    scrapes.sort();
    let median = scrapes[scrapes.len() / 2];
    eprintln!("refusal medians: known {known:?}, unknown {unknown:?}; valid scrape median under the flood {median:?}");
    assert!(
        median < Duration::from_millis(250),
        "a valid scrape took {median:?} (median) under the wrong-password flood"
    );
}
