//! A case's captured output split into the places a log record can reach a report, so a
//! plugin that counts logged operations reads each record once.
//!
//! A Python project often sends one log record to several places at once: pytest's log
//! capture, which junit_logging `all` and `log` write as a `Captured Log` section of
//! `system-out`, and one or more handlers on stderr or stdout, which reach `system-out` and
//! `system-err` (as `Captured Out` and `Captured Err` sections, or bare from other runners).
//! Reading all of them counts every operation several times; removing repeated lines would
//! undercount, since one operation can legitimately log the same line twice. [`Output`]
//! instead names one place to read: pytest's captured log when the report has it, else one
//! stream.

/// The headers pytest's junitxml writes before each part of a case's output (the name centred
/// in a line of 80 dashes).
const LOG: &str = "Captured Log";
const OUT: &str = "Captured Out";
const ERR: &str = "Captured Err";

/// Where a part of a case's output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// pytest's own log capture (the `Captured Log` section).
    Log,
    /// Standard output (the `Captured Out` section, or a bare `system-out`).
    Stdout,
    /// Standard error (the `Captured Err` section, or a bare `system-err`).
    Stderr,
}

/// A case's captured output, split by where it came from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Output<'b> {
    log: Option<&'b str>,
    stdout: Option<&'b str>,
    stderr: Option<&'b str>,
}

impl<'b> Output<'b> {
    /// Splits `system-out` and `system-err` as pytest writes them under every junit_logging
    /// mode; text that has no pytest header is the stream of the element it is in.
    pub fn new(system_out: Option<&'b str>, system_err: Option<&'b str>) -> Self {
        let mut output = Output::default();
        for (text, bare) in [(system_out, Source::Stdout), (system_err, Source::Stderr)] {
            if let Some(text) = text {
                output.split(text, bare);
            }
        }
        output
    }

    fn split(&mut self, text: &'b str, bare: Source) {
        let mut current: Option<(Source, usize)> = None;
        let mut at = 0;
        for line in text.split_inclusive('\n') {
            if let Some(source) = header(line) {
                if let Some((source, start)) = current {
                    self.set(source, &text[start..at]);
                } else if !text[..at].trim().is_empty() {
                    self.set(bare, &text[..at]);
                }
                current = Some((source, at + line.len()));
            }
            at += line.len();
        }
        match current {
            Some((source, start)) => self.set(source, &text[start..]),
            None => self.set(bare, text),
        }
    }

    fn set(&mut self, source: Source, text: &'b str) {
        let slot = match source {
            Source::Log => &mut self.log,
            Source::Stdout => &mut self.stdout,
            Source::Stderr => &mut self.stderr,
        };
        // pytest writes each part once per case; keep the first if a report repeats one.
        slot.get_or_insert(text);
    }

    /// The text of one place, if the report has it.
    pub fn get(&self, source: Source) -> Option<&'b str> {
        match source {
            Source::Log => self.log,
            Source::Stdout => self.stdout,
            Source::Stderr => self.stderr,
        }
    }

    /// The places a log record can be, in order of preference: pytest's captured log, then
    /// standard output, then standard error. Each holds its own copy of what was logged to it.
    pub fn sources(&self) -> impl Iterator<Item = (Source, &'b str)> + '_ {
        [Source::Log, Source::Stdout, Source::Stderr]
            .into_iter()
            .filter_map(|source| self.get(source).map(|text| (source, text)))
    }

    /// Reads the first place in which `read` finds something (`Some`), and no other: each
    /// logged operation is counted once, wherever and however often the project's logging
    /// setup copied it. `None` when no place has anything.
    pub fn read_once<T>(&self, mut read: impl FnMut(&'b str) -> Option<T>) -> Option<T> {
        self.sources().find_map(|(_, text)| read(text))
    }
}

/// The part a pytest junitxml header line starts, if `line` is one.
fn header(line: &str) -> Option<Source> {
    let line = line.trim_end_matches(['\n', '\r']);
    if !line.starts_with('-') || !line.ends_with('-') {
        return None;
    }
    match line
        .trim_matches('-')
        .strip_prefix(' ')?
        .strip_suffix(' ')?
    {
        LOG => Some(Source::Log),
        OUT => Some(Source::Stdout),
        ERR => Some(Source::Stderr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_line(name: &str) -> String {
        format!("{:-^80}\n", format!(" {name} "))
    }

    #[test]
    fn splits_every_part_pytest_writes_under_junit_logging_all() {
        let out = format!(
            "{}INFO one\nINFO two\n{}printed\n\n",
            header_line(LOG),
            header_line(OUT)
        );
        let err = format!("{}stderr one\n\n", header_line(ERR));
        let output = Output::new(Some(&out), Some(&err));
        assert_eq!(output.get(Source::Log), Some("INFO one\nINFO two\n"));
        assert_eq!(output.get(Source::Stdout), Some("printed\n\n"));
        assert_eq!(output.get(Source::Stderr), Some("stderr one\n\n"));
        assert_eq!(
            output.sources().map(|(s, _)| s).collect::<Vec<_>>(),
            vec![Source::Log, Source::Stdout, Source::Stderr]
        );
    }

    #[test]
    fn text_without_headers_is_the_stream_of_its_element() {
        let output = Output::new(Some("plain out\n"), Some("plain err\n"));
        assert_eq!(output.get(Source::Log), None);
        assert_eq!(output.get(Source::Stdout), Some("plain out\n"));
        assert_eq!(output.get(Source::Stderr), Some("plain err\n"));
        assert_eq!(Output::new(None, None).sources().count(), 0);
    }

    #[test]
    fn a_log_section_alone_in_system_out_is_the_log() {
        let out = format!("{}INFO one\n", header_line(LOG));
        let output = Output::new(Some(&out), None);
        assert_eq!(output.get(Source::Log), Some("INFO one\n"));
        assert_eq!(output.get(Source::Stdout), None);
    }

    #[test]
    fn a_dashed_line_that_is_not_a_pytest_header_is_text() {
        let out = format!("{:-^80}\nbody\n", " Captured Logs ");
        let output = Output::new(Some(&out), None);
        assert_eq!(output.get(Source::Stdout), Some(out.as_str()));
    }

    #[test]
    fn read_once_stops_at_the_first_place_that_has_something() {
        let out = format!("{}\n{}op\nop\n", header_line(LOG), header_line(OUT));
        let output = Output::new(Some(&out), Some("op\n"));
        let mut read = Vec::new();
        let count = output.read_once(|text| {
            read.push(text);
            let ops = text.lines().filter(|l| *l == "op").count();
            (ops > 0).then_some(ops)
        });
        assert_eq!(count, Some(2));
        // The empty log section was tried, then stdout; stderr's copy was never read.
        assert_eq!(read, vec!["\n", "op\nop\n"]);
    }
}
