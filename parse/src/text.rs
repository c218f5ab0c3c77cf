//! Helpers shared by the text-format parsers: ANSI colour stripping and building a report
//! from suites of attempts.

use std::borrow::Cow;
use std::collections::BTreeMap;

use quick_junit::{Report, TestCase, TestSuite};

use crate::attempts::{finish_report, EarlierPass};
use crate::parsed::Parsed;

/// Removes ANSI escape sequences (colours from `--color=yes`, cursor moves).
pub(crate) fn strip_ansi(line: &str) -> Cow<'_, str> {
    if !line.contains('\u{1b}') {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            // CSI: ESC [ parameters, then one final byte in @..~
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: ESC ] ... BEL or ESC \
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    Cow::Owned(out)
}

/// Cases collected per suite, in the order suites first appear.
#[derive(Debug, Default)]
pub(crate) struct Suites {
    suites: Vec<TestSuite>,
    /// What an earlier attempt that passed means when attempts are folded.
    earlier: EarlierPass,
}

impl Suites {
    /// Suites of a runner that runs tests several times and says how each attempt ended
    /// (`go test -count=N`): a passing earlier attempt is a pass, not a bare failed attempt.
    pub(crate) fn repeating() -> Self {
        Suites {
            suites: Vec::new(),
            earlier: EarlierPass::Passed,
        }
    }

    /// The suite with this name, created at the end if new.
    pub(crate) fn suite(&mut self, name: &str) -> &mut TestSuite {
        let index = match self.suites.iter().position(|s| s.name.as_str() == name) {
            Some(index) => index,
            None => {
                self.suites.push(TestSuite::new(name));
                self.suites.len() - 1
            }
        };
        &mut self.suites[index]
    }

    pub(crate) fn push(&mut self, suite: &str, case: TestCase) {
        self.suite(suite).test_cases.push(case);
    }

    /// The report, with retries folded and totals counted.
    pub(crate) fn finish(self, name: &str, partial: Option<String>) -> Parsed {
        self.finish_by_suite(name, partial, BTreeMap::new())
    }

    /// The report, with the reasons that concern one suite each kept by suite as well.
    pub(crate) fn finish_by_suite(
        self,
        name: &str,
        partial: Option<String>,
        suite_partial: BTreeMap<String, String>,
    ) -> Parsed {
        let mut report = Report::new(name);
        report.test_suites = self.suites;
        Parsed {
            report: finish_report(report, self.earlier),
            partial,
            suite_partial,
        }
    }
}

/// The panic message in a Rust test's captured output: the line after `panicked at`.
pub(crate) fn panic_message(output: &str) -> Option<String> {
    let mut lines = output.lines();
    lines.find(|line| line.contains("panicked at "))?;
    lines.next().map(|line| line.trim().to_owned())
}

/// Text that is not just whitespace.
pub(crate) fn non_blank(text: String) -> Option<String> {
    if text.trim().is_empty() {
        None
    } else {
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colours_and_keeps_text() {
        assert_eq!(
            strip_ansi("\u{1b}[32mPASSED\u{1b}[0m test_a"),
            "PASSED test_a"
        );
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("cut \u{1b}["), "cut ");
    }
}
