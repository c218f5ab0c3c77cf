//! Fuzzes the libtest_json parser: any input gives a report or an error, never a panic, and a parsed
//! report always converts to JUnit XML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use testmeter_parse::{parse_bytes, to_junit_xml, Format, Limits, Summary};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_bytes(data, Format::LibtestJson, Limits::default()) {
        let summary = Summary::of(&parsed.report);
        assert!(summary.attempts >= summary.tests);
        let _ = to_junit_xml(&parsed);
    }
});
