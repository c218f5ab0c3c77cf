//! A pull tokenizer for the XML that test runners write, read from a stream through one
//! growable buffer and scanned with memchr: start and end tags with their attributes, text,
//! CDATA, comments, processing instructions and a document type.
//!
//! It checks that end tags match, and reports where the input ends inside markup, but it reads
//! no DTD and expands no entity: text and attribute values come out raw, and the caller
//! resolves the predefined entities and character references. Long text and CDATA come out in
//! pieces, cut where no reference or UTF-8 sequence is split, so the buffer only has to hold
//! the longest tag.

use std::io::Read;
use std::ops::Range;

use memchr::memmem;

/// The buffer starts this large and grows only for a tag (or declaration) that does not fit.
pub(super) const INITIAL_BUFFER: usize = 256 * 1024;

/// Text and CDATA longer than this come out in more than one piece.
const MAX_PIECE: usize = 128 * 1024;

/// One token, borrowing the tokenizer's buffer.
#[derive(Debug)]
pub(crate) enum Token<'a> {
    /// A start tag, or an empty-element tag (`<a/>`, with `empty` set and no `End` to follow).
    Start(Tag<'a>),
    End,
    /// Character data as written: it may hold references (`&amp;`, `&#10;`).
    Text(&'a [u8]),
    /// The literal content of a CDATA section (or a piece of it).
    CData(&'a [u8]),
    /// The document type declaration's content, between `<!DOCTYPE` and its `>`.
    DocType(&'a [u8]),
    Eof,
}

/// A start tag: its name and raw attribute values.
#[derive(Debug)]
pub(crate) struct Tag<'a> {
    /// The tag's bytes, from its `<`.
    buf: &'a [u8],
    /// The same bytes as text, when the whole tag is valid UTF-8 (checked once per tag, not
    /// once per value).
    text: Option<&'a str>,
    /// The local name: after the namespace prefix, if any (up to the first `:`).
    name: Range<usize>,
    /// Each attribute's local name and raw value.
    attributes: &'a [(Range<usize>, Range<usize>)],
    pub empty: bool,
}

/// An attribute value as written: references unresolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawValue<'a> {
    pub bytes: &'a [u8],
    /// The bytes as text, when they are valid UTF-8.
    pub text: Option<&'a str>,
}

impl<'a> Tag<'a> {
    /// The name without a namespace prefix.
    pub fn local_name(&self) -> &'a [u8] {
        &self.buf[self.name.clone()]
    }

    /// Every attribute as (local name, raw value), in document order.
    pub fn attributes(&self) -> impl Iterator<Item = (&'a [u8], RawValue<'a>)> + '_ {
        let (buf, text) = (self.buf, self.text);
        self.attributes.iter().map(move |(key, value)| {
            let raw = RawValue {
                bytes: &buf[value.clone()],
                // Values start and end at quotes, so they are on character boundaries.
                text: text.and_then(|text| text.get(value.clone())),
            };
            (&buf[key.clone()], raw)
        })
    }
}

/// The first `needle` in `haystack`, which is usually near: a scan of the first bytes eight
/// at a time (attribute values are mostly short), then memchr over the rest.
fn find_near(needle: u8, haystack: &[u8]) -> Option<usize> {
    const NEAR: usize = 64;
    let near = &haystack[..haystack.len().min(NEAR)];
    match crate::bytes::find(needle, near) {
        Some(at) => Some(at),
        None if haystack.len() > NEAR => {
            memchr::memchr(needle, &haystack[NEAR..]).map(|at| at + NEAR)
        }
        None => None,
    }
}

/// Why the input is not well-formed XML, and where (a byte offset into the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmlError {
    pub offset: u64,
    pub kind: XmlErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XmlErrorKind {
    /// The input ends inside markup: a killed writer leaves exactly this.
    Truncated(&'static str),
    /// Markup that is not XML.
    Syntax(String),
    /// An end tag that does not close the open element.
    Mismatched {
        expected: String,
        found: String,
    },
    Io(String),
}

impl std::fmt::Display for XmlErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XmlErrorKind::Truncated(what) => write!(f, "{what} before the end of the input"),
            XmlErrorKind::Syntax(message) => f.write_str(message),
            XmlErrorKind::Mismatched { expected, found } => {
                write!(f, "expected `</{expected}>`, but `</{found}>` was found")
            }
            XmlErrorKind::Io(message) => write!(f, "failed to read: {message}"),
        }
    }
}

/// What the next token is, with the ranges it needs, before it is built.
enum Next {
    Start {
        len: usize,
        /// The whole name, and where its local part starts.
        name: Range<usize>,
        local: usize,
        empty: bool,
    },
    End {
        len: usize,
        name: Range<usize>,
    },
    Text(Range<usize>),
    CData {
        content: Range<usize>,
        consumed: usize,
        closed: bool,
    },
    DocType {
        len: usize,
        content: Range<usize>,
    },
    /// A comment or processing instruction of this many bytes: nothing to report.
    Skip(usize),
    Eof,
}

/// A token as the tokenizer found it: where its parts are in the buffer it was read into.
#[derive(Debug, Clone)]
pub(super) enum Raw {
    /// `name` (the local name, without a namespace prefix) is relative to the tag;
    /// `attributes` indexes an attribute list, whose ranges (local names and values) are
    /// relative to the tag too.
    Start {
        tag: Range<usize>,
        name: Range<usize>,
        attributes: Range<usize>,
        empty: bool,
    },
    End,
    Text(Range<usize>),
    CData(Range<usize>),
    DocType(Range<usize>),
    Eof,
}

/// The token `raw` over the buffer it was found in (`text`: the same bytes, when known to be
/// valid UTF-8) and its attribute list.
pub(super) fn view<'a>(
    buf: &'a [u8],
    text: Option<&'a str>,
    attributes: &'a [(Range<usize>, Range<usize>)],
    raw: &Raw,
) -> Token<'a> {
    match raw {
        Raw::Start {
            tag,
            name,
            attributes: which,
            empty,
        } => {
            let bytes = &buf[tag.clone()];
            Token::Start(Tag {
                buf: bytes,
                text: match text {
                    // Tags start at `<` and end after `>`: on character boundaries.
                    Some(text) => text.get(tag.clone()),
                    None => std::str::from_utf8(bytes).ok(),
                },
                name: name.clone(),
                attributes: &attributes[which.clone()],
                empty: *empty,
            })
        }
        Raw::End => Token::End,
        Raw::Text(range) => Token::Text(&buf[range.clone()]),
        Raw::CData(range) => Token::CData(&buf[range.clone()]),
        Raw::DocType(range) => Token::DocType(&buf[range.clone()]),
        Raw::Eof => Token::Eof,
    }
}

pub(crate) struct Tokenizer<R> {
    input: R,
    buf: Vec<u8>,
    /// The next unread byte of `buf`.
    pos: usize,
    /// The bytes of `buf` that hold input.
    len: usize,
    /// Offset in the input of `buf[0]`.
    base: u64,
    eof: bool,
    /// Names of the open elements, one after another, and where each ends.
    open_names: Vec<u8>,
    open_ends: Vec<usize>,
    /// Attribute ranges of the latest start tag.
    attributes: Vec<(Range<usize>, Range<usize>)>,
    /// Inside a CDATA section that came out in pieces.
    in_cdata: bool,
    started: bool,
    /// The size a buffer starts at.
    buffer_size: usize,
}

impl<R: Read> Tokenizer<R> {
    #[cfg(test)]
    pub fn new(input: R) -> Self {
        Self::with_buffer(input, INITIAL_BUFFER)
    }

    /// A tokenizer for an input of about `size` bytes: a report smaller than the usual buffer
    /// gets a buffer that just holds it (at least 4 KiB). A daemon reads many small reports on
    /// many threads, and a 256 KiB buffer for each, zeroed wherever glibc places it, kept
    /// about 0.7 MiB more resident over the 1,000-run soak of three 5–13 KB reports.
    pub(super) fn for_size(input: R, size: u64) -> Self {
        let fits = usize::try_from(size.saturating_add(1)).unwrap_or(INITIAL_BUFFER);
        Self::with_buffer(input, fits.next_power_of_two().clamp(4096, INITIAL_BUFFER))
    }

    /// A tokenizer whose buffer starts at `buffer_size` bytes (tests use small ones).
    pub(super) fn with_buffer(input: R, buffer_size: usize) -> Self {
        let buffer_size = buffer_size.max(16);
        Self {
            input,
            buf: vec![0; buffer_size],
            pos: 0,
            len: 0,
            base: 0,
            eof: false,
            open_names: Vec::new(),
            open_ends: Vec::new(),
            attributes: Vec::new(),
            in_cdata: false,
            started: false,
            buffer_size,
        }
    }

    /// Offset in the input of the next unread byte: where the next token starts.
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The next token (the tests' view of the tokenizer).
    #[cfg(test)]
    pub fn next_token(&mut self) -> Result<Token<'_>, XmlError> {
        self.next_located().map(|(_, token)| token)
    }

    /// The next token and its offset in the input.
    pub(super) fn next_located(&mut self) -> Result<(u64, Token<'_>), XmlError> {
        loop {
            match self.advance()? {
                Some((at, raw)) => return Ok((at, view(&self.buf, None, &self.attributes, &raw))),
                None => self.fill()?,
            }
        }
    }

    /// The next token, found in the buffer and consumed, at its offset in the input; `None`
    /// when the buffer ends before the token does (more input is needed). A start tag's
    /// attributes are in `self.attributes` until the next call.
    pub(super) fn advance(&mut self) -> Result<Option<(u64, Raw)>, XmlError> {
        if !self.started {
            if self.len - self.pos < 3 && !self.eof {
                return Ok(None);
            }
            self.started = true;
            if self.buf[self.pos..self.len].starts_with(b"\xEF\xBB\xBF") {
                self.pos += 3;
            }
        }
        let next = loop {
            match self.scan()? {
                Some(Next::Skip(len)) => self.pos += len,
                Some(next) => break next,
                None if self.eof => return Err(self.truncated()),
                None => return Ok(None),
            }
        };
        let at = self.pos;
        let raw = match next {
            Next::Start {
                len,
                name,
                local,
                empty,
            } => {
                self.pos += len;
                if !empty {
                    // End tags are matched on the whole name.
                    let name = &self.buf[at + name.start..at + name.end];
                    self.open_names.extend_from_slice(name);
                    self.open_ends.push(self.open_names.len());
                }
                Raw::Start {
                    tag: at..at + len,
                    name: local..name.end,
                    attributes: 0..self.attributes.len(),
                    empty,
                }
            }
            Next::End { len, name } => {
                let found = &self.buf[at + name.start..at + name.end];
                let opened = self
                    .open_ends
                    .len()
                    .checked_sub(2)
                    .map_or(0, |i| self.open_ends[i]);
                let Some(&end) = self.open_ends.last() else {
                    return Err(self.error_at(
                        at,
                        XmlErrorKind::Syntax(format!(
                            "`</{}>` closes no open element",
                            String::from_utf8_lossy(found)
                        )),
                    ));
                };
                let expected = &self.open_names[opened..end];
                if expected != found {
                    return Err(self.error_at(
                        at,
                        XmlErrorKind::Mismatched {
                            expected: String::from_utf8_lossy(expected).into_owned(),
                            found: String::from_utf8_lossy(found).into_owned(),
                        },
                    ));
                }
                self.open_ends.pop();
                self.open_names.truncate(opened);
                self.pos += len;
                Raw::End
            }
            Next::Text(range) => {
                self.pos += range.end;
                Raw::Text(at + range.start..at + range.end)
            }
            Next::CData {
                content,
                consumed,
                closed,
            } => {
                self.in_cdata = !closed;
                self.pos += consumed;
                Raw::CData(at + content.start..at + content.end)
            }
            Next::DocType { len, content } => {
                self.pos += len;
                Raw::DocType(at + content.start..at + content.end)
            }
            // The loop above consumes every comment and processing instruction.
            Next::Skip(_) | Next::Eof => Raw::Eof,
        };
        Ok(Some((self.base + at as u64, raw)))
    }

    /// Classifies the bytes at `pos`: `None` when the buffer ends before the token does.
    fn scan(&mut self) -> Result<Option<Next>, XmlError> {
        let rest = &self.buf[self.pos..self.len];
        if self.in_cdata {
            return Ok(self.cdata(0));
        }
        if rest.is_empty() {
            return Ok(self.eof.then_some(Next::Eof));
        }
        if rest[0] != b'<' {
            return Ok(self.text());
        }
        let Some(&second) = rest.get(1) else {
            return Ok(None);
        };
        match second {
            b'/' => self.end_tag(),
            b'?' => Ok(memmem::find(&rest[2..], b"?>").map(|end| Next::Skip(end + 4))),
            b'!' => self.bang(),
            _ => self.start_tag(),
        }
    }

    fn text(&self) -> Option<Next> {
        let rest = &self.buf[self.pos..self.len];
        match memchr::memchr(b'<', rest) {
            Some(end) => Some(Next::Text(0..end)),
            None if self.eof => Some(Next::Text(0..rest.len())),
            // A piece that cannot be cut (one reference that long) waits for a bigger buffer.
            None if rest.len() >= MAX_PIECE => match safe_cut(rest, true) {
                0 => None,
                cut => Some(Next::Text(0..cut)),
            },
            None => None,
        }
    }

    /// CDATA content from `skip` bytes into the rest (past `<![CDATA[` for a new section).
    fn cdata(&self, skip: usize) -> Option<Next> {
        let rest = &self.buf[self.pos..self.len];
        let content = &rest[skip..];
        match memmem::find(content, b"]]>") {
            Some(end) => Some(Next::CData {
                content: skip..skip + end,
                consumed: skip + end + 3,
                closed: true,
            }),
            // Keep the last two bytes back: they may begin the `]]>`.
            None if content.len() >= MAX_PIECE => {
                match safe_cut(&content[..content.len() - 2], false) {
                    0 => None,
                    cut => Some(Next::CData {
                        content: skip..skip + cut,
                        consumed: skip + cut,
                        closed: false,
                    }),
                }
            }
            None => None,
        }
    }

    fn bang(&mut self) -> Result<Option<Next>, XmlError> {
        let rest = &self.buf[self.pos..self.len];
        const CDATA: &[u8] = b"<![CDATA[";
        const DOCTYPE: &[u8] = b"<!DOCTYPE";
        if rest.len() < CDATA.len() && !self.eof {
            return Ok(None);
        }
        if rest.starts_with(b"<!--") {
            return Ok(memmem::find(&rest[4..], b"-->").map(|end| Next::Skip(end + 7)));
        }
        if rest.starts_with(CDATA) {
            return Ok(self.cdata(CDATA.len()));
        }
        if rest.starts_with(DOCTYPE) {
            return Ok(
                doctype_end(&rest[DOCTYPE.len()..]).map(|end| Next::DocType {
                    len: DOCTYPE.len() + end + 1,
                    content: DOCTYPE.len()..DOCTYPE.len() + end,
                }),
            );
        }
        Err(self.error_at(
            self.pos,
            XmlErrorKind::Syntax(
                "`<!` begins neither a comment, a CDATA section nor a document type".to_owned(),
            ),
        ))
    }

    fn end_tag(&mut self) -> Result<Option<Next>, XmlError> {
        let rest = &self.buf[self.pos..self.len];
        let Some(close) = memchr::memchr(b'>', rest) else {
            return Ok(None);
        };
        let inner = &rest[2..close];
        let name_end = inner
            .iter()
            .position(|b| is_space(*b))
            .unwrap_or(inner.len());
        if name_end == 0 || !inner[name_end..].iter().all(|b| is_space(*b)) {
            return Err(self.error_at(
                self.pos,
                XmlErrorKind::Syntax(format!(
                    "malformed end tag `{}`",
                    String::from_utf8_lossy(&rest[..=close])
                )),
            ));
        }
        Ok(Some(Next::End {
            len: close + 1,
            name: 2..2 + name_end,
        }))
    }

    /// A start tag with its attributes, scanned from `pos`; the name and attribute ranges
    /// are relative to the tag's `<`.
    fn start_tag(&mut self) -> Result<Option<Next>, XmlError> {
        self.attributes.clear();
        let rest = &self.buf[self.pos..self.len];
        // Names are scanned once, here: the local part (after the first `:`) is found on the
        // way, for the reader.
        let (end, local) = scan_name(rest, 1);
        let mut i = end;
        if i == rest.len() {
            return Ok(None);
        }
        if i == 1 {
            return Err(self.syntax(self.pos, "`<` is not followed by a tag name"));
        }
        let name = 1..i;
        loop {
            while i < rest.len() && is_space(rest[i]) {
                i += 1;
            }
            let Some(&byte) = rest.get(i) else {
                return Ok(None);
            };
            match byte {
                b'>' => {
                    return Ok(Some(Next::Start {
                        len: i + 1,
                        name,
                        local,
                        empty: false,
                    }))
                }
                b'/' => {
                    return match rest.get(i + 1) {
                        None => Ok(None),
                        Some(b'>') => Ok(Some(Next::Start {
                            len: i + 2,
                            name,
                            local,
                            empty: true,
                        })),
                        Some(_) => {
                            Err(self.syntax(self.pos + i, "`/` in a tag is not followed by `>`"))
                        }
                    }
                }
                _ => {}
            }
            let key_start = i;
            let (key_end, key_local) = scan_name(rest, i);
            i = key_end;
            let key = key_start..i;
            while i < rest.len() && is_space(rest[i]) {
                i += 1;
            }
            let Some(&byte) = rest.get(i) else {
                return Ok(None);
            };
            if key.is_empty() || byte != b'=' {
                let what = String::from_utf8_lossy(&rest[key.clone()]).into_owned();
                return Err(self.error_at(
                    self.pos + i,
                    XmlErrorKind::Syntax(format!("attribute `{what}` has no `=` and value")),
                ));
            }
            i += 1;
            while i < rest.len() && is_space(rest[i]) {
                i += 1;
            }
            let Some(&quote) = rest.get(i) else {
                return Ok(None);
            };
            if quote != b'"' && quote != b'\'' {
                return Err(self.syntax(self.pos + i, "an attribute value must be quoted"));
            }
            let Some(length) = find_near(quote, &rest[i + 1..]) else {
                return Ok(None);
            };
            let value = i + 1..i + 1 + length;
            i = value.end + 1;
            self.attributes.push((key_local..key.end, value));
        }
    }

    fn syntax(&self, at: usize, message: &str) -> XmlError {
        self.error_at(at, XmlErrorKind::Syntax(message.to_owned()))
    }

    fn error_at(&self, at: usize, kind: XmlErrorKind) -> XmlError {
        XmlError {
            offset: self.base + at as u64,
            kind,
        }
    }

    /// The error for input that ends inside the markup at `pos`.
    fn truncated(&self) -> XmlError {
        let rest = &self.buf[self.pos..self.len];
        let what = if self.in_cdata || rest.starts_with(b"<![CDATA[") {
            "a CDATA section is not closed"
        } else if rest.starts_with(b"<!--") {
            "a comment is not closed"
        } else if rest.starts_with(b"<?") {
            "a processing instruction is not closed"
        } else if rest.starts_with(b"<!") {
            "a declaration is not closed"
        } else if open_quote(rest) {
            "an attribute value is not closed"
        } else {
            "a tag is not closed"
        };
        self.error_at(self.pos, XmlErrorKind::Truncated(what))
    }

    /// Reads more input, keeping the unread bytes; grows the buffer when they fill it.
    pub(super) fn fill(&mut self) -> Result<(), XmlError> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(read) => {
                    self.len += read;
                    return Ok(());
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(self.error_at(self.pos, XmlErrorKind::Io(error.to_string())))
                }
            }
        }
    }

    /// The attributes of the latest start tag: local name and value ranges.
    pub(super) fn attributes(&self) -> &[(Range<usize>, Range<usize>)] {
        &self.attributes
    }

    /// Continues in `next` (emptied): the unread bytes move there, and the buffer read so far
    /// is returned with `consumed`, the bytes of it the tokens found so far cover.
    pub(super) fn swap_buffer(&mut self, mut next: Vec<u8>) -> (Vec<u8>, usize) {
        let unread = self.len - self.pos;
        // A reused buffer keeps its old bytes past `unread`: they are overwritten by reads
        // before anything looks at them.
        let size = self.buffer_size.max(unread * 2);
        if next.len() < size {
            next.resize(size, 0);
        }
        next[..unread].copy_from_slice(&self.buf[self.pos..self.len]);
        let consumed = self.pos;
        let old = std::mem::replace(&mut self.buf, next);
        self.base += consumed as u64;
        self.len = unread;
        self.pos = 0;
        (old, consumed)
    }
}

/// What each byte is to a tag scanner: one table lookup instead of a chain of compares.
const SPACE: u8 = 1;
const NAME_END: u8 = 2;
const COLON: u8 = 4;
const CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let spaces = [b' ', b'\t', b'\n', b'\r'];
    let mut i = 0;
    while i < spaces.len() {
        classes[spaces[i] as usize] = SPACE | NAME_END;
        i += 1;
    }
    let ends = [b'>', b'/', b'=', b'<', b'"', b'\''];
    let mut i = 0;
    while i < ends.len() {
        classes[ends[i] as usize] = NAME_END;
        i += 1;
    }
    classes[b':' as usize] = COLON;
    classes
};

fn is_space(byte: u8) -> bool {
    CLASSES[byte as usize] & SPACE != 0
}

/// Scans the name that starts at `from`: where it ends (at the first byte that ends a name,
/// or the end of `bytes`), and where its local part starts (after the first `:`, else at
/// `from`).
fn scan_name(bytes: &[u8], from: usize) -> (usize, usize) {
    let mut i = from;
    // The classes of the name's bytes, or-ed: one instruction a byte, where looking for the
    // colon in the loop cost several.
    let mut seen = 0;
    while let Some(&byte) = bytes.get(i) {
        let class = CLASSES[byte as usize];
        if class & NAME_END != 0 {
            break;
        }
        seen |= class;
        i += 1;
    }
    let local = if seen & COLON == 0 {
        from
    } else {
        bytes[from..i]
            .iter()
            .position(|&byte| byte == b':')
            .map_or(from, |colon| from + colon + 1)
    };
    (i, local)
}

/// True when the tag at the start of `bytes` ends inside a quoted attribute value.
fn open_quote(bytes: &[u8]) -> bool {
    let mut quote = None;
    for &byte in bytes {
        match quote {
            Some(q) if byte == q => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None => {}
        }
    }
    quote.is_some()
}

/// Where the `>` that ends a document type declaration is, in the bytes after `<!DOCTYPE`:
/// outside quotes and outside its internal subset (`[...]`).
fn doctype_end(bytes: &[u8]) -> Option<usize> {
    let mut quote = None;
    let mut depth = 0usize;
    for (i, &byte) in bytes.iter().enumerate() {
        match quote {
            Some(q) if byte == q => quote = None,
            Some(_) => {}
            None => match byte {
                b'"' | b'\'' => quote = Some(byte),
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b'>' if depth == 0 => return Some(i),
                _ => {}
            },
        }
    }
    None
}

/// How much of `piece` can come out now, so that no UTF-8 sequence, CRLF pair or (in text)
/// reference is split: the rest waits for the next piece.
fn safe_cut(piece: &[u8], references: bool) -> usize {
    let mut cut = piece.len();
    if references {
        if let Some(amp) = memchr::memrchr(b'&', piece) {
            if memchr::memchr(b';', &piece[amp..]).is_none() {
                cut = amp;
            }
        }
    }
    // Back off over UTF-8 continuation bytes and the lead byte they belong to.
    let mut start = cut;
    while start > 0 && cut - start < 4 && piece[start - 1] & 0xC0 == 0x80 {
        start -= 1;
    }
    if start > 0 && piece[start - 1] >= 0xC0 {
        let lead = piece[start - 1];
        let needed = if lead >= 0xF0 {
            4
        } else if lead >= 0xE0 {
            3
        } else {
            2
        };
        if cut - (start - 1) < needed {
            cut = start - 1;
        }
    }
    if cut > 0 && piece[cut - 1] == b'\r' {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every token of `xml` read through a reader that hands out `chunk` bytes at a time.
    fn tokens(xml: &[u8], chunk: usize) -> Result<Vec<String>, XmlError> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut tokenizer = Tokenizer::new(Trickle(xml, chunk));
        let mut out = Vec::new();
        loop {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            match tokenizer.next_token()? {
                Token::Start(tag) => {
                    let attributes: Vec<String> = tag
                        .attributes()
                        .map(|(k, v)| {
                            // The value as text is the value's bytes, where the tag is UTF-8.
                            assert!(v.text.is_none_or(|t| t.as_bytes() == v.bytes));
                            format!("{}={}", text(k), text(v.bytes))
                        })
                        .collect();
                    out.push(format!(
                        "<{}{}{}>",
                        text(tag.local_name()),
                        attributes
                            .iter()
                            .map(|a| format!(" {a}"))
                            .collect::<String>(),
                        if tag.empty { "/" } else { "" }
                    ));
                }
                Token::End => out.push("</>".to_owned()),
                Token::Text(t) => out.push(format!("text:{}", text(t))),
                Token::CData(t) => out.push(format!("cdata:{}", text(t))),
                Token::DocType(t) => out.push(format!("doctype:{}", text(t))),
                Token::Eof => return Ok(out),
            }
        }
    }

    #[test]
    fn tokens_are_the_same_whatever_the_reads() {
        let xml = "\u{feff}<?xml version=\"1.0\"?><!-- c --><!DOCTYPE x [<!ELEMENT x ANY>]><ns:a k='v &amp; w' j = \"2\"><b/>t&lt;ext<![CDATA[<raw> ]] ]]></ns:a >";
        let whole = tokens(xml.as_bytes(), usize::MAX).expect("tokenizes");
        assert_eq!(
            whole,
            [
                "doctype: x [<!ELEMENT x ANY>]",
                "<a k=v &amp; w j=2>",
                "<b/>",
                "text:t&lt;ext",
                "cdata:<raw> ]] ",
                "</>"
            ]
        );
        for chunk in 1..xml.len() {
            assert_eq!(
                tokens(xml.as_bytes(), chunk).expect("tokenizes"),
                whole,
                "{chunk}"
            );
        }
    }

    #[test]
    fn local_names_start_after_the_first_colon() {
        let xml = "<a:b:c x:y:z='1' :k='2' n:='3' plain='4'></a:b:c>";
        assert_eq!(
            tokens(xml.as_bytes(), usize::MAX).expect("tokenizes"),
            ["<b:c y:z=1 k=2 =3 plain=4>", "</>"]
        );
        assert!(
            tokens(b"<a:b></a:c>", usize::MAX).is_err(),
            "end tags match whole names"
        );
    }

    #[test]
    fn long_text_comes_out_in_pieces_that_split_no_character_or_reference() {
        let body = "é&amp;x\r\n".repeat(MAX_PIECE / 4);
        let xml = format!("<a>{body}</a>");
        let pieces = tokens(xml.as_bytes(), 4096).expect("tokenizes");
        assert!(pieces.len() > 3, "{}", pieces.len());
        let joined: String = pieces
            .iter()
            .filter_map(|p| p.strip_prefix("text:"))
            .collect();
        assert_eq!(joined, body);
        for piece in pieces.iter().filter_map(|p| p.strip_prefix("text:")) {
            assert!(!piece.contains('\u{fffd}'));
            assert!(piece.ends_with('\n') || !piece.ends_with('\r'));
        }
    }

    #[test]
    fn an_uncuttable_piece_grows_the_buffer_instead_of_looping() {
        let xml = format!("<a>&{}</a>", "x".repeat(3 * MAX_PIECE));
        let pieces = tokens(xml.as_bytes(), 64 * 1024).expect("tokenizes");
        assert_eq!(pieces.len(), 3, "{:?}", &pieces[..pieces.len().min(3)]);
    }

    #[test]
    fn errors_say_what_and_where() {
        let mismatched = tokens(b"<a>\n<b></a>", 7).expect_err("mismatched");
        assert_eq!(mismatched.offset, 7);
        assert_eq!(
            mismatched.kind.to_string(),
            "expected `</b>`, but `</a>` was found"
        );
        let cut = tokens(b"<a><b k=\"v", 3).expect_err("cut");
        assert_eq!(
            (cut.offset, cut.kind),
            (
                3,
                XmlErrorKind::Truncated("an attribute value is not closed")
            )
        );
        let unquoted = tokens(b"<a k=v>", 100).expect_err("unquoted");
        assert_eq!(unquoted.offset, 5);
        let stray = tokens(b"</a>", 100).expect_err("stray end tag");
        assert_eq!(stray.kind.to_string(), "`</a>` closes no open element");
    }
}
