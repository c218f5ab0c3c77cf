//! What the text-format parsers share: the text itself, read line by line as often as a
//! parser needs, ANSI colour stripping, and the messages Rust tests print.

use std::borrow::Cow;
use std::io::{BufRead, Read, Seek};
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

impl<'a> Text<'a> {
    /// Reads the text once: `pass` gets its lines, each decoded lossily (as a whole read
    /// decodes the text) and without its `\n` or `\r\n`, as `str::lines` splits.
    pub(crate) fn read<T>(
        &self,
        pass: impl FnOnce(&mut dyn Iterator<Item = Cow<'_, str>>) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        self.read_at(|lines| pass(&mut lines.map(|(_, line)| line)))
    }

    /// Reads the text once, each line with the offset of its first byte: where [`Spans`] can
    /// find it again.
    pub(crate) fn read_at<T>(
        &self,
        pass: impl FnOnce(&mut dyn Iterator<Item = (u64, Cow<'_, str>)>) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        match *self {
            Text::Bytes(bytes) => {
                if bytes.is_empty() {
                    return pass(&mut std::iter::empty());
                }
                let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
                let mut at = 0u64;
                let mut lines = body.split(|b| *b == b'\n').map(|line| {
                    let start = at;
                    at += line.len() as u64 + 1;
                    (start, decode(line))
                });
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
                    at: 0,
                    error: &mut error,
                };
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

    /// The text's size in bytes (0 when the file cannot be read: it is then refused anyway).
    pub(crate) fn len(&self) -> u64 {
        match self {
            Text::Bytes(bytes) => bytes.len() as u64,
            Text::File { path, .. } => std::fs::metadata(path).map_or(0, |m| m.len()),
        }
    }

    /// Reads parts of the text again by where they start.
    pub(crate) fn spans(&self) -> Spans<'a> {
        Spans {
            text: *self,
            file: None,
        }
    }
}

/// A line's bytes decoded lossily, without a final `\r`.
fn decode(line: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Where some lines of a text are: from the first byte of the first, up to the first byte of
/// the line after the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub at: u64,
    pub end: u64,
}

/// Values by a 64-bit hash, in a sorted list: what a first pass notes per failure (where its
/// output is), at 16 to 24 bytes an entry, about half of what a hash map takes with its slack.
/// A key given twice keeps its later value, as a map's `insert` would.
pub(crate) struct Index<V> {
    entries: Vec<(u64, Option<V>)>,
    sorted: bool,
}

impl<V> Default for Index<V> {
    fn default() -> Self {
        Index {
            entries: Vec::new(),
            sorted: true,
        }
    }
}

impl<V> Index<V> {
    pub(crate) fn insert(&mut self, key: u64, value: V) {
        self.sorted &= self.entries.last().is_none_or(|(last, _)| *last < key);
        self.entries.push((key, Some(value)));
    }

    /// Sorts the entries once every one is in: call before looking any up.
    pub(crate) fn seal(&mut self) {
        if self.sorted {
            return;
        }
        // Stable: of the entries with one key, the later one stays last and is kept.
        self.entries.sort_by_key(|(key, _)| *key);
        let mut kept: Vec<(u64, Option<V>)> = Vec::with_capacity(self.entries.len());
        for entry in self.entries.drain(..) {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        kept.shrink_to_fit();
        self.entries = kept;
        self.sorted = true;
    }

    fn find(&self, key: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&key, |(k, _)| *k).ok()
    }

    pub(crate) fn get(&self, key: u64) -> Option<&V> {
        self.entries[self.find(key)?].1.as_ref()
    }

    /// The value of `key`, taken: a second look finds none.
    pub(crate) fn take(&mut self, key: u64) -> Option<V> {
        let index = self.find(key)?;
        self.entries[index].1.take()
    }
}

/// Parts of a text read again: what a parser's first pass noted the place of, instead of
/// keeping it (the failure output a runner prints after all its tests).
pub(crate) struct Spans<'a> {
    text: Text<'a>,
    /// The file, once opened.
    file: Option<std::io::BufReader<std::fs::File>>,
}

impl Spans<'_> {
    /// The line at `at`, decoded lossily and without its `\n` or `\r\n`.
    pub(crate) fn line(&mut self, at: u64) -> Result<String, ParseError> {
        let bytes = self.bytes(at, |reader, bytes| {
            reader.read_until(b'\n', bytes).map(|_| ())
        })?;
        let line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
        Ok(decode(line).into_owned())
    }

    /// The lines of `span`, each decoded lossily and without its `\n` or `\r\n`.
    pub(crate) fn lines(&mut self, span: Span) -> Result<Vec<String>, ParseError> {
        let len = span.end.saturating_sub(span.at);
        let bytes = self.bytes(span.at, |reader, bytes| {
            reader.take(len).read_to_end(bytes).map(|_| ())
        })?;
        let bytes = match usize::try_from(len) {
            Ok(len) if len < bytes.len() => &bytes[..len],
            _ => &bytes[..],
        };
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        Ok(body
            .split(|b| *b == b'\n')
            .map(|line| decode(line).into_owned())
            .collect())
    }

    /// The text from `at` on, as much as `read` takes from it.
    fn bytes(
        &mut self,
        at: u64,
        read: impl FnOnce(&mut dyn BufRead, &mut Vec<u8>) -> std::io::Result<()>,
    ) -> Result<Cow<'_, [u8]>, ParseError> {
        match self.text {
            Text::Bytes(bytes) => {
                let start = usize::try_from(at).unwrap_or(usize::MAX).min(bytes.len());
                let mut rest = &bytes[start..];
                let mut taken = Vec::new();
                // Reading from a slice cannot fail.
                let _ = read(&mut rest, &mut taken);
                Ok(Cow::Owned(taken))
            }
            Text::File { path, .. } => {
                let read_error = |source| ParseError::Read {
                    path: path.to_path_buf(),
                    source,
                };
                let file = match &mut self.file {
                    Some(file) => file,
                    None => self
                        .file
                        .insert(std::io::BufReader::new(input::open_regular(path)?)),
                };
                file.seek(std::io::SeekFrom::Start(at))
                    .map_err(read_error)?;
                let mut taken = Vec::new();
                read(file, &mut taken).map_err(read_error)?;
                Ok(Cow::Owned(taken))
            }
        }
    }
}

/// The lines of a text read from `reader`, each decoded lossily, without their `\n` or
/// `\r\n`, with the offset of their first byte. A read error ends the lines and is kept in
/// `error`.
struct Lines<'e, R> {
    reader: R,
    buf: Vec<u8>,
    at: u64,
    error: &'e mut Option<std::io::Error>,
}

impl<R: BufRead> Iterator for Lines<'_, R> {
    type Item = (u64, Cow<'static, str>);

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(read) => {
                let start = self.at;
                self.at += read as u64;
                let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
                Some((start, Cow::Owned(decode(line).into_owned())))
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
    fn an_index_keeps_the_later_value_and_gives_each_once() {
        let mut index = Index::default();
        for (key, value) in [(9, "a"), (3, "b"), (9, "c"), (5, "d")] {
            index.insert(key, value);
        }
        index.seal();
        assert_eq!(index.get(9), Some(&"c"));
        assert_eq!(index.get(4), None);
        assert_eq!(index.take(3), Some("b"));
        assert_eq!(index.take(3), None);
        assert_eq!(index.entries.len(), 3);
    }

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
