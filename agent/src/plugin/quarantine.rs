//! The fail policy across runs: a plugin that fails `after` derivations in a row is
//! quarantined, then retried once its backoff has passed; each failed retry doubles the backoff
//! up to a cap, and one success clears it all.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a plugin stays quarantined before it is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    quarantines: u32,
    until: Option<Instant>,
}

/// Whether a plugin may derive now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Blocked { failures: u32, retry_in: Duration },
}

/// How a recorded outcome changed the plugin's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    Quarantined { failures: u32, backoff: Duration },
    Released,
}

#[derive(Debug)]
pub struct Quarantine {
    after: u32,
    base: Duration,
    states: Mutex<BTreeMap<String, State>>,
}

impl Quarantine {
    pub fn new(after: u32, base: Duration) -> Self {
        Self {
            after: after.max(1),
            base,
            states: Mutex::new(BTreeMap::new()),
        }
    }

    fn with_state<T>(&self, plugin: &str, f: impl FnOnce(&mut State) -> T) -> T {
        let mut states = self
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(states.entry(plugin.to_owned()).or_default())
    }

    pub fn admit(&self, plugin: &str, now: Instant) -> Admission {
        self.with_state(plugin, |state| match state.until {
            Some(until) if until > now => Admission::Blocked {
                failures: state.consecutive_failures,
                retry_in: until - now,
            },
            _ => Admission::Allowed,
        })
    }

    pub fn record(&self, plugin: &str, success: bool, now: Instant) -> Transition {
        let (after, base) = (self.after, self.base);
        self.with_state(plugin, |state| {
            if success {
                let was_quarantined = state.quarantines > 0;
                *state = State::default();
                return if was_quarantined {
                    Transition::Released
                } else {
                    Transition::Unchanged
                };
            }
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            if state.consecutive_failures < after {
                return Transition::Unchanged;
            }
            let doublings = state.quarantines.min(16);
            state.quarantines = state.quarantines.saturating_add(1);
            let backoff = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
            state.until = Some(now + backoff);
            Transition::Quarantined {
                failures: state.consecutive_failures,
                backoff,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantines_after_consecutive_failures_and_backs_off_until_a_success() {
        let q = Quarantine::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(q.record("p", false, t0), Transition::Unchanged);
        assert_eq!(
            q.record("p", true, t0),
            Transition::Unchanged,
            "a success resets the count"
        );
        assert_eq!(q.record("p", false, t0), Transition::Unchanged);
        assert_eq!(q.record("p", false, t0), Transition::Unchanged);
        assert_eq!(
            q.record("p", false, t0),
            Transition::Quarantined {
                failures: 3,
                backoff: Duration::from_secs(10)
            }
        );
        assert_eq!(
            q.admit("p", t0 + Duration::from_secs(4)),
            Admission::Blocked {
                failures: 3,
                retry_in: Duration::from_secs(6)
            }
        );
        assert_eq!(
            q.admit("other", t0),
            Admission::Allowed,
            "plugins are independent"
        );
        let retry = t0 + Duration::from_secs(10);
        assert_eq!(
            q.admit("p", retry),
            Admission::Allowed,
            "retried once the backoff passed"
        );
        assert_eq!(
            q.record("p", false, retry),
            Transition::Quarantined {
                failures: 4,
                backoff: Duration::from_secs(20)
            },
            "a failed retry doubles the backoff"
        );
        let later = retry + Duration::from_secs(20);
        assert_eq!(q.record("p", true, later), Transition::Released);
        assert_eq!(q.admit("p", later), Admission::Allowed);
    }

    #[test]
    fn backoff_is_capped() {
        let q = Quarantine::new(1, Duration::from_secs(1000));
        let now = Instant::now();
        let mut last = Transition::Unchanged;
        for _ in 0..10 {
            last = q.record("p", false, now);
        }
        assert_eq!(
            last,
            Transition::Quarantined {
                failures: 10,
                backoff: MAX_BACKOFF
            }
        );
    }
}
