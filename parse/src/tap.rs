//! TAP 12, 13 and 14 as `node --test`, Test::More and `prove -v` write it: test points with
//! `# SKIP`/`# TODO` directives, YAML diagnostic blocks (message, duration), indented
//! subtests (`# Subtest: name`), plans, `Bail out!`, and prove's `t/file.t ..` headers, which
//! start one suite per file. Lines that are not TAP (a harness's stderr) are skipped.
//!
//! A TODO test is counted as skipped whether it passed or failed, as node:test's JUnit
//! reporter does. TAP has no retries: every test point is its own test. A point without a
//! description is named by its number (`#3`), and a description that repeats among its
//! siblings gets the point's number too (`positive #4`), so no two tests share a name and none
//! is folded into another as a retry. A test point with subtests is a group, not a test: its subtests are. A stream whose plan promised more tests than ran, that bailed out, or that
//! has no plan at all, is partial.

use std::hash::BuildHasher;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, XmlString};

use crate::error::ParseError;
use crate::handing::{Ending, Out, TextParser};
use crate::text::{strip_ansi, Text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    None,
    Skip,
    Todo,
}

/// One test point with the subtests that ran before it.
#[derive(Debug)]
struct Point {
    ok: bool,
    /// The test number, when the point has one.
    number: Option<u64>,
    description: String,
    directive: Directive,
    reason: String,
    yaml: String,
    children: Vec<Point>,
}

/// Points at one indentation level, waiting for their parent's test point.
#[derive(Debug)]
struct Level {
    indent: usize,
    points: Vec<Point>,
}

/// One TAP document (a file under prove, or the whole stream).
#[derive(Default)]
struct Document {
    name: String,
    levels: Vec<Level>,
    plan: Option<u64>,
    bailed_out: Option<String>,
    /// Indentation of the YAML block being read, with the block's base indentation.
    yaml: Option<usize>,
    /// Top-level points already handed on (`Document::drain`), in order.
    handed_on: u64,
}

impl Document {
    fn named(name: &str) -> Self {
        Document {
            name: name.to_owned(),
            ..Document::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.levels.is_empty()
            && self.plan.is_none()
            && self.bailed_out.is_none()
            && self.handed_on == 0
    }

    /// The suite this document's cases go to.
    fn suite_name(&self) -> String {
        if self.name.is_empty() {
            "tap".to_owned()
        } else {
            self.name.clone()
        }
    }

    /// Hands on the top-level points that are complete: every one but the latest, which may
    /// still get a YAML block, and the latest too once a subtest of the next has started.
    fn drain(&mut self, out: &mut dyn Out<TestCase>, names: &mut Names) {
        // Only the last point of the last level can still change (a YAML block, or a subtest
        // level closing into it): with deeper levels open, every top-level point is complete.
        let keep = usize::from(self.levels.len() == 1);
        let Some(top) = self.levels.first_mut().filter(|level| level.indent == 0) else {
            return;
        };
        let count = top.points.len().saturating_sub(keep);
        if count == 0 {
            return;
        }
        let points: Vec<Point> = top.points.drain(..count).collect();
        let name = self.suite_name();
        out.suite(&name);
        for point in points {
            let index = usize::try_from(self.handed_on).unwrap_or(usize::MAX);
            add_cases(out, &name, &[], point, index, names);
            self.handed_on += 1;
        }
    }

    fn line(&mut self, raw: &str) {
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let content = raw.trim();
        if let Some(base) = self.yaml {
            if content == "..." && indent + 2 >= base && indent <= base {
                self.yaml = None;
            } else if let Some(point) = self.last_point_mut() {
                point
                    .yaml
                    .push_str(raw.get(base.min(indent)..).unwrap_or(content));
                point.yaml.push('\n');
            }
            return;
        }
        if content == "---" && self.has_point_at(indent.saturating_sub(2)) {
            self.yaml = Some(indent);
            return;
        }
        if let Some(reason) = content.strip_prefix("Bail out!") {
            self.bailed_out = Some(reason.trim().to_owned());
            return;
        }
        if let Some(plan) = content.strip_prefix("1..") {
            if indent == 0 {
                let count = plan.split_whitespace().next().unwrap_or("");
                self.plan = count.parse().ok();
            }
            return;
        }
        if self.is_prove_verdict(indent, content) {
            return;
        }
        if let Some(point) = test_point(content) {
            self.push_point(indent, point);
        }
    }

    /// prove's own `ok` after a file's complete TAP (`prove -v` writes it as the file's
    /// verdict, like `Dubious, test returned 1`). Test::More numbers every test point, so a
    /// bare `ok` once a file under a prove header has run its whole plan is prove's, not a test.
    fn is_prove_verdict(&self, indent: usize, content: &str) -> bool {
        content == "ok"
            && indent == 0
            && !self.name.is_empty()
            && self.plan.is_some_and(|planned| {
                let held = self
                    .levels
                    .first()
                    .filter(|level| level.indent == 0)
                    .map_or(0, |level| level.points.len());
                self.handed_on + held as u64 == planned
            })
    }

    fn has_point_at(&self, indent: usize) -> bool {
        self.levels
            .last()
            .is_some_and(|level| level.indent == indent && !level.points.is_empty())
    }

    fn last_point_mut(&mut self) -> Option<&mut Point> {
        self.levels.last_mut()?.points.last_mut()
    }

    fn push_point(&mut self, indent: usize, mut point: Point) {
        // Deeper levels that are still open are this point's subtests.
        while self
            .levels
            .last()
            .is_some_and(|level| level.indent > indent)
        {
            if let Some(level) = self.levels.pop() {
                if self.levels.last().is_some_and(|l| l.indent > indent) {
                    // A level between the parent and this one without its own point: attach
                    // to the next level up.
                    if let Some(parent) = self.levels.last_mut() {
                        parent.points.extend(level.points);
                    }
                } else {
                    point.children.extend(level.points);
                }
            }
        }
        match self.levels.last_mut() {
            Some(level) if level.indent == indent => level.points.push(point),
            _ => self.levels.push(Level {
                indent,
                points: vec![point],
            }),
        }
    }

    /// Cases of this document, and its name with why it is partial if it is.
    fn finish(
        mut self,
        out: &mut dyn Out<TestCase>,
        names: &mut Names,
    ) -> Option<(String, String)> {
        // Unclosed deeper levels (a stream cut inside a subtest) still hold completed points.
        let mut top: Vec<Point> = Vec::new();
        while let Some(level) = self.levels.pop() {
            if self.levels.is_empty() {
                top.splice(0..0, level.points);
            } else {
                top.extend(level.points);
            }
        }
        let ran = self.handed_on + top.len() as u64;
        let name = self.suite_name();
        out.suite(&name);
        let first = usize::try_from(self.handed_on).unwrap_or(usize::MAX);
        for (index, point) in top.into_iter().enumerate() {
            add_cases(out, &name, &[], point, first + index, names);
        }
        let mut reasons = Vec::new();
        if let Some(reason) = self.bailed_out {
            reasons.push(format!("{name} bailed out: {reason}"));
        }
        match self.plan {
            Some(planned) if ran < planned => reasons.push(format!(
                "{name} planned {planned} tests but only {ran} ran (the stream ends early)"
            )),
            None if ran > 0 => reasons.push(format!(
                "{name} has no plan line (the stream may be cut short)"
            )),
            _ => {}
        }
        (!reasons.is_empty()).then(|| (name, reasons.join("; ")))
    }
}

/// Reads TAP.
pub(crate) struct Tap;

impl TextParser for Tap {
    type Attempt = TestCase;
    const NAME: &'static str = "tap";
    // Every test gets a name of its own (`Names`): none repeats.
    const BYTES_PER_TEST: Option<u64> = None;

    fn read(&self, text: &Text<'_>, out: &mut dyn Out<TestCase>) -> Result<Ending, ParseError> {
        // `ok 12 - name`: some 32 bytes a point, to make the set of names at its final size.
        let names = Names::with_capacity(usize::try_from(text.len() / 32).unwrap_or(0));
        let reasons = text.read(|lines| read(lines, names, out))?;
        // Each file's reason concerns its own suite only.
        Ok(Ending {
            partial: joined(&reasons),
            suite_partial: reasons.into_iter().collect(),
        })
    }
}

/// Reads TAP line by line into `out`: each top-level test point is handed on once it is
/// complete, so a stream holds one point (with its subtests) at a time. Returns each
/// document's partial reason with its suite.
fn read(
    lines: &mut dyn Iterator<Item = std::borrow::Cow<'_, str>>,
    // Shared by the documents of a stream: two documents of one file are one suite.
    mut names: Names,
    out: &mut dyn Out<TestCase>,
) -> Result<Vec<(String, String)>, ParseError> {
    let mut reasons = Vec::new();
    let mut document = Document::default();
    let mut seen = false;
    for raw in lines {
        let line = strip_ansi(&raw);
        let line = line.trim_end();
        if let Some(file) = prove_header(line) {
            if !document.is_empty() {
                reasons.extend(document.finish(out, &mut names));
            }
            document = Document::named(file);
            seen = true;
            continue;
        }
        if line.starts_with("TAP version ") {
            seen = true;
            continue;
        }
        if line.starts_with("Test Summary Report") {
            break;
        }
        let content = line.trim_start();
        seen |= content.starts_with("ok")
            || content.starts_with("not ok")
            || content.starts_with("1..");
        document.line(line);
        document.drain(out, &mut names);
    }
    if !seen {
        return Err(ParseError::NotThisFormat {
            format: "TAP",
            reason: "no test points, plan or version line".to_owned(),
        });
    }
    if !document.is_empty() {
        reasons.extend(document.finish(out, &mut names));
    }
    Ok(reasons)
}

/// Every document's partial reason, joined.
fn joined(reasons: &[(String, String)]) -> Option<String> {
    (!reasons.is_empty()).then(|| {
        reasons
            .iter()
            .map(|(_, reason)| reason.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The names given so far, by suite and classname: a TAP document may repeat a description (a
/// loop of `ok($x, 'positive')`), or give none, for different tests, and two documents of one
/// file are one suite.
///
/// Kept as hashes: a stream of a million points holds a million of them, not their strings. A
/// collision can only give a name its number when it did not need it. Unlike the filter that
/// notices repeated tests (`crate::seen`), this set must be exact: a false "seen" would rename
/// a test, so TAP keeps one hash per point (about 18 MiB at 1,000,000 points).
struct Names {
    seen: foldhash::HashSet<u64>,
    hasher: foldhash::fast::FixedState,
}

impl Names {
    /// Room for about `points` names, made once instead of doubling as it fills.
    fn with_capacity(points: usize) -> Self {
        Names {
            seen: foldhash::HashSet::with_capacity_and_hasher(
                points.min(1 << 24),
                Default::default(),
            ),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    /// The point's name among its siblings: its description, else `#number`; with its number
    /// added when a sibling already has that name.
    fn name(&mut self, suite: &str, parents: &[String], point: &Point, index: usize) -> String {
        let number = point.number.unwrap_or(index as u64 + 1);
        let mut name = if point.description.is_empty() {
            format!("#{number}")
        } else {
            point.description.clone()
        };
        let mut extra = 1u64;
        // Unique by what identifies a case once it is an XML string (its classname and name,
        // control characters cleaned as `XmlString` cleans them), not by its path: a group
        // named like the suite gives its subtests the suite's classname.
        let classname = XmlString::new(if parents.is_empty() {
            suite.to_owned()
        } else {
            parents.join(" > ")
        })
        .as_str()
        .to_owned();
        let key = |name: &str| {
            self.hasher
                .hash_one((suite, classname.as_str(), XmlString::new(name).as_str()))
        };
        while !self.seen.insert(key(&name)) {
            name = if point.description.is_empty() {
                format!("#{number}.{extra}")
            } else if extra == 1 {
                format!("{} #{number}", point.description)
            } else {
                format!("{} #{number}.{extra}", point.description)
            };
            extra += 1;
        }
        name
    }
}

/// Adds a point's cases; `index` is its place among its siblings. A point with subtests is a
/// group: its children are the tests (as node's JUnit reporter and node-tap count them), and
/// the group itself only becomes a case when it failed with no failing test inside (a plan or
/// teardown failure of its own).
fn add_cases(
    suites: &mut dyn Out<TestCase>,
    suite: &str,
    parents: &[String],
    mut point: Point,
    index: usize,
    names: &mut Names,
) {
    point.description = names.name(suite, parents, &point, index);
    if point.children.is_empty() {
        // An empty `describe` (node:test marks suites in YAML) holds no test.
        if yaml_value(&point.yaml, "type").as_deref() != Some("suite") {
            suites.attempt(suite, leaf_case(suite, parents, point));
        }
        return;
    }
    let mut path = parents.to_vec();
    path.push(point.description.clone());
    let failed_inside = point.children.iter().any(fails);
    let mut group = point;
    for (index, child) in std::mem::take(&mut group.children).into_iter().enumerate() {
        add_cases(suites, suite, &path, child, index, names);
    }
    if !group.ok && group.directive == Directive::None && !failed_inside {
        suites.attempt(suite, leaf_case(suite, parents, group));
    }
}

/// True when the point, or a test inside it, failed (TODO and SKIP never fail).
fn fails(point: &Point) -> bool {
    (!point.ok && point.directive == Directive::None) || point.children.iter().any(fails)
}

fn leaf_case(suite: &str, parents: &[String], point: Point) -> TestCase {
    let Point {
        ok,
        description,
        directive,
        reason,
        yaml,
        ..
    } = point;
    let mut status = match (directive, ok) {
        (Directive::Skip, _) => TestCaseStatus::skipped(),
        (Directive::Todo, _) => {
            let mut status = TestCaseStatus::skipped();
            status.set_type("todo");
            status
        }
        (Directive::None, true) => TestCaseStatus::success(),
        (Directive::None, false) => TestCaseStatus::non_success(NonSuccessKind::Failure),
    };
    if !reason.is_empty() {
        status.set_message(reason);
    } else if let Some(error) = yaml_value(&yaml, "error").or_else(|| yaml_value(&yaml, "message"))
    {
        if !ok {
            status.set_message(error);
        }
    }
    if !ok && !yaml.trim().is_empty() {
        status.set_description(yaml.clone());
    }
    let mut case = TestCase::new(description, status);
    case.set_classname(if parents.is_empty() {
        suite.to_owned()
    } else {
        parents.join(" > ")
    });
    if let Some(ms) = yaml_value(&yaml, "duration_ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Ok(time) = Duration::try_from_secs_f64(ms / 1000.0) {
            case.set_time(time);
        }
    }
    case
}

/// `ok 1 - name # SKIP reason`, `not ok 2 name # TODO`, `ok 3 # skip reason`.
fn test_point(content: &str) -> Option<Point> {
    let (ok, rest) = if let Some(rest) = content.strip_prefix("not ok") {
        (false, rest)
    } else {
        (true, content.strip_prefix("ok")?)
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim_start();
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let number = rest[..digits].parse().ok();
    let rest = rest[digits..].trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (description, comment) = split_directive(rest);
    let (directive, reason) = match comment {
        Some(comment) => {
            let lower = comment.to_ascii_lowercase();
            if lower.starts_with("skip") {
                (Directive::Skip, word_rest(comment))
            } else if lower.starts_with("todo") {
                (Directive::Todo, word_rest(comment))
            } else {
                (Directive::None, String::new())
            }
        }
        None => (Directive::None, String::new()),
    };
    Some(Point {
        ok,
        number,
        description: description.trim().replace("\\#", "#"),
        directive,
        reason,
        yaml: String::new(),
        children: Vec::new(),
    })
}

/// Splits at the first `#` not escaped with a backslash.
fn split_directive(text: &str) -> (&str, Option<&str>) {
    let bytes = text.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'#' && (index == 0 || bytes[index - 1] != b'\\') {
            return (&text[..index], Some(text[index + 1..].trim()));
        }
    }
    (text, None)
}

/// The text after the directive word (`SKIP`, `skipped:`, `TODO`).
fn word_rest(comment: &str) -> String {
    comment
        .split_once(char::is_whitespace)
        .map_or("", |(_, rest)| rest)
        .trim()
        .to_owned()
}

/// prove's per-file header: `t/basic.t ..... ` (the file's TAP follows with `-v`).
fn prove_header(line: &str) -> Option<&str> {
    let (file, dots) = line.trim_end().split_once(' ')?;
    (dots.len() >= 2 && dots.chars().all(|c| c == '.') && !file.is_empty()).then_some(file)
}

/// A top-level scalar of a YAML diagnostic block: `key: value`, `key: 'value'`, or a
/// `key: |-` block scalar.
fn yaml_value(yaml: &str, key: &str) -> Option<String> {
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let Some(value) = line
            .trim_start()
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
        else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let mut block = Vec::new();
            while let Some(next) =
                lines.next_if(|l| l.len() - l.trim_start().len() > indent || l.trim().is_empty())
            {
                block.push(next.trim());
            }
            return Some(block.join("\n").trim().to_owned());
        }
        let unquoted = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .map(|v| v.replace("''", "'"))
            .or_else(|| {
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| value.to_owned());
        return Some(unquoted);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_points_and_directives() {
        let point = test_point("not ok 4 - todo that fails # TODO not written yet").expect("point");
        assert!(!point.ok);
        assert_eq!(point.description, "todo that fails");
        assert_eq!(point.directive, Directive::Todo);
        assert_eq!(point.reason, "not written yet");
        let skip = test_point("ok 3 # skip no network here").expect("point");
        assert_eq!(
            (skip.directive, skip.reason.as_str()),
            (Directive::Skip, "no network here")
        );
        assert!(test_point("okay").is_none());
        assert_eq!(
            test_point("ok 1 - has \\# hash")
                .expect("point")
                .description,
            "has # hash"
        );
    }

    #[test]
    fn yaml_scalars() {
        let yaml =
            "duration_ms: 5.1\ntype: 'suite'\nerror: |-\n  line one\n  line two\ncode: 'X'\n";
        assert_eq!(yaml_value(yaml, "duration_ms").as_deref(), Some("5.1"));
        assert_eq!(yaml_value(yaml, "type").as_deref(), Some("suite"));
        assert_eq!(
            yaml_value(yaml, "error").as_deref(),
            Some("line one\nline two")
        );
    }
}
