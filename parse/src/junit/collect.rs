//! Reading a JUnit report whole: every case kept in its suite, retries folded at the end.

use std::io::Read;

use super::case::{merge_teardown, Builder, OpenCase};
use super::reader::{read, Cases, Locate, SuiteSlot};
use crate::attempts::{finish_report, EarlierPass};
use crate::error::ParseError;
use crate::parsed::Parsed;
use crate::stream::Fields;

/// Keeps each case in its suite.
struct Collect;

impl Cases for Collect {
    const KEEPS_CASES: bool = true;
    type Stop = std::convert::Infallible;

    fn push(
        &mut self,
        suites: &mut [SuiteSlot],
        suite: usize,
        case: &mut OpenCase,
        builder: &mut Builder,
    ) -> Result<(), Self::Stop> {
        let case = builder.build(case, Fields::ALL);
        let cases = &mut suites[suite].suite.test_cases;
        if let Some(case) = merge_teardown(cases.last_mut(), case, Fields::ALL) {
            cases.push(case);
        }
        Ok(())
    }

    fn suite_closed(&mut self, _suites: &mut [SuiteSlot], _suite: usize) {}

    fn end(&mut self, _suites: &mut [SuiteSlot]) {}
}

/// Parses a whole JUnit report, every field of every case kept.
pub(crate) fn parse<R: Read + Send>(
    input: R,
    input_size: u64,
    locate: Locate<'_>,
) -> Result<Parsed, ParseError> {
    let ending = match read(input, input_size, locate, Fields::ALL, &mut Collect)? {
        Ok(ending) => ending,
        Err(never) => match never {},
    };
    Ok(Parsed {
        report: finish_report(ending.report, EarlierPass::Failed),
        partial: ending.partial,
        suite_partial: Default::default(),
    })
}
