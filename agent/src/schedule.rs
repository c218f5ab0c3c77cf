//! When suites run under `testmeter run`: each on its own interval plus a random jitter,
//! never overlapping itself (a run that is due while the previous one is still going is
//! skipped and counted), and no more than `max_concurrent_suites` at a time.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::agent::Agent;

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

/// Runs every suite of the config on its schedule until the task is aborted.
pub async fn run_forever(agent: Arc<Agent>) {
    let permits = Arc::new(Semaphore::new(agent.config.max_concurrent_suites));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..agent.config.suites.len() {
        let agent = Arc::clone(&agent);
        let permits = Arc::clone(&permits);
        tasks.spawn(async move { run_suite_forever(&agent, index, &permits).await });
    }
    while tasks.join_next().await.is_some() {}
}

async fn run_suite_forever(agent: &Agent, index: usize, permits: &Semaphore) {
    let suite = &agent.config.suites[index];
    let mut jitter = Jitter::new(&suite.name);
    // The first run starts at once; later ones every interval plus jitter.
    let mut due = Instant::now();
    loop {
        tokio::time::sleep_until(due).await;
        let Ok(permit) = permits.acquire().await else {
            return;
        };
        agent.run_suite(suite).await;
        drop(permit);
        let now = Instant::now();
        due += suite.interval + jitter.next(suite.jitter());
        // Due times that passed during the run are skipped, never run late back to back.
        let skipped = missed(due, now, suite.interval);
        if skipped > 0 {
            due += suite.interval * u32::try_from(skipped).unwrap_or(u32::MAX);
            agent
                .self_metrics
                .suite_skipped(&suite.name, "overlap", skipped);
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
