//! The engine's epoch clock: a thread that advances the epoch every tick while a plugin store is
//! live, and sleeps while none is, so an agent waiting on a suite or idle between runs is never
//! woken by it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// How often the epoch advances while a store is live; the unit of a call's CPU deadline.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What the ticking thread waits on.
#[derive(Debug, Default)]
struct Live {
    /// Stores that hold a [`Ticking`].
    stores: usize,
    stopping: bool,
    /// Epochs advanced so far (for tests).
    #[cfg(test)]
    ticks: u64,
}

#[derive(Debug, Default)]
struct Shared {
    live: Mutex<Live>,
    changed: Condvar,
}

impl Shared {
    /// The state, also after a panic elsewhere while it was held (it holds two plain counters).
    fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] while a [`Ticking`] of it is alive; stops
/// the thread when dropped.
#[derive(Debug)]
pub(crate) struct EpochClock {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl EpochClock {
    pub(crate) fn start(engine: Engine) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("testmeter-epoch".to_owned())
                .spawn(move || tick(&engine, &shared))?
        };
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Keeps the epoch advancing until the returned value is dropped. A store holds one for
    /// its whole life, so no guest code runs without a deadline that can expire.
    pub(crate) fn hold(&self) -> Ticking {
        let mut live = self.shared.lock();
        live.stores += 1;
        if live.stores == 1 {
            self.shared.changed.notify_all();
        }
        Ticking(Arc::clone(&self.shared))
    }
}

impl Drop for EpochClock {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Keeps the epoch advancing while it lives; see [`EpochClock::hold`].
#[derive(Debug)]
pub(crate) struct Ticking(Arc<Shared>);

impl Drop for Ticking {
    fn drop(&mut self) {
        // The thread notices at its next tick and goes back to sleep: no wake-up is needed.
        let mut live = self.0.lock();
        live.stores = live.stores.saturating_sub(1);
    }
}

/// The thread's loop. Ticks keep their spacing across spurious and early wake-ups: a tick is
/// due one [`EPOCH_TICK`] after the previous one, or after the first store of a busy spell.
fn tick(engine: &Engine, shared: &Shared) {
    let mut live = shared.lock();
    let mut due: Option<Instant> = None;
    loop {
        if live.stopping {
            return;
        }
        if live.stores == 0 {
            due = None;
            live = shared
                .changed
                .wait(live)
                .unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        let now = Instant::now();
        let next = *due.get_or_insert(now + EPOCH_TICK);
        if now >= next {
            engine.increment_epoch();
            #[cfg(test)]
            {
                live.ticks += 1;
            }
            due = Some(now + EPOCH_TICK);
            continue;
        }
        live = shared
            .changed
            .wait_timeout(live, next - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(clock: &EpochClock) -> u64 {
        clock.shared.lock().ticks
    }

    #[test]
    fn ticks_only_while_a_store_holds_the_clock() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).expect("engine");
        let clock = EpochClock::start(engine).expect("clock thread");

        std::thread::sleep(EPOCH_TICK * 5);
        assert_eq!(ticks(&clock), 0, "the epoch moved with no store live");

        let first = clock.hold();
        let held_since = Instant::now();
        let second = clock.hold();
        std::thread::sleep(EPOCH_TICK * 5);
        drop(first);
        std::thread::sleep(EPOCH_TICK * 5);
        let held = ticks(&clock);
        let most = held_since.elapsed().as_millis() / EPOCH_TICK.as_millis();
        // One tick per tick's time at most; a loaded machine may run fewer, but never none.
        assert!(
            held >= 1 && u128::from(held) <= most,
            "{held} ticks in {most} ticks' time"
        );

        drop(second);
        let at_release = ticks(&clock);
        std::thread::sleep(EPOCH_TICK * 5);
        // At most the one tick that may have been due as the last hold went.
        assert!(
            ticks(&clock) <= at_release + 1,
            "the epoch kept moving after the last store went"
        );
    }
}
