//! Turning raw XML text and attribute values into strings: UTF-8 decoded lossily, references
//! resolved (the predefined entities and character references, nothing from a DTD), line ends
//! normalised; and the seconds and timestamps JUnit writers put in attributes.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDateTime};

use super::xml::RawValue;

/// Why a value could not be decoded.
#[derive(Debug)]
pub(super) struct BadReference(pub String);

/// UTF-8 text, borrowed when valid, with invalid sequences replaced otherwise.
pub(super) fn utf8_lossy(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// Whether an attribute value may need work: a reference, or literal whitespace to normalise.
/// Other control characters also say yes; the work then leaves them as they are.
fn needs_work(bytes: &[u8]) -> bool {
    crate::bytes::any_control_or(bytes, b"&")
}

/// Unescapes an attribute value: predefined entities and character references; literal
/// tabs and newlines become spaces, as XML attribute-value normalisation requires.
pub(super) fn attribute(raw: RawValue<'_>) -> Result<Cow<'_, str>, BadReference> {
    let text = match raw.text {
        Some(text) => Cow::Borrowed(text),
        None => utf8_lossy(raw.bytes),
    };
    // Most values need nothing.
    if !needs_work(raw.bytes) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(position) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..position]);
        let tail = &rest[position..];
        if !tail.starts_with('&') {
            if !tail.starts_with("\r\n") {
                out.push(' ');
            }
            rest = &tail[1..];
            continue;
        }
        rest = resolve_at(tail, &mut out)?;
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Appends character data: invalid UTF-8 replaced, CRLF line ends normalised, references
/// resolved.
pub(super) fn push_text(out: &mut String, raw: &[u8]) -> Result<(), BadReference> {
    let text = utf8_lossy(raw);
    let needs_work = raw
        .iter()
        .fold(false, |seen, &byte| seen | (byte == b'&') | (byte == b'\r'));
    if !needs_work {
        out.push_str(&text);
        return Ok(());
    }
    let mut rest: &str = &text;
    while let Some(position) = rest.find(['&', '\r']) {
        out.push_str(&rest[..position]);
        let tail = &rest[position..];
        if let Some(after) = tail.strip_prefix('\r') {
            // A lone CR stays; CRLF becomes LF.
            if !after.starts_with('\n') {
                out.push('\r');
            }
            rest = after;
            continue;
        }
        rest = resolve_at(tail, out)?;
    }
    out.push_str(rest);
    Ok(())
}

/// Appends the literal content of a CDATA section: only decoding and line ends.
pub(super) fn push_literal(out: &mut String, raw: &[u8]) {
    let text = utf8_lossy(raw);
    if memchr::memchr(b'\r', raw).is_some() {
        out.push_str(&text.replace("\r\n", "\n"));
    } else {
        out.push_str(&text);
    }
}

/// Resolves the reference that `tail` starts with (at its `&`) onto `out`; returns the text
/// after it.
fn resolve_at<'a>(tail: &'a str, out: &mut String) -> Result<&'a str, BadReference> {
    let Some(end) = tail.find(';') else {
        return Err(BadReference(
            "'&' is not followed by a reference ending in ';'".to_owned(),
        ));
    };
    resolve_name(&tail[1..end], out)?;
    Ok(&tail[end + 1..])
}

/// Resolves `name` of `&name;`: the five predefined entities and character references.
/// Anything else would need a DTD, which is never read.
fn resolve_name(name: &str, out: &mut String) -> Result<(), BadReference> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => number.parse::<u32>(),
        };
        let character = code
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| BadReference(format!("invalid character reference '&{name};'")))?;
        out.push(character);
        return Ok(());
    }
    let value = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            return Err(BadReference(format!(
                "undefined entity '&{name};' (only the predefined XML entities are accepted)"
            )))
        }
    };
    out.push(value);
    Ok(())
}

/// Seconds as written by JUnit writers: `1.5`, `0`, `1,234.5` (Surefire with a locale).
pub(super) fn seconds(value: &str) -> Option<Duration> {
    let cleaned: Cow<'_, str> = if value.contains(',') {
        Cow::Owned(value.replace(',', ""))
    } else {
        Cow::Borrowed(value)
    };
    let seconds: f64 = cleaned.trim().parse().ok()?;
    if seconds.is_finite() && seconds >= 0.0 {
        Duration::try_from_secs_f64(seconds).ok()
    } else {
        None
    }
}

/// RFC 3339 timestamps, and the zone-less ISO form older writers use (taken as UTC).
pub(super) fn timestamp(value: &str) -> Option<DateTime<FixedOffset>> {
    let value = value.trim();
    DateTime::parse_from_rfc3339(value).ok().or_else(|| {
        NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|naive| naive.and_utc().fixed_offset())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_resolves_references_and_normalises_line_ends() {
        let mut out = String::new();
        push_text(&mut out, b"a &lt;b&gt; &#233;&#x41;\r\nc\rd").expect("decodes");
        assert_eq!(out, "a <b> éA\nc\rd");
        assert!(push_text(&mut out, b"&nope;").is_err());
        assert!(push_text(&mut out, b"& alone").is_err());
    }

    #[test]
    fn attributes_normalise_whitespace() {
        let bytes = b"a\tb\r\nc&#10;d";
        for text in [None, std::str::from_utf8(bytes).ok()] {
            let raw = RawValue { bytes, text };
            assert_eq!(attribute(raw).expect("decodes"), "a b c\nd");
        }
    }
}
