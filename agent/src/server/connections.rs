//! What keeps the endpoint's connections bounded: a cap on open connections kept under the
//! open-file limit, the idle ones evicted first when a new one needs room, back-off with one
//! rate-limited log line when `accept` fails, and the soft open-file limit raised to the hard
//! one at start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Descriptors kept free for what is not a connection: suites' pipes and reports, plugin
/// files, the OTLP exporter, logs.
pub const FD_RESERVE: usize = 256;

/// The fewest connections the endpoint accepts, however low the open-file limit.
const MIN_CONNECTIONS: usize = 8;

/// Counts one refused or failed connection under its `reason` (`limit`, `evicted`, `accept`,
/// `timeout`).
pub type OnConnectionError = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Limits on the endpoint's connections (`[prometheus]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub max_connection_age: Duration,
}

impl ConnectionLimits {
    /// These limits with `max_connections` lowered, if need be, to leave [`FD_RESERVE`]
    /// descriptors under `open_files` (the soft open-file limit).
    pub fn within(self, open_files: Option<u64>) -> Self {
        let Some(open_files) = open_files.and_then(|n| usize::try_from(n).ok()) else {
            return self;
        };
        let room = open_files.saturating_sub(FD_RESERVE).max(MIN_CONNECTIONS);
        Self {
            max_connections: self.max_connections.min(room),
            ..self
        }
    }
}

/// The open connections, and which of them wait idle for a request: when the cap is reached,
/// the one idle longest is closed to make room, so connections that never send a request
/// (or kept-alive ones between scrapes) cannot keep a scraper out. A connection serving a
/// request is never evicted.
#[derive(Debug, Default)]
pub struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Slot>>,
}

#[derive(Debug)]
struct Slot {
    /// Since when it waits for a request; `None` while it serves one, or once evicted.
    idle_since: Option<Instant>,
    evict: Arc<Notify>,
}

/// One open connection's place in [`Connections`]; leaves it when dropped.
#[derive(Debug)]
pub struct Opened {
    id: u64,
    connections: Arc<Connections>,
    /// Notified when the connection is evicted.
    pub evicted: Arc<Notify>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection, idle until its first request.
    pub fn open(self: &Arc<Self>, now: Instant) -> Opened {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evicted = Arc::new(Notify::new());
        self.lock().insert(
            id,
            Slot {
                idle_since: Some(now),
                evict: Arc::clone(&evicted),
            },
        );
        Opened {
            id,
            connections: Arc::clone(self),
            evicted,
        }
    }

    /// Closes the connection idle longest; false when every connection is serving a request.
    pub fn evict_idlest(&self) -> bool {
        let mut open = self.lock();
        let idlest = open
            .values_mut()
            .filter(|slot| slot.idle_since.is_some())
            .min_by_key(|slot| slot.idle_since);
        match idlest {
            Some(slot) => {
                slot.idle_since = None;
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Opened {
    /// The connection serves a request from now (`busy`), or waits for the next one.
    pub fn serving(&self, busy: bool) {
        if let Some(slot) = self.connections.lock().get_mut(&self.id) {
            slot.idle_since = (!busy).then(Instant::now);
        }
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard one, and returns the soft
/// limit now in force (`None` when it is unlimited or cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// How long the accept loop waits after `accept` fails (out of descriptors, most likely), so a
/// failing `accept` never spins: 10 ms, doubling to 1 s, back to 10 ms after a success.
#[derive(Debug)]
pub struct AcceptBackoff {
    delay: Duration,
    failures: LogEvery,
}

const FIRST_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);

/// At most one log line per this long for repeated connection failures.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self {
            delay: FIRST_DELAY,
            failures: LogEvery::default(),
        }
    }
}

impl AcceptBackoff {
    /// A failure at `now`: how long to wait before accepting again, and how many failures to
    /// report in a log line now (none when one was written within [`LOG_EVERY`]).
    pub fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        let wait = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        (wait, self.failures.happened(now))
    }

    /// A connection was accepted: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.delay = FIRST_DELAY;
    }
}

/// A count of repeated events logged at most once per [`LOG_EVERY`]: each line reports every
/// event since the last one.
#[derive(Debug, Default)]
pub struct LogEvery {
    unlogged: u64,
    logged: Option<Instant>,
}

impl LogEvery {
    /// One event at `now`: how many to report in a log line now, if one is due.
    pub fn happened(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        let due = self
            .logged
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY);
        due.then(|| {
            self.logged = Some(now);
            std::mem::take(&mut self.unlogged)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn failing_accepts_back_off_to_a_second_and_log_once_a_minute() {
        let mut backoff = AcceptBackoff::default();
        let start = Instant::now();
        let waits: Vec<(u128, Option<u64>)> = (0..9)
            .map(|i| {
                let (wait, report) = backoff.failed(start + Duration::from_millis(i * 100));
                (wait.as_millis(), report)
            })
            .collect();
        assert_eq!(
            waits,
            [
                (10, Some(1)),
                (20, None),
                (40, None),
                (80, None),
                (160, None),
                (320, None),
                (640, None),
                (1000, None),
                (1000, None),
            ]
        );
        let (_, report) = backoff.failed(start + LOG_EVERY);
        assert_eq!(
            report,
            Some(9),
            "the next line reports every failure since the last"
        );
        backoff.succeeded();
        assert_eq!(backoff.failed(start + LOG_EVERY).0, FIRST_DELAY);
    }

    #[test]
    fn the_connection_idle_longest_is_evicted_and_a_busy_one_never() {
        let connections = Arc::new(Connections::default());
        let start = Instant::now();
        let old = connections.open(start);
        let newer = connections.open(start + Duration::from_secs(1));
        old.serving(true);
        assert!(connections.evict_idlest());
        // The idle one was told, not the one serving a request.
        assert!(tokio_test_notified(&newer.evicted));
        assert!(!tokio_test_notified(&old.evicted));
        assert!(!connections.evict_idlest(), "only a busy one is left");
        drop(old);
        assert!(connections.lock().len() == 1, "a dropped connection leaves");
    }

    /// Whether `notify` holds a notification, without waiting.
    fn tokio_test_notified(notify: &Notify) -> bool {
        let notified = notify.notified();
        let mut notified = std::pin::pin!(notified);
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        notified.as_mut().poll(&mut context).is_ready()
    }

    #[test]
    fn the_cap_leaves_descriptors_for_suites() {
        let limits = ConnectionLimits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(300),
        };
        assert_eq!(limits.within(Some(1024)).max_connections, 256);
        assert_eq!(limits.within(Some(400)).max_connections, 144);
        assert_eq!(limits.within(Some(100)).max_connections, MIN_CONNECTIONS);
        assert_eq!(limits.within(None).max_connections, 256);
    }
}
