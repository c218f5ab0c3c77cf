//! Signals to a running `testmeter run`, with real suites: SIGTERM lets a running suite
//! finish and exits 0; a suite still running after the grace period is killed with its whole
//! process group; SIGHUP applies added, changed and removed suites, and an invalid new config
//! is rejected while the old schedule keeps running. SIGTERM to `once` and `gate` kills the
//! running suite's process group and exits 143.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{repo_root, scrape, suite_runs as runs, wait_for, Guard};

/// A suite that sleeps, then copies a real JUnit fixture into place as its report.
fn suite(dir: &Path, name: &str, sleep: &str, interval: &str) -> String {
    let fixture = repo_root().join("tests/fixtures/pytest/xunit2.xml");
    let work = dir.join(name);
    std::fs::create_dir_all(&work).expect("work dir");
    let script = format!(
        "echo $$ > pid; sleep {sleep}; cp {fixture:?} report.xml",
        fixture = fixture.display().to_string()
    );
    format!(
        "[[suite]]\nname = {name:?}\nsystem = \"none\"\ncommand = [\"sh\", \"-c\", {script:?}]\nworking_dir = {work:?}\nreport = \"report.xml\"\ninterval = {interval:?}\njitter = \"0s\"\ntimeout = \"1h\"\n\n",
        work = work.display().to_string(),
    )
}

fn write_config(dir: &Path, port: u16, top: &str, suites: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("plugins")).expect("plugins dir");
    let path = dir.join("testmeter.toml");
    std::fs::write(
        &path,
        format!("plugins_dir = \"plugins\"\n{top}\n{suites}[prometheus]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .expect("config");
    path
}

fn start(dir: &Path, config: &Path) -> Guard {
    let log = std::fs::File::create(dir.join("testmeter.log")).expect("log");
    Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(config)
            .args(["run", "--config"])
            .arg(config)
            .stdout(log.try_clone().expect("clone"))
            .stderr(log),
    )
}

fn log(dir: &Path) -> String {
    crate::support::strip_ansi(
        &std::fs::read_to_string(dir.join("testmeter.log")).unwrap_or_default(),
    )
}

fn send(agent: &Guard, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(agent.child.id() as libc::pid_t, signal);
    }
}

#[test]
fn sigterm_lets_the_running_suite_finish_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let config = write_config(dir.path(), port, "", &suite(dir.path(), "slow", "2", "1h"));
    let mut agent = start(dir.path(), &config);
    wait_for("the suite to start", Duration::from_secs(30), || {
        dir.path().join("slow/pid").exists().then_some(())
    });
    let sent = Instant::now();
    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = log(dir.path());
    let shutting = log.find("shutting down").expect("shutdown logged");
    let finished = log.find("suite finished").expect("the run finished");
    assert!(
        finished > shutting,
        "the run finished after SIGTERM:\n{log}"
    );
    assert!(!log.contains("were killed"), "{log}");
    assert!(sent.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_suite_still_running_after_the_grace_period_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let config = write_config(
        dir.path(),
        port,
        "shutdown_grace = \"1s\"",
        &suite(dir.path(), "hung", "1000", "1h"),
    );
    let mut agent = start(dir.path(), &config);
    let pid = suite_pid(&dir.path().join("hung/pid"));
    let sent = Instant::now();
    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "{:?}",
        sent.elapsed()
    );
    let log = log(dir.path());
    assert!(
        log.contains("suites still running after the grace period were killed killed=[\"hung\"]"),
        "{log}"
    );
    wait_for(
        "the suite's process to be gone",
        Duration::from_secs(10),
        || (!Path::new(&format!("/proc/{pid}")).exists()).then_some(()),
    );
}

/// The pid a suite wrote, once it has.
fn suite_pid(pid_file: &Path) -> i32 {
    wait_for("the suite to start", Duration::from_secs(30), || {
        std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
    })
}

#[test]
fn sigterm_to_once_and_gate_kills_the_running_suite_and_exits_143() {
    for command in ["once", "gate"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = crate::support::free_port();
        let config = write_config(
            dir.path(),
            port,
            "",
            &suite(dir.path(), "hung", "1000", "1h"),
        );
        let log = std::fs::File::create(dir.path().join("testmeter.log")).expect("log");
        let mut agent = Guard::spawn(
            "testmeter once",
            crate::support::testmeter_command(&config)
                .args([command, "--config"])
                .arg(&config)
                .stdout(log.try_clone().expect("clone"))
                .stderr(log),
        );
        let pid = suite_pid(&dir.path().join("hung/pid"));
        let status = agent.terminate(Duration::from_secs(20));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(143),
            "{command}: {status:?}"
        );
        wait_for(
            "the suite's process to be gone",
            Duration::from_secs(10),
            || (!Path::new(&format!("/proc/{pid}")).exists()).then_some(()),
        );
        let log = self::log(dir.path());
        assert!(
            log.contains("stopped before the suites finished"),
            "{command}: {log}"
        );
    }
}

#[test]
fn sighup_applies_suite_changes_and_rejects_an_invalid_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let config = write_config(
        dir.path(),
        port,
        "",
        &suite(dir.path(), "old", "0", "300ms"),
    );
    let agent = start(dir.path(), &config);
    wait_for("the first suite to run", Duration::from_secs(30), || {
        scrape(&url).filter(|body| runs(body, "old") >= 1.0)
    });

    // `old` is removed and `new` added.
    write_config(
        dir.path(),
        port,
        "",
        &suite(dir.path(), "new", "0", "300ms"),
    );
    send(&agent, libc::SIGHUP);
    let body = wait_for("the added suite to run", Duration::from_secs(30), || {
        scrape(&url).filter(|body| runs(body, "new") >= 2.0)
    });
    let old_runs = runs(&body, "old");
    std::thread::sleep(Duration::from_secs(1));
    let body = scrape(&url).expect("scrape");
    assert_eq!(runs(&body, "old"), old_runs, "the removed suite stopped");
    assert!(log(dir.path())
        .contains("config reloaded on SIGHUP added=[\"new\"] changed=[] removed=[\"old\"]"));

    // An invalid config is rejected; the running schedule stays.
    std::fs::write(&config, "plugins_dir = \"plugins\"\nno_such_key = 1\n").expect("write");
    send(&agent, libc::SIGHUP);
    wait_for(
        "the rejection to be logged",
        Duration::from_secs(10),
        || {
            log(dir.path())
                .contains("config reload rejected; the running config stays")
                .then_some(())
        },
    );
    let before = runs(&scrape(&url).expect("scrape"), "new");
    wait_for(
        "the running suite to keep running",
        Duration::from_secs(10),
        || scrape(&url).filter(|body| runs(body, "new") > before),
    );
    assert!(
        log(dir.path()).contains("no_such_key"),
        "the rejection names the problem"
    );
}
