//! Scheduling under `testmeter run` with real processes: a suite slower than its interval
//! never overlaps itself and its skipped runs are counted; suites share the concurrency limit;
//! a suite that hangs with children ignoring SIGTERM has its whole process group killed at its
//! timeout, and nothing it started is left running; `/readyz` waits for every first run; and the
//! example systemd unit passes `systemd-analyze verify`.

use std::path::Path;
use std::time::Duration;

use crate::support::{
    exposition_value as value, repo_root, scrape, suite_runs as runs, wait_for, Guard,
};

fn start_agent(dir: &Path, config: &str) -> (Guard, String) {
    let port = crate::support::free_port();
    let path = dir.join("testmeter.toml");
    std::fs::create_dir_all(dir.join("plugins")).expect("plugins dir");
    std::fs::write(
        &path,
        format!(
            "plugins_dir = \"plugins\"\n{config}\n[prometheus]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join("testmeter.log")).expect("log");
    let guard = Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(&path)
            .args(["run", "--config"])
            .arg(&path)
            .stdout(log.try_clone().expect("clone"))
            .stderr(log),
    );
    (guard, format!("http://127.0.0.1:{port}/metrics"))
}

#[test]
fn slow_suites_never_overlap_and_their_skipped_runs_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = repo_root().join("tests/fixtures/pytest/xunit2.xml");
    let lock = dir.path().join("lock");
    let overlaps = dir.path().join("overlaps");
    // Each run holds one lock shared by both suites for 1.5 s, three times its 0.5 s
    // interval; a second run inside the lock (of the same suite or the other) is recorded.
    let script = format!(
        "mkdir {lock:?} 2>/dev/null || echo \"$0\" >> {overlaps:?}; sleep 1.5; rmdir {lock:?}; cp {fixture:?} report.xml",
        lock = lock.display().to_string(),
        overlaps = overlaps.display().to_string(),
        fixture = fixture.display().to_string(),
    );
    let mut suites = String::from("max_concurrent_suites = 1\n");
    for name in ["slow-a", "slow-b"] {
        let work = dir.path().join(name);
        std::fs::create_dir_all(&work).expect("work dir");
        suites.push_str(&format!(
            "[[suite]]\nname = {name:?}\nsystem = \"none\"\ncommand = [\"sh\", \"-c\", {script:?}, {name:?}]\nworking_dir = {work:?}\nreport = \"report.xml\"\ninterval = \"500ms\"\njitter = \"0s\"\ntimeout = \"30s\"\n\n",
            work = work.display().to_string(),
        ));
    }
    let (_agent, url) = start_agent(dir.path(), &suites);
    let body = wait_for("both suites to run twice", Duration::from_secs(60), || {
        scrape(&url).filter(|body| {
            ["slow-a", "slow-b"]
                .iter()
                .all(|suite| runs(body, suite) >= 2.0)
        })
    });
    assert!(
        !overlaps.exists(),
        "runs overlapped: {}",
        std::fs::read_to_string(&overlaps).unwrap_or_default()
    );
    for suite in ["slow-a", "slow-b"] {
        let skipped = value(
            &body,
            &format!("testmeter_suite_runs_skipped_total{{reason=\"overlap\",suite=\"{suite}\"}}"),
        )
        .unwrap_or(0.0);
        assert!(
            skipped >= 2.0,
            "{suite} skipped {skipped} due runs:\n{body}"
        );
    }
}

fn alive(pid: i32) -> bool {
    // A zombie still has a /proc entry; count it as alive until its parent reaps it.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_timeout_kills_children_that_ignore_sigterm_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    // The suite and both its children ignore SIGTERM and would sleep for 1000 s.
    let script = format!(
        "trap '' TERM; for i in 1 2; do sh -c \"trap '' TERM; echo \\$\\$ >> {pids}; exec sleep 1000\" & done; echo $$ >> {pids}; sleep 1000",
        pids = pids.display()
    );
    let config = format!(
        "[[suite]]\nname = \"hung\"\nsystem = \"none\"\ncommand = [\"sh\", \"-c\", {script:?}]\nworking_dir = {dir:?}\nreport = \"report.xml\"\ninterval = \"1h\"\ntimeout = \"1s\"\n",
        dir = dir.path().display().to_string(),
    );
    let (_agent, url) = start_agent(dir.path(), &config);
    wait_for(
        "the timed-out run to be counted",
        Duration::from_secs(60),
        || {
            scrape(&url).filter(|body| {
                value(
                    body,
                    "testmeter_suite_runs_total{result=\"timeout\",suite=\"hung\"}",
                ) == Some(1.0)
            })
        },
    );
    let started: Vec<i32> = std::fs::read_to_string(&pids)
        .expect("the suite wrote its pids")
        .lines()
        .map(|l| l.trim().parse().expect("a pid"))
        .collect();
    assert_eq!(started.len(), 3, "the suite and two children started");
    // The agent reaps the suite itself; init reaps the orphaned children it killed.
    wait_for(
        "every process of the suite to be gone",
        Duration::from_secs(10),
        || started.iter().all(|pid| !alive(*pid)).then_some(()),
    );
    let log = std::fs::read_to_string(dir.path().join("testmeter.log")).expect("log");
    let log = crate::support::strip_ansi(&log);
    assert!(
        log.contains("suite timed out; sending SIGTERM to its process group"),
        "{log}"
    );
    assert!(
        log.contains("suite ignored SIGTERM; sending SIGKILL to its process group"),
        "{log}"
    );
}

/// The status and body of a GET, whatever the status.
fn get(url: &str) -> Option<(u16, String)> {
    let mut response = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.body_mut().read_to_string().ok()?))
}

#[test]
fn readyz_waits_for_the_first_run_of_every_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = dir.path().join("go");
    let fixture = repo_root().join("tests/fixtures/pytest/xunit2.xml");
    // The suite's first run lasts until the test creates `go`.
    let script = format!(
        "while [ ! -e {gate:?} ]; do sleep 0.05; done; cp {fixture:?} report.xml",
        gate = gate.display().to_string(),
        fixture = fixture.display().to_string(),
    );
    let config = format!(
        "[[suite]]\nname = \"first\"\nsystem = \"none\"\ncommand = [\"sh\", \"-c\", {script:?}]\nworking_dir = {dir:?}\nreport = \"report.xml\"\ninterval = \"1h\"\n",
        dir = dir.path().display().to_string(),
    );
    let (_agent, metrics) = start_agent(dir.path(), &config);
    let readyz = metrics.replace("/metrics", "/readyz");
    let healthz = metrics.replace("/metrics", "/healthz");
    let waiting = wait_for("the endpoint to answer", Duration::from_secs(30), || {
        get(&readyz)
    });
    assert_eq!(
        waiting,
        (503, "waiting for the first run of: first\n".to_owned())
    );
    assert_eq!(get(&healthz), Some((200, "ok\n".to_owned())));
    std::fs::write(&gate, "").expect("go");
    wait_for(
        "readiness after the first run",
        Duration::from_secs(30),
        || get(&readyz).filter(|(status, _)| *status == 200),
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = std::fs::read_to_string(repo_root().join("examples/deploy/testmeter.service"))
        .expect("unit");
    let binary = crate::support::testmeter_bin();
    assert!(unit.contains("ExecStart=/usr/local/bin/testmeter run"));
    let path = dir.path().join("testmeter.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/testmeter", &binary.display().to_string()),
    )
    .expect("write unit");
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
