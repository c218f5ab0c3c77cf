//! JUnit XML in the dialects real runners write (pytest xunit1/xunit2 and its old bare
//! `<testsuite>` root, Surefire, nextest, gotestsum, jest-junit, Playwright, node:test), read
//! with our own streaming tokenizer into `quick_junit` cases: kept in a whole `Report`, or
//! handed on one by one as views of the reader's buffer (`crate::stream`).
//!
//! The reader never builds a DOM and never expands entities: a document type that declares
//! entities is refused (no entity bombs, no external entities), nesting is capped, and text is
//! decoded lossily so a report with stray non-UTF-8 bytes still parses. A document that stops
//! early (a killed suite) yields the cases that were complete, marked partial.

mod case;
mod chunks;
mod collect;
mod reader;
mod values;
mod xml;
#[cfg(test)]
mod xml_differential;

pub(crate) use case::{merge_teardown, Builder, OpenCase};
pub(crate) use collect::parse;
pub(crate) use reader::{read, Cases, Ending, Locate, SuiteSlot};
