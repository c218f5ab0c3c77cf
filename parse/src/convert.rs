//! The parsed model written back as one clean JUnit XML document (quick-junit's writer):
//! one `<testcase>` per test, earlier attempts as `<flakyFailure>`/`<rerunFailure>`, totals
//! counted per test, and each suite of a partial run marked with a `testmeter.partial` property
//! giving the reasons that concern it.

use quick_junit::{Property, SerializeError};

use crate::parsed::Parsed;

/// The suite property that marks a report whose run ended early.
pub const PARTIAL_PROPERTY: &str = "testmeter.partial";

/// Serialises a parsed report as JUnit XML.
/// Each suite carries the reasons that concern it (`Parsed::partial_of`).
pub fn to_junit_xml(parsed: &Parsed) -> Result<String, SerializeError> {
    if parsed.partial.is_none() {
        return parsed.report.to_string();
    }
    let mut report = parsed.report.clone();
    for suite in &mut report.test_suites {
        if let Some(reason) = parsed.partial_of(suite.name.as_str()) {
            suite
                .properties
                .push(Property::new(PARTIAL_PROPERTY, reason));
        }
    }
    report.to_string()
}
