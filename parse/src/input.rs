//! Entry points: read a report from a file, bytes or a stream within a size cap, pick the
//! parser for its format, and turn byte offsets into line and column for errors.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::ParseError;
use crate::format::Format;
use crate::parsed::Parsed;
use crate::text::Text;
use crate::{handing, junit};

/// Reports larger than this are refused unless the limit is raised. JUnit XML and TAP are
/// streamed in flat memory whatever their size, and so are the text formats, so the default
/// admits a 1,000,000-case pytest report (about 450 MB).
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 1024 * 1024 * 1024;

/// Resource limits for parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest report accepted, in bytes.
    pub max_report_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
        }
    }
}

/// A report file, opened and checked: its size within the limit, its format known.
pub(crate) struct Opened {
    pub reader: BufReader<std::io::Take<File>>,
    pub size: u64,
    pub format: Format,
}

/// Opens the file at `path` for reading when it is a regular file. A FIFO, a device or a
/// directory at a report path (a suite can leave one there) is refused: opening a FIFO for
/// reading would block until a writer came, and reading a device might never end. The open
/// itself does not block (`O_NONBLOCK`, which changes nothing for a regular file), and the
/// check is made on the file opened, not on the path, so the path cannot be swapped between.
pub fn open_regular(path: &Path) -> Result<File, ParseError> {
    let read_error = |source| ParseError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(read_error)?;
    let kind = file.metadata().map_err(read_error)?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(ParseError::NotAFile {
        path: path.to_path_buf(),
        kind: kind_of(kind),
    })
}

/// What a file that is not a regular file is, for the error.
fn kind_of(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Opens a report file: refuses one that is not a regular file, over the limit or empty, and
/// detects its format.
pub(crate) fn open(path: &Path, format: Format, limits: Limits) -> Result<Opened, ParseError> {
    let read_error = |source| ParseError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = open_regular(path)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > limits.max_report_bytes {
        return Err(ParseError::TooLarge {
            size,
            limit: limits.max_report_bytes,
        });
    }
    if size == 0 {
        return Err(ParseError::Empty);
    }
    let mut reader = BufReader::with_capacity(64 * 1024, file.take(limits.max_report_bytes));
    let format = match format {
        Format::Auto => {
            let head = reader.fill_buf().map_err(read_error)?;
            Format::detect(head).ok_or(ParseError::Unrecognised)?
        }
        format => format,
    };
    Ok(Opened {
        reader,
        size,
        format,
    })
}

/// Maps an offset in the file at `path` to line and column, reading it again: only called
/// when something is wrong.
pub(crate) fn locate_in_file(path: &Path) -> impl Fn(u64) -> (u64, u64) + '_ {
    move |offset: u64| {
        open_regular(path)
            .map(|file| line_column_of_reader(BufReader::new(file), offset))
            .unwrap_or((0, 0))
    }
}

/// Parses a report file whole. The file itself is never held: JUnit XML is read as a stream
/// and the text formats line by line, so memory holds the report's cases, not its bytes.
pub fn parse_file(path: &Path, format: Format, limits: Limits) -> Result<Parsed, ParseError> {
    let opened = open(path, format, limits)?;
    let text = Text::File {
        path,
        format: opened.format,
        limits,
    };
    match handing::parse_format(opened.format, &text, opened.size) {
        Some(parsed) => parsed,
        None => junit::parse(opened.reader, opened.size, &locate_in_file(path)),
    }
}

/// Checks a report held in memory against the limit and detects its format.
pub(crate) fn check_bytes(
    bytes: &[u8],
    format: Format,
    limits: Limits,
) -> Result<Format, ParseError> {
    let size = bytes.len() as u64;
    if size > limits.max_report_bytes {
        return Err(ParseError::TooLarge {
            size,
            limit: limits.max_report_bytes,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    Ok(match format {
        Format::Auto => Format::detect(bytes).ok_or(ParseError::Unrecognised)?,
        format => format,
    })
}

/// Parses a report held in memory.
pub fn parse_bytes(bytes: &[u8], format: Format, limits: Limits) -> Result<Parsed, ParseError> {
    let format = check_bytes(bytes, format, limits)?;
    if format == Format::Junit {
        let locate = |offset: u64| line_column(bytes, offset);
        return junit::parse(bytes, bytes.len() as u64, &locate);
    }
    parse_text(format, bytes)
}

/// Parses a report from a stream (stdin), reading at most the limit.
pub fn parse_reader(
    reader: impl Read,
    format: Format,
    limits: Limits,
) -> Result<Parsed, ParseError> {
    let mut bytes = Vec::new();
    reader
        .take(limits.max_report_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| ParseError::Read {
            path: "-".into(),
            source,
        })?;
    parse_bytes(&bytes, format, limits)
}

fn parse_text(format: Format, bytes: &[u8]) -> Result<Parsed, ParseError> {
    match handing::parse_format(format, &Text::Bytes(bytes), bytes.len() as u64) {
        Some(parsed) => parsed,
        None => {
            let locate = |offset: u64| line_column(bytes, offset);
            junit::parse(bytes, bytes.len() as u64, &locate)
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(bytes: &[u8], offset: u64) -> (u64, u64) {
    let end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    line_column_of_reader(&bytes[..end], offset)
}

fn line_column_of_reader(mut reader: impl BufRead, offset: u64) -> (u64, u64) {
    let mut line = 1u64;
    let mut column = 1u64;
    let mut remaining = offset;
    while remaining > 0 {
        let Ok(chunk) = reader.fill_buf() else { break };
        if chunk.is_empty() {
            break;
        }
        let take = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        for &byte in &chunk[..take] {
            if byte == b'\n' {
                line += 1;
                column = 1;
            } else if byte & 0xC0 != 0x80 {
                // Count characters, not UTF-8 continuation bytes.
                column += 1;
            }
        }
        reader.consume(take);
        remaining -= take as u64;
    }
    (line, column)
}
