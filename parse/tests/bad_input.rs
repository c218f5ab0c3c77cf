//! Bad input never panics and never eats memory: truncated real reports keep their completed
//! cases as a partial run, hostile XML is refused with a position, oversized input is refused
//! before it is read, a FIFO at the report path is refused without blocking, and invalid UTF-8
//! or binary garbage gives a result or an error.

use std::path::PathBuf;

use testmeter_parse::{parse_bytes, parse_file, Format, Limits, ParseError, Summary};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(path),
    )
    .expect("fixture exists")
}

/// The fixture cut at `fraction` of its length, the way a killed writer leaves it.
fn truncated(path: &str, fraction: f64) -> Vec<u8> {
    let mut bytes = fixture(path);
    bytes.truncate((bytes.len() as f64 * fraction) as usize);
    bytes
}

#[test]
fn truncated_reports_keep_completed_cases_as_a_partial_run() {
    let mut seen = Vec::new();
    // Surefire's report opens with a long <properties> block: cut it later.
    for (path, format, fraction) in [
        ("pytest/xunit1.xml", Format::Junit, 0.6),
        ("surefire/TEST-demo.CalculatorTest.xml", Format::Junit, 0.9),
        ("libtest/nextest-junit.xml", Format::Junit, 0.6),
        ("gotest/go-test.json", Format::GoTestJson, 0.6),
        // libtest's JSON has no end-of-run event: a cut between two test binaries looks like
        // a complete run of fewer binaries. Cut inside one.
        ("libtest/libtest.json", Format::LibtestJson, 0.45),
        (
            "libtest/cargo-test-no-fail-fast.txt",
            Format::LibtestText,
            0.6,
        ),
        ("node/node.tap", Format::Tap, 0.6),
        ("pytest/verbose.txt", Format::PytestText, 0.15),
    ] {
        let whole = parse_bytes(&fixture(path), format, Limits::default()).expect("whole parses");
        let cut = parse_bytes(&truncated(path, fraction), format, Limits::default())
            .unwrap_or_else(|e| panic!("{path} cut at {fraction} still parses: {e}"));
        let (whole_tests, cut_tests) = (
            Summary::of(&whole.report).tests,
            Summary::of(&cut.report).tests,
        );
        assert!(
            cut_tests < whole_tests,
            "{path}: {cut_tests} < {whole_tests}"
        );
        assert!(cut_tests > 0, "{path}: some cases completed before the cut");
        seen.push((path, cut_tests, whole_tests, cut.partial));
    }
    insta::assert_yaml_snapshot!(seen);
}

#[test]
fn an_entity_bomb_is_refused_before_any_expansion() {
    let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<testsuite name="&lol9;"><testcase name="a"/></testsuite>"#;
    let error = parse_bytes(bomb, Format::Auto, Limits::default()).expect_err("refused");
    insta::assert_snapshot!(error.to_string());
}

#[test]
fn an_external_entity_is_refused() {
    let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite name="s"><testcase name="&secret;"/></testsuite>"#;
    let error = parse_bytes(xxe, Format::Junit, Limits::default()).expect_err("refused");
    assert!(
        matches!(error, ParseError::Refused { line: 2, .. }),
        "{error}"
    );
    let undeclared = b"<testsuite name=\"s\"><testcase name=\"&secret;\"/></testsuite>";
    let error = parse_bytes(undeclared, Format::Junit, Limits::default()).expect_err("undefined");
    insta::assert_snapshot!(error.to_string());
}

#[test]
fn oversized_reports_are_refused_before_they_are_read() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pytest/xunit1.xml");
    let limits = Limits {
        max_report_bytes: 1024,
    };
    let error = parse_file(&path, Format::Auto, limits).expect_err("too large");
    assert!(
        matches!(error, ParseError::TooLarge { limit: 1024, .. }),
        "{error}"
    );
    let error =
        parse_bytes(&fixture("gotest/go-test.json"), Format::Auto, limits).expect_err("too large");
    assert_eq!(error.reason(), "too_large");
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let mut bytes = fixture("pytest/xunit2.xml");
    let at = bytes
        .windows(12)
        .position(|w| w == b"lists differ")
        .expect("message present");
    bytes[at] = 0xff;
    bytes[at + 1] = 0xfe;
    let parsed = parse_bytes(&bytes, Format::Junit, Limits::default()).expect("parses");
    let text = format!("{:?}", parsed.report);
    assert!(
        text.contains("\u{fffd}\u{fffd}sts differ"),
        "replacement characters kept the rest"
    );
    assert_eq!(Summary::of(&parsed.report).tests, 14);
}

/// Deterministic pseudo-random bytes (xorshift), so the test is the same on every run.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn binary_garbage_is_an_error_or_a_report_never_a_panic() {
    for seed in 1..=64u64 {
        let bytes = garbage(4096, seed);
        for format in Format::ALL {
            let _ = parse_bytes(&bytes, format, Limits::default());
        }
    }
    let error =
        parse_bytes(&garbage(4096, 7), Format::Auto, Limits::default()).expect_err("garbage");
    assert_eq!(error.reason(), "unrecognised");
    let error = parse_bytes(b"   \n\t ", Format::Auto, Limits::default()).expect_err("blank");
    assert_eq!(error.reason(), "empty");
}

#[test]
fn a_fifo_at_the_report_path_is_refused_without_blocking() {
    let dir = std::env::temp_dir().join(format!("testmeter-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let fifo = dir.join("report.xml");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    // A plain open of a FIFO for reading waits for a writer: run it on a thread, so a
    // regression fails here instead of hanging the suite.
    let (sender, receiver) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let parsed = testmeter_parse::parse_file(&path, Format::Auto, Limits::default());
        let _ = sender.send(parsed.map(|_| ()).map_err(|e| (e.to_string(), e.reason())));
    });
    let result = receiver
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the read did not block");
    let (message, reason) = result.expect_err("refused");
    assert_eq!(
        message.replace(&dir.display().to_string(), "[DIR]"),
        "report [DIR]/report.xml is a FIFO, not a regular file; only regular files are read"
    );
    assert_eq!(reason, "read");
    let _ = std::fs::remove_dir_all(&dir);
}
