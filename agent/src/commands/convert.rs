//! `testmeter convert`: any supported report written as one clean JUnit XML document.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use testmeter::log::error_chain;
use testmeter::parse::{self, Format, Limits};

pub fn run(report: &Path, format: Format, output: Option<&Path>, limits: Limits) -> ExitCode {
    let parsed = if report == Path::new("-") {
        parse::parse_reader(std::io::stdin().lock(), format, limits)
    } else {
        parse::parse_file(report, format, limits)
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!(
                "error: failed to parse {}: {}",
                report.display(),
                error_chain(&error)
            );
            return ExitCode::from(1);
        }
    };
    if let Some(reason) = &parsed.partial {
        eprintln!("warning: partial run: {reason}");
    }
    let written = parse::to_junit_xml(&parsed)
        .map_err(anyhow::Error::from)
        .and_then(|xml| match output {
            Some(path) => super::write_atomically(path, xml.as_bytes()),
            None => Ok(std::io::stdout().write_all(xml.as_bytes())?),
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
