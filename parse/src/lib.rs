//! Parsers for what test runners write: JUnit XML in every common dialect, pytest's text
//! output, Rust libtest text and JSON, `go test -json` and TAP. Each parser lives in its own
//! module and returns the one retry-aware model, `quick_junit::Report`, inside a [`Parsed`].

mod attempts;
mod bytes;
mod convert;
mod error;
mod format;
mod go_json;
mod handing;
mod input;
mod junit;
mod libtest_json;
mod libtest_text;
mod parsed;
mod pytest_text;
mod refold;
mod seen;
mod stream;
mod tap;
mod text;
mod view;

pub use convert::{to_junit_xml, PARTIAL_PROPERTY};
pub use error::ParseError;
pub use format::{Format, UnknownFormat};
pub use input::{
    open_regular, parse_bytes, parse_file, parse_reader, Limits, DEFAULT_MAX_REPORT_BYTES,
};
pub use parsed::{Parsed, Summary};
pub use stream::{hand_on, stream_bytes, stream_file, CaseSink, Fields, Streamed};
pub use view::{CaseView, Properties};
