//! What the text-format parsers share: the text itself, read line by line as often as a
//! parser needs, ANSI colour stripping, and the messages Rust tests print.

use std::borrow::Cow;
use std::io::BufRead;
use std::path::Path;

use crate::error::ParseError;
use crate::format::Format;
use crate::input::{self, Limits};

/// A text report that can be read again from its start. Each pass of a parser reads it line
/// by line, so what a pass holds is the current line and what the parser keeps, never the
/// text.
#[derive(Clone, Copy)]
pub(crate) enum Text<'a> {
    File {
        path: &'a Path,
        format: Format,
        limits: Limits,
    },
    Bytes(&'a [u8]),
}

impl Text<'_> {
    /// Reads the text once: `pass` gets its lines, each decoded lossily (as a whole read
    /// decodes the text) and without its `\n` or `\r\n`, as `str::lines` splits.
    pub(crate) fn read<T>(
        &self,
        pass: impl FnOnce(&mut dyn Iterator<Item = Cow<'_, str>>) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        match *self {
            Text::Bytes(bytes) => {
                let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
                let mut lines = body
                    .split(|b| *b == b'\n')
                    .map(|line| String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)));
                if bytes.is_empty() {
                    return pass(&mut std::iter::empty());
                }
                pass(&mut lines)
            }
            Text::File {
                path,
                format,
                limits,
            } => {
                let opened = input::open(path, format, limits)?;
                let mut error = None;
                let mut lines = Lines {
                    reader: opened.reader,
                    buf: Vec::new(),
                    error: &mut error,
                }
                .map(Cow::Owned);
                let read = pass(&mut lines);
                match error {
                    Some(source) => Err(ParseError::Read {
                        path: path.to_path_buf(),
                        source,
                    }),
                    None => read,
                }
            }
        }
    }
}

/// The lines of a text read from `reader`, each decoded lossily, without their `\n` or
/// `\r\n`. A read error ends the lines and is kept in `error`.
struct Lines<'e, R> {
    reader: R,
    buf: Vec<u8>,
    error: &'e mut Option<std::io::Error>,
}

impl<R: BufRead> Iterator for Lines<'_, R> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                }
                Some(String::from_utf8_lossy(&self.buf).into_owned())
            }
            Err(error) => {
                *self.error = Some(error);
                None
            }
        }
    }
}

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
