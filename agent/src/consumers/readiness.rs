//! Readiness: which suites have not finished a run since the agent started, for `/readyz`.

use crate::pipeline::{Consumer, Event};

/// Which suites have not finished a run since the agent started: `/readyz` answers 503 until
/// every suite has, so a scrape after readiness sees real values.
#[derive(Debug, Default)]
pub struct Readiness {
    pending: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Readiness {
    pub fn new<'a>(suites: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            pending: std::sync::Mutex::new(suites.into_iter().map(str::to_owned).collect()),
        }
    }

    /// Marks a suite's first run as done.
    pub fn ran(&self, suite: &str) {
        self.lock().remove(suite);
    }

    /// The suites still waiting for their first run.
    pub fn pending(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Consumer for Readiness {
    fn on(&self, event: &Event<'_>) {
        if let Event::SuiteFinished { outcome, .. } = event {
            self.ran(&outcome.suite);
        }
    }
}
