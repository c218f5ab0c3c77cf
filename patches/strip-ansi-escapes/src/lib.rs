//! testmeter's stand-in for `strip-ansi-escapes` 0.2.1, patched in through
//! `[patch.crates-io]` in the workspace `Cargo.toml`.
//!
//! `quick_junit::XmlString::new` strips ANSI escapes from every string of a report through
//! this crate. The crates.io release formats each character with `write!` into a `LineWriter`
//! it allocates per call, which made stripping about 60% of JUnit parse time (~25 MB/s).
//! This version has the same API and the same output, and is ours: text without escape or
//! control characters is copied as is, and anything else goes through the same `vte` parser
//! with a performer that appends to a `Vec` directly.

use std::io::{self, IntoInnerError, LineWriter, Write};

use vte::{Parser, Perform};

/// Strips ANSI escape sequences (and control characters other than `\n`) from bytes.
pub fn strip<T: AsRef<[u8]>>(data: T) -> Vec<u8> {
    let data = data.as_ref();
    // Invalid UTF-8 is vte's to handle.
    if is_plain(data) && std::str::from_utf8(data).is_ok() {
        return data.to_vec();
    }
    let mut collector = Collector {
        out: Vec::with_capacity(data.len()),
    };
    Parser::new().advance(&mut collector, data);
    collector.out
}

/// Strips ANSI escape sequences from a string.
pub fn strip_str<T: AsRef<str>>(data: T) -> String {
    let data = data.as_ref();
    if is_plain(data.as_bytes()) {
        return data.to_owned();
    }
    // Only whole UTF-8 characters are printed, so the result is UTF-8; the lossy conversion
    // never replaces anything and needs no panic path.
    String::from_utf8_lossy(&strip(data)).into_owned()
}

/// True when `vte` would print every byte unchanged: no C0 control but `\n`, no DEL, no ESC,
/// and no C1 control (U+0080..U+009F, encoded as 0xC2 0x80..0x9F).
fn is_plain(data: &[u8]) -> bool {
    // A branch-free scan per chunk (vectorised) finds candidates; only then look closely.
    let suspicious = data.chunks(64).any(|chunk| {
        chunk.iter().fold(false, |seen, &byte| {
            seen | ((byte < 0x20) & (byte != b'\n')) | (byte == 0x7f) | (byte == 0xc2)
        })
    });
    !suspicious || is_plain_exact(data)
}

fn is_plain_exact(data: &[u8]) -> bool {
    let no_controls = data
        .iter()
        .all(|&byte| (byte >= 0x20 && byte != 0x7f) || byte == b'\n');
    no_controls
        && !data
            .windows(2)
            .any(|pair| pair[0] == 0xc2 && (0x80..=0x9f).contains(&pair[1]))
}

/// Collects what `vte` prints, and the line feeds it executes.
struct Collector {
    out: Vec<u8>,
}

impl Perform for Collector {
    fn print(&mut self, c: char) {
        let mut buffer = [0u8; 4];
        self.out
            .extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
    }

    fn execute(&mut self, byte: u8) {
        if byte == b'\n' {
            self.out.push(b'\n');
        }
    }
}

/// A writer that strips ANSI escape sequences from what is written through it.
pub struct Writer<W: Write> {
    inner: LineWriter<W>,
    parser: Parser,
    collector: Collector,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W) -> Writer<W> {
        Writer {
            inner: LineWriter::new(inner),
            parser: Parser::new(),
            collector: Collector { out: Vec::new() },
        }
    }

    pub fn into_inner(self) -> Result<W, IntoInnerError<LineWriter<W>>> {
        self.inner.into_inner()
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.parser.advance(&mut self.collector, buf);
        self.inner.write_all(&self.collector.out)?;
        self.collector.out.clear();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colours_and_keeps_newlines() {
        assert_eq!(
            strip(b"\x1b[m\x1b[32m\x1b[1m   Compiling\x1b[m vte\nnext\n"),
            b"   Compiling vte\nnext\n"
        );
        assert_eq!(strip_str("foo\nbar\n"), "foo\nbar\n");
    }

    #[test]
    fn drops_control_characters_like_vte() {
        // vte prints DEL and executes (drops) C0 and C1 controls other than line feed.
        assert_eq!(strip_str("a\tb\rc\u{7f}d\u{85}e"), "abc\u{7f}de");
        assert_eq!(strip_str("ünïcödé ✓"), "ünïcödé ✓");
    }

    #[test]
    fn writer_strips_across_writes() {
        let mut writer = Writer::new(Vec::new());
        writer.write_all(b"\x1b[3").expect("write");
        writer.write_all(b"1mred\x1b[0m\n").expect("write");
        assert_eq!(writer.into_inner().ok(), Some(b"red\n".to_vec()));
    }
}
