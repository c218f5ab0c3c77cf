//! The agent's text log output: every event is exactly one line, whatever the strings in it
//! carry (a plugin's `host.log` message, an artifact's file name, a suite's output in an
//! error), so no outside text can forge a log line or drive the terminal; and errors written
//! with their causes on that line (`error_chain`).

use std::borrow::Cow;
use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// Wraps the log's writer so each formatted event is written as one line. JSON logs need no
/// wrapper: every string in them is already escaped, one object per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct OneLine<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(self.0.make_writer())
    }
}

/// Writes what it is given with [`one_line`].
#[derive(Debug)]
pub struct OneLineWriter<W>(W);

impl<W: Write> Write for OneLineWriter<W> {
    /// The formatter hands over a whole event in one write; it is escaped whole.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&one_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Whether `byte` must not reach the log as it is: a line break or another C0 control
/// character, or DEL. A tab stays; ESC is left to the formatter, which escapes it in every
/// field and message and writes its own colours with it.
fn needs_escape(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t' && byte != 0x1b) || byte == 0x7f
}

/// `event` with every control character but its final line break written as an escape
/// (`\n`, `\r`, `\x00`): one line.
pub fn one_line(event: &[u8]) -> Cow<'_, [u8]> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (event, &b""[..]),
    };
    if !body.iter().copied().any(needs_escape) {
        return Cow::Borrowed(event);
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for &byte in body {
        match byte {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            byte if needs_escape(byte) => {
                let _ = write!(out, "\\x{byte:02x}");
            }
            byte => out.push(byte),
        }
    }
    out.extend_from_slice(end);
    Cow::Owned(out)
}

/// An error with its sources, `a: b: c`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line_whatever_it_carries() {
        let event = b"2026-12-06T03:00:00Z  INFO plugin: a\nforged INFO line\r\x00\x07\x7f\tend\n";
        assert_eq!(
            String::from_utf8_lossy(&one_line(event)),
            "2026-12-06T03:00:00Z  INFO plugin: a\\nforged INFO line\\r\\x00\\x07\\x7f\tend\n"
        );
        let plain = b"a plain line, \x1b[2mcoloured\x1b[0m, \xc3\xa9\n";
        assert!(matches!(one_line(plain), Cow::Borrowed(_)));
    }
}
