//! The agent's own metrics, read from the pipeline's events: suite runs and their tests,
//! artifacts dropped, each plugin's calls, errors, rejected samples and quarantine, loads and
//! reloads.

use crate::export::SelfMetrics;
use crate::pipeline::{Consumer, Event, Loaded, SuiteOutcome};
use crate::plugin::quarantine::Transition;

impl Consumer for SelfMetrics {
    fn on(&self, event: &Event<'_>) {
        match event {
            Event::PluginsLoaded { loaded, reload } => self.loaded(loaded, *reload),
            Event::SuiteStarted { .. } | Event::Cases { .. } => {}
            Event::SuiteFinished { outcome, .. } => self.finished(outcome),
            Event::SuiteSkipped {
                suite,
                reason,
                count,
            } => self.suite_skipped(suite, reason, *count),
        }
    }
}

impl SelfMetrics {
    fn loaded(&self, loaded: &Loaded, reload: bool) {
        let set = &loaded.set;
        for failure in &set.load_failures {
            self.plugin_error(&failure.label(), failure.error.reason());
        }
        for plugin in &set.plugins {
            self.plugin_loaded(&plugin.decl.name, &plugin.decl.version, plugin.wit.as_str());
        }
        for error in &set.catalog_errors {
            self.plugin_error(error.plugin(), "invalid");
        }
        if reload {
            let result = if set.load_failures.is_empty() {
                "ok"
            } else {
                "partial"
            };
            self.plugin_reload(result);
        }
    }

    fn finished(&self, outcome: &SuiteOutcome) {
        let suite = outcome.suite.as_str();
        for dropped in &outcome.dropped_artifacts {
            self.artifact_dropped(suite, dropped.reason);
        }
        let trace = outcome.sent_trace().map(|t| &t.span);
        let duration = match &outcome.run {
            Ok(record) => {
                self.suite_tests(suite, &record.summary);
                if let Some(bytes) = record.peak_rss_bytes {
                    self.suite_peak_rss(suite, bytes);
                }
                record.duration
            }
            Err(_) => outcome.duration,
        };
        for plugin in &outcome.plugins {
            let name = plugin.plugin.as_str();
            // A plugin that sat the run out (quarantined) made no call and no new error.
            let Some(busy) = plugin.busy else {
                continue;
            };
            self.plugin_call(name, busy, trace);
            for rejection in &plugin.rejected {
                self.sample_rejected(name, rejection.reason());
            }
            if let Err(error) = &plugin.result {
                self.plugin_error(name, error.reason());
            }
            match plugin.quarantine {
                Transition::Unchanged => {}
                Transition::Quarantined { .. } => self.plugin_quarantined(name, true),
                Transition::Released => self.plugin_quarantined(name, false),
            }
        }
        self.suite_run(suite, outcome.result(), duration, trace);
        if outcome.succeeded() {
            self.suite_success(suite, outcome.finished_at);
        }
    }
}
