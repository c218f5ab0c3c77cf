//! Streaming a report hands on exactly the cases that reading it whole gives, in the same
//! order, for every fixture and every input of the fuzz corpus (all formats): the same
//! outcome, retries folded the same way, the same totals, the same partial reason.

mod support {
    pub mod inputs;
}

use support::inputs;

use quick_junit::TestCase;
use testmeter_parse::{
    parse_bytes, stream_bytes, stream_file, CaseSink, CaseView, Fields, Format, Limits, Parsed,
};

#[derive(Default)]
struct Collected {
    cases: Vec<(String, TestCase)>,
    suites: Vec<quick_junit::TestSuite>,
    restarts: usize,
}

impl CaseSink for Collected {
    fn case(&mut self, suite: &str, case: CaseView<'_>) {
        self.cases.push((suite.to_owned(), case.to_case()));
    }
    fn suite(&mut self, suite: &quick_junit::TestSuite) {
        assert!(
            suite.test_cases.is_empty(),
            "a suite comes without its cases"
        );
        self.suites.push(suite.clone());
    }
    fn restart(&mut self) {
        self.cases.clear();
        self.suites.clear();
        self.restarts += 1;
    }
}

/// Suites by name, without their cases.
fn suites_by_name(
    suites: &[quick_junit::TestSuite],
) -> std::collections::BTreeMap<String, Vec<quick_junit::TestSuite>> {
    let mut grouped = std::collections::BTreeMap::<String, Vec<quick_junit::TestSuite>>::new();
    for suite in suites {
        let mut suite = suite.clone();
        suite.test_cases.clear();
        grouped
            .entry(suite.name.as_str().to_owned())
            .or_default()
            .push(suite);
    }
    grouped
}

/// The cases of each suite in order. A stream hands cases on in document order, so a suite
/// whose cases are interleaved with another's (cases under `<testsuites>` around a suite,
/// a parent's cases around a nested suite) comes out interleaved; whole, they are grouped.
fn by_suite(cases: &[(String, TestCase)]) -> std::collections::BTreeMap<&str, Vec<&TestCase>> {
    let mut grouped = std::collections::BTreeMap::<&str, Vec<&TestCase>>::new();
    for (suite, case) in cases {
        grouped.entry(suite.as_str()).or_default().push(case);
    }
    grouped
}

fn cases_of(parsed: &Parsed) -> Vec<(String, TestCase)> {
    parsed
        .report
        .test_suites
        .iter()
        .flat_map(|s| {
            s.test_cases
                .iter()
                .map(move |c| (s.name.as_str().to_owned(), c.clone()))
        })
        .collect()
}

/// Streams `bytes` and compares with the whole read; `None` when both refuse it.
fn compare(bytes: &[u8], format: Format, what: &str) -> Option<usize> {
    let whole = parse_bytes(bytes, format, Limits::default());
    let mut sink = Collected::default();
    let streamed = stream_bytes(bytes, format, Limits::default(), Fields::ALL, &mut sink);
    match (whole, streamed) {
        (Ok(whole), Ok(streamed)) => {
            assert_eq!(
                by_suite(&sink.cases),
                by_suite(&cases_of(&whole)),
                "{what}: cases"
            );
            assert_eq!(streamed.partial, whole.partial, "{what}: partial");
            assert_eq!(
                streamed.summary,
                testmeter_parse::Summary::of(&whole.report),
                "{what}: summary"
            );
            let totals = |r: &quick_junit::Report| (r.tests, r.failures, r.errors, r.skipped);
            assert_eq!(totals(&streamed.report), totals(&whole.report), "{what}");
            assert!(streamed.report.test_suites.is_empty(), "{what}");
            assert_eq!(
                suites_by_name(&sink.suites),
                suites_by_name(&whole.report.test_suites),
                "{what}: suites"
            );
            Some(sink.restarts)
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "{what}");
            None
        }
        (whole, streamed) => panic!("{what}: whole {whole:?}, streamed {streamed:?}"),
    }
}

#[test]
fn every_fixture_streams_as_it_parses_whole() {
    let paths = inputs::files(&inputs::fixtures_dir());
    let mut reports = 0;
    let mut restarted = Vec::new();
    for path in &paths {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if !["xml", "json", "txt", "tap"].contains(&ext)
            || path.to_string_lossy().contains("/project/")
        {
            continue;
        }
        let bytes = std::fs::read(path).expect("fixture");
        let what = path.display().to_string();
        if let Some(restarts) = compare(&bytes, Format::Auto, &what) {
            reports += 1;
            if restarts > 0 {
                restarted.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
            }
            // A file streams like bytes do.
            let mut sink = Collected::default();
            let streamed = stream_file(
                path,
                Format::Auto,
                Limits::default(),
                Fields::ALL,
                &mut sink,
            )
            .expect("streams from the file");
            let whole = parse_bytes(&bytes, Format::Auto, Limits::default()).expect("parses");
            assert_eq!(
                sink.cases,
                cases_of(&whole),
                "{what}: from the file, in order"
            );
            assert_eq!(streamed.partial, whole.partial);
        }
    }
    assert!(reports >= 25, "{reports} reports");
    // gotestsum writes its reruns after the other tests, `go test -count=2` runs the whole
    // list twice, and pytest's `-rA` summary lists a test's teardown ERROR apart from its
    // FAILED line.
    insta::assert_yaml_snapshot!(restarted, @r#"
    - quiet.txt
    - gotestsum-junit.xml
    - gotestsum-rerun.json
    - go-test-count2.json
    "#);
}

#[test]
fn the_fuzz_corpus_streams_as_it_parses_whole() {
    let dir = inputs::unpack_fuzz_corpus("stream-corpus");
    let paths = inputs::files(&dir.join("corpus"));
    let mut read = 0;
    for path in &paths {
        let bytes = std::fs::read(path).expect("corpus file");
        let format = match path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
        {
            Some("junit") => Format::Junit,
            _ => Format::Auto,
        };
        if compare(&bytes, format, &path.display().to_string()).is_some() {
            read += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(paths.len() > 10_000, "{} corpus files", paths.len());
    assert!(read > 1_000, "{read} read");
}

fn streamed(xml: &str, fields: Fields) -> (Collected, testmeter_parse::Streamed) {
    let mut sink = Collected::default();
    let streamed = stream_bytes(
        xml.as_bytes(),
        Format::Junit,
        Limits::default(),
        fields,
        &mut sink,
    )
    .expect("streams");
    (sink, streamed)
}

fn whole(xml: &str) -> Vec<(String, TestCase)> {
    cases_of(&parse_bytes(xml.as_bytes(), Format::Junit, Limits::default()).expect("parses"))
}

#[test]
fn adjacent_retries_fold_on_the_way() {
    let xml = r#"<testsuite name="s"><testcase classname="c" name="a"><failure message="x"/></testcase><testcase classname="c" name="a"/><testcase classname="c" name="b"/></testsuite>"#;
    let (sink, streamed) = streamed(xml, Fields::ALL);
    assert_eq!(sink.restarts, 0);
    assert_eq!(sink.cases, whole(xml));
    assert_eq!((streamed.summary.tests, streamed.summary.flaky), (2, 1));
    assert_eq!(streamed.report.tests, 2);
    assert_eq!(sink.suites.len(), 1);
    assert_eq!(sink.suites[0].tests, 2);
}

#[test]
fn a_rerun_at_the_end_restarts_and_folds_like_the_whole_read() {
    let xml = r#"<testsuite name="s"><testcase classname="c" name="a"><failure message="x"/></testcase><testcase classname="c" name="b"/><testcase classname="c" name="a"/></testsuite>"#;
    let (sink, streamed) = streamed(xml, Fields::ALL);
    assert_eq!(sink.restarts, 1);
    assert_eq!(sink.cases, whole(xml));
    assert_eq!((streamed.summary.tests, streamed.summary.flaky), (2, 1));
}

/// Adjacent retries folded on the way before a late rerun is found are folded again in the
/// refold, with the late one; a teardown error stays merged into its call.
#[test]
fn a_late_rerun_after_adjacent_retries_folds_like_the_whole_read() {
    let xml = r#"<testsuite name="s"><testcase classname="c" name="a"><failure message="x"/></testcase><testcase classname="c" name="a"/><testcase classname="c" name="b"><failure message="y"/></testcase><testcase classname="c" name="t"/><testcase classname="c" name="t"><error message="failed on teardown with &quot;boom&quot;"/></testcase><testcase classname="c" name="d"/><testcase classname="c" name="b"/><testcase classname="c" name="e"/></testsuite>"#;
    let (sink, streamed) = streamed(xml, Fields::ALL);
    assert_eq!(sink.restarts, 1);
    assert_eq!(sink.cases, whole(xml));
    let names: Vec<&str> = sink.cases.iter().map(|(_, c)| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "t", "d", "e"]);
    assert_eq!(
        (
            streamed.summary.tests,
            streamed.summary.flaky,
            streamed.summary.errored
        ),
        (5, 2, 1)
    );
}

#[test]
fn fields_nobody_reads_are_skipped() {
    let xml = r#"<testsuite name="s"><properties><property name="p" value="1"/></properties><testcase name="a"><properties><property name="k" value="v"/></properties><failure message="m">trace</failure><system-out>out</system-out></testcase></testsuite>"#;
    let none = Fields {
        properties: false,
        output: false,
        descriptions: false,
    };
    let (sink, streamed) = streamed(xml, none);
    let case = &sink.cases[0].1;
    assert!(case.properties.is_empty());
    assert!(case.system_out.is_none());
    match &case.status {
        quick_junit::TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } => {
            assert_eq!(message.as_ref().map(|m| m.as_str()), Some("m"));
            assert!(description.is_none());
        }
        other => panic!("{other:?}"),
    }
    // A suite's properties are always kept.
    assert!(streamed.report.test_suites.is_empty());
    assert_eq!(sink.suites[0].properties.len(), 1);
}
