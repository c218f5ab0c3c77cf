//! Live progress of `testmeter once` on a terminal: one spinner line per suite, waiting, running
//! and then its result, moved by the pipeline's events. Off when stderr is not a terminal; log
//! lines print above the bars.

use std::io::{IsTerminal as _, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::SuiteConfig;
use crate::pipeline::{Consumer, Event, SuiteOutcome};

/// The bars being drawn, for the log writer to print around.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// True when progress would be drawn: stderr is a terminal that can redraw lines.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
}

/// One progress line per suite, in config order, moved by the pipeline's events.
#[derive(Debug)]
pub struct Progress {
    bars: Vec<(String, ProgressBar)>,
    width: usize,
}

impl Progress {
    /// A line per suite, each `waiting` until its run starts.
    pub fn new(suites: &[SuiteConfig]) -> Self {
        let multi =
            BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let width = suites
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let style = ProgressStyle::with_template(&format!(
            "{{spinner:.cyan}} {{prefix:<{width}}}  {{elapsed:>4}}  {{wide_msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = suites
            .iter()
            .map(|suite| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(suite.name.clone());
                bar.set_message("waiting");
                (suite.name.clone(), bar)
            })
            .collect();
        Self { bars, width }
    }

    fn bar(&self, suite: &str) -> Option<&ProgressBar> {
        self.bars
            .iter()
            .find(|(name, _)| name == suite)
            .map(|(_, bar)| bar)
    }
}

impl Consumer for Progress {
    fn on(&self, event: &Event<'_>) {
        match event {
            Event::SuiteStarted { suite } => {
                if let Some(bar) = self.bar(&suite.name) {
                    bar.set_message(format!(
                        "running {} ({})",
                        suite.system,
                        suite.command.join(" ")
                    ));
                    bar.enable_steady_tick(Duration::from_millis(100));
                }
            }
            Event::SuiteFinished { outcome, .. } => {
                if let Some(bar) = self.bar(&outcome.suite) {
                    let width = self.width;
                    bar.set_style(
                        ProgressStyle::with_template(&format!(
                            "  {{prefix:<{width}}}  {{wide_msg}}"
                        ))
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.finish_with_message(result_line(outcome));
                }
            }
            Event::PluginsLoaded { .. } | Event::Cases { .. } | Event::SuiteSkipped { .. } => {}
        }
    }
}

/// `✓ 15 passed, 0 failed … in 1.85s` or why the suite did not run.
fn result_line(outcome: &SuiteOutcome) -> String {
    match &outcome.run {
        Ok(run) => {
            let counts = run.summary;
            let mark = if run.passed() && outcome.succeeded() {
                "✓"
            } else {
                "✗"
            };
            format!(
                "{mark} {} passed, {} failed, {} errored, {} skipped in {:.2}s",
                counts.passed,
                counts.failed,
                counts.errored,
                counts.skipped,
                outcome.duration.as_secs_f64()
            )
        }
        Err(_) => format!("✗ could not run ({:.2}s)", outcome.duration.as_secs_f64()),
    }
}

/// The log's writer: stderr, with the progress bars cleared while a line is written so log
/// lines and bars never overwrite each other.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}
