//! Per-call host state of a plugin store: a bare WASI context (no env, args or stdio; files
//! and network are not even linked, see `runtime::link_wasi`), its resource table, memory
//! limits, and the host functions the WIT world imports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::v0_1::testmeter::plugin as v0_1;
use super::bindings::v0_2::testmeter::plugin as v0_2;
use super::bindings::v0_3::testmeter::plugin as v0_3;
use super::bindings::v0_4::testmeter::plugin::{host, types};
use super::epoch::Ticking;

/// The data of one plugin store. A fresh one is made for every call.
pub struct HostState {
    plugin: String,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    log: DerivationLog,
    /// Keeps the engine's epoch advancing, and so this store's deadline live, while it exists.
    _ticking: Ticking,
}

/// Caps what one store's instances may make the host allocate, all of it together: the bytes
/// of every linear memory (a component has one per core instance that defines one, and
/// multi-memory lets a module have several), the elements of every table, and how many
/// instances, memories and tables there are. Remembers a denied growth so the failure that
/// follows (usually an abort trap in the guest's allocator) is reported as a memory limit.
#[derive(Debug)]
pub struct Limiter {
    max_memory_bytes: usize,
    /// Bytes of all the store's linear memories together.
    memory_bytes: usize,
    /// Elements of all the store's tables together.
    table_elements: usize,
    pub memory_exceeded: bool,
}

/// Most table elements one store may have, over all its tables; plugins need a few hundred.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Most core instances, linear memories and tables one store may have. A Rust plugin has a
/// handful of instances and one memory; a componentize-py one a few dozen instances.
const MAX_INSTANCES: usize = 256;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 256;

/// Most live component-model handles (`resource.new` and the like) and WASI resources
/// (pollables, streams) one store may have; a plugin holds a few.
pub(crate) const MAX_HANDLES: usize = 10_000;

impl Limiter {
    /// Bytes of all the store's linear memories now.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    fn new(max_memory_bytes: usize) -> Self {
        Self {
            max_memory_bytes,
            memory_bytes: 0,
            table_elements: 0,
            memory_exceeded: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.memory_bytes - current.min(self.memory_bytes)).saturating_add(desired);
        if total > self.max_memory_bytes {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total =
            (self.table_elements - current.min(self.table_elements)).saturating_add(desired);
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// Counts the `host.log` lines a plugin wrote past its budget: the agent's self-metric.
pub type OnSuppressed = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// How much a plugin may write through `host.log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Lines of one derivation (or one `describe`).
    pub lines: u32,
    /// Bytes of one derivation.
    pub bytes: usize,
    /// Lines of one plugin in a minute, over all its derivations.
    pub lines_per_minute: u32,
}

/// The log budgets of every plugin of a runtime: the per-minute window of each plugin, shared
/// by all its derivations, and what counts suppressed lines.
pub(crate) struct PluginLogs {
    limits: LogLimits,
    windows: Mutex<HashMap<String, Window>>,
    on_suppressed: std::sync::OnceLock<OnSuppressed>,
}

/// One plugin's lines in the current minute.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    lines: u32,
}

const WINDOW: Duration = Duration::from_secs(60);

impl PluginLogs {
    pub(crate) fn new(limits: LogLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
            on_suppressed: std::sync::OnceLock::new(),
        }
    }

    /// Counts suppressed lines with `count` from now on; set once, when the agent starts.
    pub(crate) fn on_suppressed(&self, count: OnSuppressed) {
        let _ = self.on_suppressed.set(count);
    }

    /// Takes one line of `plugin`'s per-minute budget, if there is one left.
    fn admit(&self, plugin: &str, now: Instant) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = windows.entry(plugin.to_owned()).or_insert(Window {
            started: now,
            lines: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                lines: 0,
            };
        }
        if window.lines >= self.limits.lines_per_minute {
            return false;
        }
        window.lines += 1;
        true
    }

    fn suppressed(&self, plugin: &str, lines: u64) {
        if let Some(count) = self.on_suppressed.get() {
            count(plugin, lines);
        }
    }
}

impl std::fmt::Debug for PluginLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLogs")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What one store (one derivation, or one `describe`) logged and suppressed.
struct DerivationLog {
    logs: Arc<PluginLogs>,
    lines: u32,
    bytes: usize,
    suppressed_lines: u64,
    suppressed_bytes: u64,
    /// Which budget suppressed the first line.
    spent: Option<&'static str>,
}

impl DerivationLog {
    /// Whether a line of `bytes` may be logged; a line that may not is counted.
    fn admit(&mut self, plugin: &str, bytes: usize) -> bool {
        let limits = self.logs.limits;
        let budget =
            if self.lines >= limits.lines || self.bytes.saturating_add(bytes) > limits.bytes {
                Some("per-derivation")
            } else if !self.logs.admit(plugin, Instant::now()) {
                Some("per-minute")
            } else {
                None
            };
        match budget {
            None => {
                self.lines += 1;
                self.bytes += bytes;
                true
            }
            Some(budget) => {
                self.spent.get_or_insert(budget);
                self.suppressed_lines += 1;
                self.suppressed_bytes += bytes as u64;
                false
            }
        }
    }
}

impl Drop for HostState {
    /// One line for all that a derivation's log budget suppressed, when its store goes.
    fn drop(&mut self) {
        let log = &self.log;
        if log.suppressed_lines == 0 {
            return;
        }
        tracing::warn!(
            plugin = self.plugin,
            suppressed_lines = log.suppressed_lines,
            suppressed_bytes = log.suppressed_bytes,
            budget = log.spent.unwrap_or_default(),
            "plugin log lines suppressed: over its log budget"
        );
        log.logs.suppressed(&self.plugin, log.suppressed_lines);
    }
}

impl HostState {
    pub(crate) fn new(
        plugin: &str,
        memory_bytes: usize,
        logs: Arc<PluginLogs>,
        ticking: Ticking,
    ) -> Self {
        Self {
            plugin: plugin.to_owned(),
            // Nothing is granted: no preopens, no env, no args, no stdio, no sockets.
            wasi: WasiCtx::builder().build(),
            table: {
                let mut table = ResourceTable::new();
                table.set_max_capacity(MAX_HANDLES);
                table
            },
            limiter: Limiter::new(memory_bytes),
            log: DerivationLog {
                logs,
                lines: 0,
                bytes: 0,
                suppressed_lines: 0,
                suppressed_bytes: 0,
                spent: None,
            },
            _ticking: ticking,
        }
    }

    /// The plugin this store runs.
    pub(crate) fn plugin(&self) -> &str {
        &self.plugin
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_io::IoView for HostState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl types::Host for HostState {}

/// Longest log line a plugin may write; the rest is cut so a plugin cannot flood the log.
const MAX_LOG_LINE: usize = 4096;

/// The `host` interface of a frozen version: its log levels are the current ones.
macro_rules! frozen_host {
    ($old:ident) => {
        impl $old::types::Host for HostState {}

        impl $old::host::Host for HostState {
            fn log(&mut self, level: $old::host::LogLevel, message: String) {
                let level = match level {
                    $old::host::LogLevel::Trace => host::LogLevel::Trace,
                    $old::host::LogLevel::Debug => host::LogLevel::Debug,
                    $old::host::LogLevel::Info => host::LogLevel::Info,
                    $old::host::LogLevel::Warn => host::LogLevel::Warn,
                    $old::host::LogLevel::Error => host::LogLevel::Error,
                };
                host::Host::log(self, level, message);
            }
        }
    };
}

frozen_host!(v0_1);
frozen_host!(v0_2);
frozen_host!(v0_3);

impl host::Host for HostState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = self.plugin.as_str();
        if !self.log.admit(plugin, message.len()) {
            return;
        }
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn memory_is_limited_over_all_memories_together() {
        let mut limiter = Limiter::new(32 * MIB);
        // Two memories of 20 MiB: each alone is under the limit, both are not.
        assert!(limiter.memory_growing(0, 20 * MIB, None).expect("first"));
        assert!(!limiter.memory_growing(0, 20 * MIB, None).expect("second"));
        assert!(limiter.memory_exceeded);
        // The first may still grow within what is left, and growth counts only once.
        assert!(limiter
            .memory_growing(20 * MIB, 30 * MIB, None)
            .expect("grow"));
        assert!(limiter.memory_growing(0, 2 * MIB, None).expect("small"));
        assert!(!limiter
            .memory_growing(2 * MIB, 3 * MIB, None)
            .expect("over"));
    }

    #[test]
    fn a_plugins_lines_per_minute_are_shared_by_its_derivations_and_renew_each_minute() {
        let logs = PluginLogs::new(LogLimits {
            lines: 100,
            bytes: 1 << 16,
            lines_per_minute: 3,
        });
        let start = Instant::now();
        let admitted = |at: Duration| logs.admit("p", start + at);
        assert!(admitted(Duration::ZERO));
        assert!(admitted(Duration::from_secs(1)));
        assert!(admitted(Duration::from_secs(2)));
        assert!(
            !admitted(Duration::from_secs(3)),
            "the minute's budget is spent"
        );
        assert!(logs.admit("other", start), "each plugin has its own");
        assert!(admitted(Duration::from_secs(61)), "a new minute");
    }

    #[test]
    fn table_elements_are_limited_over_all_tables_together() {
        let mut limiter = Limiter::new(32 * MIB);
        assert!(limiter.table_growing(0, 60_000, None).expect("first"));
        assert!(!limiter.table_growing(0, 60_000, None).expect("second"));
        assert!(limiter.table_growing(0, 40_000, None).expect("rest"));
    }
}
