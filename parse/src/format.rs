//! The report formats, their names in config and on the command line, and detection of a
//! format from the first bytes of a report.

use std::fmt;
use std::str::FromStr;

/// A report format. `Auto` detects the format from the report's first 64 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    #[default]
    Auto,
    /// JUnit XML, any dialect.
    Junit,
    /// pytest's terminal output (`-v`, `-rA`).
    PytestText,
    /// Rust libtest's (and `cargo test`'s) terminal output.
    #[serde(rename = "libtest")]
    LibtestText,
    /// Rust libtest's `--format json` event lines.
    LibtestJson,
    /// `go test -json` (and gotestsum `--jsonfile`) event lines.
    GoTestJson,
    /// TAP 12, 13 or 14 (`node --test`, `prove`, Test::More).
    Tap,
}

/// How much of a report detection looks at.
const DETECT_BYTES: usize = 64 * 1024;

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Auto,
        Format::Junit,
        Format::PytestText,
        Format::LibtestText,
        Format::LibtestJson,
        Format::GoTestJson,
        Format::Tap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Junit => "junit",
            Format::PytestText => "pytest-text",
            Format::LibtestText => "libtest",
            Format::LibtestJson => "libtest-json",
            Format::GoTestJson => "go-test-json",
            Format::Tap => "tap",
        }
    }

    /// The format of a report, from its first bytes; `None` when nothing matches.
    pub fn detect(head: &[u8]) -> Option<Format> {
        let head = &head[..head.len().min(DETECT_BYTES)];
        let text = String::from_utf8_lossy(head);
        let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
        if trimmed.starts_with('<') {
            return Some(Format::Junit);
        }
        let mut tap_hint = false;
        let mut libtest_hint = false;
        let mut pytest_hint = false;
        for line in text.lines() {
            let line = crate::text::strip_ansi(line);
            let line = line.trim_end();
            if line.starts_with('{') {
                if line.contains("\"Action\"") {
                    return Some(Format::GoTestJson);
                }
                if line.contains("\"type\"") && line.contains("\"event\"") {
                    return Some(Format::LibtestJson);
                }
            }
            if line.starts_with("=") && line.contains(" test session starts ") {
                pytest_hint = true;
            }
            if line.starts_with("running ") && line.ends_with(" test")
                || line.starts_with("running ") && line.ends_with(" tests")
            {
                libtest_hint = true;
            }
            if line.starts_with("TAP version ")
                || line.starts_with("1..")
                || line.starts_with("ok ")
                || line.starts_with("not ok ")
            {
                tap_hint = true;
            }
        }
        if pytest_hint {
            Some(Format::PytestText)
        } else if libtest_hint {
            Some(Format::LibtestText)
        } else if tap_hint {
            Some(Format::Tap)
        } else if text.contains("::") && crate::pytest_text::looks_like(&text) {
            Some(Format::PytestText)
        } else {
            None
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown report format {0:?} (expected one of: auto, junit, pytest-text, libtest, libtest-json, go-test-json, tap)")]
pub struct UnknownFormat(String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| UnknownFormat(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>().ok(), Some(format));
        }
        assert!("xml".parse::<Format>().is_err());
    }
}
