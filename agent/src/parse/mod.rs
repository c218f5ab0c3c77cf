//! Test report parsers: one file per format, each returning the one JUnit model
//! (`quick_junit::Report`).

pub mod junit;

pub use junit::{parse_junit_file, ParseError};
