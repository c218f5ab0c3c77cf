//! When suites run under `testmeter run`: each on its own interval plus a random jitter,
//! never overlapping itself (a run that is due while the previous one is still going is
//! skipped and counted), and no more than `max_concurrent_suites` at a time. The schedule
//! follows config reloads suite by suite, and stops with a grace period for running suites.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::SuiteConfig;
use crate::pipeline::Pipeline;

/// A small xorshift generator for jitter: spreading runs needs no cryptographic randomness.
struct Jitter(u64);

impl Jitter {
    fn new(suite: &str) -> Self {
        let mut hasher = DefaultHasher::new();
        suite.hash(&mut hasher);
        std::process::id().hash(&mut hasher);
        std::time::SystemTime::now().hash(&mut hasher);
        Self(hasher.finish() | 1)
    }

    /// A duration in `[0, max)`.
    fn next(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.0 % nanos)
    }
}

/// How many due times passed, from `due` on, while a run that ended at `now` was going.
fn missed(due: Instant, now: Instant, interval: Duration) -> u64 {
    if now < due {
        return 0;
    }
    let late = now.duration_since(due);
    1 + u64::try_from(late.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u64::MAX)
}

/// What a config reload changed, by suite name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

struct Scheduled {
    config: SuiteConfig,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The running schedule: one task per suite, each stoppable on its own.
pub struct Scheduler {
    pipeline: Arc<Pipeline>,
    permits: Arc<Semaphore>,
    suites: BTreeMap<String, Scheduled>,
}

impl Scheduler {
    /// Schedules every suite of the agent's config.
    pub fn start(pipeline: Arc<Pipeline>) -> Self {
        let permits = Arc::new(Semaphore::new(pipeline.config.max_concurrent_suites));
        let mut scheduler = Self {
            pipeline,
            permits,
            suites: BTreeMap::new(),
        };
        let suites = scheduler.pipeline.config.suites.clone();
        scheduler.apply(&suites);
        scheduler
    }

    fn spawn(&mut self, config: SuiteConfig) {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_suite_forever(
            Arc::clone(&self.pipeline),
            config.clone(),
            Arc::clone(&self.permits),
            stopped,
        ));
        self.suites
            .insert(config.name.clone(), Scheduled { config, stop, task });
    }

    /// Brings the schedule in line with `suites`: new suites start, removed ones stop, and a
    /// changed one is restarted with its new config. A run in progress always finishes.
    pub fn apply(&mut self, suites: &[SuiteConfig]) -> Changes {
        let mut changes = Changes::default();
        let wanted: BTreeMap<&str, &SuiteConfig> =
            suites.iter().map(|s| (s.name.as_str(), s)).collect();
        let current: Vec<String> = self.suites.keys().cloned().collect();
        for name in current {
            match wanted.get(name.as_str()) {
                Some(config) if self.suites[&name].config == **config => {}
                Some(_) => changes.changed.push(name),
                None => changes.removed.push(name),
            }
        }
        for name in changes.changed.iter().chain(&changes.removed) {
            if let Some(old) = self.suites.remove(name) {
                // The old task finishes its current run, if any, then ends on its own.
                let _ = old.stop.send(true);
            }
        }
        for suite in suites {
            if !self.suites.contains_key(&suite.name) {
                if !changes.changed.contains(&suite.name) {
                    changes.added.push(suite.name.clone());
                }
                self.spawn(suite.clone());
            }
        }
        changes
    }

    /// Stops scheduling, waits up to `grace` for running suites to finish, and kills what is
    /// still running after it. Returns the names of the suites that had to be killed.
    pub async fn shutdown(self, grace: Duration) -> Vec<String> {
        for suite in self.suites.values() {
            let _ = suite.stop.send(true);
        }
        let deadline = Instant::now() + grace;
        let mut killed = Vec::new();
        for (name, suite) in self.suites {
            let mut task = suite.task;
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                // Dropping the run kills its process group (see runner::process).
                task.abort();
                let _ = task.await;
                killed.push(name);
            }
        }
        killed
    }
}

async fn run_suite_forever(
    pipeline: Arc<Pipeline>,
    suite: SuiteConfig,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut jitter = Jitter::new(&suite.name);
    // The first run starts at once; later ones every interval plus jitter.
    let mut due = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            _ = stop.changed() => return,
        }
        let permit = tokio::select! {
            permit = permits.acquire() => match permit {
                Ok(permit) => permit,
                Err(_closed) => return,
            },
            _ = stop.changed() => return,
        };
        if *stop.borrow() {
            return;
        }
        pipeline.run_suite(&suite).await;
        drop(permit);
        // The run's report and its copies were just freed; a large suite's would otherwise
        // stay in the daemon's resident size until the next run reuses it.
        crate::plugin::trim_heap();
        let now = Instant::now();
        due += suite.interval + jitter.next(suite.jitter());
        // Due times that passed during the run are skipped, never run late back to back.
        let skipped = missed(due, now, suite.interval);
        if skipped > 0 {
            due += suite.interval * u32::try_from(skipped).unwrap_or(u32::MAX);
            pipeline.skipped(&suite.name, "overlap", skipped);
            tracing::warn!(
                suite = suite.name,
                skipped,
                interval = ?suite.interval,
                "suite run outlasted its interval; the runs due meanwhile were skipped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_its_bound() {
        let mut jitter = Jitter::new("s");
        let max = Duration::from_millis(100);
        assert!((0..1000).all(|_| jitter.next(max) < max));
        assert_eq!(jitter.next(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn counts_the_due_times_a_long_run_covered() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(missed(start + second, start, second), 0);
        assert_eq!(missed(start, start, second), 1);
        assert_eq!(missed(start, start + second * 2 + second / 2, second), 3);
    }
}
