//! The parsed model written back as one clean JUnit XML document (quick-junit's writer):
//! one `<testcase>` per test, earlier attempts as `<flakyFailure>`/`<rerunFailure>`, totals
//! counted per test, and a partial run marked with a `testmeter.partial` suite property.

use quick_junit::{Property, SerializeError};

use crate::parsed::Parsed;

/// The suite property that marks a report whose run ended early.
pub const PARTIAL_PROPERTY: &str = "testmeter.partial";

/// Serialises a parsed report as JUnit XML.
pub fn to_junit_xml(parsed: &Parsed) -> Result<String, SerializeError> {
    match &parsed.partial {
        None => parsed.report.to_string(),
        Some(reason) => {
            let mut report = parsed.report.clone();
            for suite in &mut report.test_suites {
                suite
                    .properties
                    .push(Property::new(PARTIAL_PROPERTY, reason.as_str()));
            }
            report.to_string()
        }
    }
}
