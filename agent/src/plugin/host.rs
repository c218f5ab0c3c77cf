//! Per-call host state of a plugin store: a bare WASI context (no env, args or stdio; files
//! and network are not even linked, see `runtime::link_wasi`), its resource table, memory
//! limits, and the host functions the WIT world imports.

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
    /// Keeps the engine's epoch advancing, and so this store's deadline live, while it exists.
    _ticking: Ticking,
}

/// Caps linear memory and tables, and remembers a denied growth so the failure that follows
/// (usually an abort trap in the guest's allocator) is reported as a memory limit.
#[derive(Debug)]
pub struct Limiter {
    max_memory_bytes: usize,
    pub memory_exceeded: bool,
}

/// Most table elements an instance may have; plugins need a few hundred at most.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl HostState {
    pub(crate) fn new(plugin: &str, memory_bytes: usize, ticking: Ticking) -> Self {
        Self {
            plugin: plugin.to_owned(),
            // Nothing is granted: no preopens, no env, no args, no stdio, no sockets.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                max_memory_bytes: memory_bytes,
                memory_exceeded: false,
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
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}
