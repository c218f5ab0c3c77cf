//! Compiles plugin components and links them against the WIT version they were built for, and
//! makes the limited stores they run in and the calls into them: memory is capped, and every
//! call is bounded in wall time, by an epoch deadline while guest code runs and by a timer while
//! it waits in host code. Calls of a run's derivation are in `derivation`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;
use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

use super::bindings::{v0_1, v0_2, v0_3, v0_4};
use super::cache::{CacheError, CacheOutcome, CompiledCache};
use super::conversions::Reads;
use super::epoch::{EpochClock, EPOCH_TICK};
use super::host::{HostState, LogLimits, OnSuppressed, PluginLogs};
use super::{compat, compiler};
use crate::catalog::PluginDecl;
use crate::config::SandboxConfig;

/// Per-call limits.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Linear memory a plugin instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call: `describe`, or one step of a derivation (its start, a
    /// batch of cases, its finish).
    pub call_timeout: Duration,
    /// Wall-clock budget of all the calls of one run's derivation together.
    pub derivation_timeout: Duration,
    /// Most sample values one derivation may return.
    pub max_samples: usize,
    /// Longest metric name, label key or label value in a returned sample.
    pub max_string_bytes: usize,
    /// What one plugin may declare.
    pub declarations: DeclarationLimits,
    /// What one plugin may write through `host.log`.
    pub log: LogLimits,
}

/// What one plugin may declare in `describe()`: a plugin over any of it is not loaded, so
/// a plugin cannot make the agent hold, export and generate dashboards and rules for
/// declarations without end. The defaults are far above what a real plugin declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclarationLimits {
    pub max_metrics: usize,
    pub max_label_keys: usize,
    pub max_buckets: usize,
    pub max_slos: usize,
    pub max_string_bytes: usize,
}

impl DeclarationLimits {
    /// The first budget `decl` goes over, as an error naming the count and the limit.
    pub fn check(&self, decl: &PluginDecl) -> Result<(), PluginError> {
        let over = |what: &str, count: usize, limit: usize, key: &'static str| {
            Err(PluginError::Declaration {
                plugin: decl.name.clone(),
                what: what.to_owned(),
                count,
                limit,
                key,
            })
        };
        if decl.metrics.len() > self.max_metrics {
            return over(
                "metrics",
                decl.metrics.len(),
                self.max_metrics,
                "max_metrics",
            );
        }
        if decl.slos.len() > self.max_slos {
            return over("SLOs", decl.slos.len(), self.max_slos, "max_slos");
        }
        for metric in &decl.metrics {
            if metric.label_keys.len() > self.max_label_keys {
                let what = format!("label keys on metric {}", clip(&metric.name));
                return over(
                    &what,
                    metric.label_keys.len(),
                    self.max_label_keys,
                    "max_label_keys",
                );
            }
            if metric.buckets.len() > self.max_buckets {
                let what = format!("buckets on histogram {}", clip(&metric.name));
                return over(&what, metric.buckets.len(), self.max_buckets, "max_buckets");
            }
        }
        let strings = std::iter::once(&decl.name)
            .chain([&decl.version])
            .chain(&decl.systems)
            .chain(decl.metrics.iter().flat_map(|m| {
                [&m.name, &m.unit, &m.description]
                    .into_iter()
                    .chain(&m.label_keys)
            }))
            .chain(
                decl.slos
                    .iter()
                    .flat_map(|s| [&s.name, &s.expr, &s.severity, &s.summary]),
            );
        if let Some(longest) = strings.map(String::len).max() {
            if longest > self.max_string_bytes {
                return over(
                    "bytes in one string",
                    longest,
                    self.max_string_bytes,
                    "max_declaration_bytes",
                );
            }
        }
        Ok(())
    }
}

/// A declared name in an error: at most 64 bytes of it.
fn clip(name: &str) -> &str {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self::from(&SandboxConfig::default())
    }
}

impl From<&SandboxConfig> for SandboxLimits {
    fn from(config: &SandboxConfig) -> Self {
        Self {
            memory_bytes: config.memory_bytes,
            call_timeout: config.timeout,
            derivation_timeout: config.derivation_timeout,
            max_samples: config.max_samples,
            max_string_bytes: config.max_string_bytes,
            log: LogLimits {
                lines: config.max_log_lines,
                bytes: config.max_log_bytes,
                lines_per_minute: config.max_log_lines_per_minute,
            },
            declarations: DeclarationLimits {
                max_metrics: config.max_metrics,
                max_label_keys: config.max_label_keys,
                max_buckets: config.max_buckets,
                max_slos: config.max_slos,
                max_string_bytes: config.max_declaration_bytes,
            },
        }
    }
}

/// Why a plugin could not be loaded or a call failed. Only that plugin's call fails.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("failed to compile plugin {path}: {cause:#}")]
    Compile {
        path: PathBuf,
        cause: wasmtime::Error,
    },
    #[error("plugin {path} does not implement the testmeter:plugin@{version} metrics-plugin world: {cause:#}")]
    Link {
        path: PathBuf,
        version: &'static str,
        cause: wasmtime::Error,
    },
    #[error("plugin {path} was built against testmeter:plugin@{found}, which this agent does not support (it loads {supported})")]
    UnsupportedWit {
        path: PathBuf,
        found: String,
        supported: String,
    },
    #[error("plugin {plugin} exceeded its {timeout:?} {budget} time budget")]
    Timeout {
        plugin: String,
        timeout: Duration,
        budget: Budget,
    },
    #[error("plugin {plugin} exceeded its {limit}-byte memory limit")]
    Memory { plugin: String, limit: usize },
    /// The first line says what trapped; the lines after it are wasmtime's context and the
    /// plugin's backtrace.
    #[error("plugin {plugin} trapped: {}\n{cause:#}", cause.root_cause())]
    Trap {
        plugin: String,
        cause: wasmtime::Error,
    },
    #[error("plugin {plugin} returned {count} sample values, over the limit of {limit}")]
    Output {
        plugin: String,
        count: usize,
        limit: usize,
    },
    #[error("plugin {plugin} returned a {length}-byte string, over the limit of {limit} bytes")]
    OutputString {
        plugin: String,
        length: usize,
        limit: usize,
    },
    #[error("plugin {plugin} declares {count} {what}, over the budget of {limit} ([sandbox] {key}); it is not loaded")]
    Declaration {
        plugin: String,
        what: String,
        count: usize,
        limit: usize,
        key: &'static str,
    },
    #[error("plugin file {} is a copy of {} (plugin {name}); it is not loaded: remove the copy", path.display(), of.display())]
    Copy {
        path: PathBuf,
        of: PathBuf,
        name: String,
    },
    #[error("plugin file {} declares the name {name}, as {} also does{}; a plugin's name is its identity and one file holds it: remove one of the files, or give one plugin another name in its describe()", path.display(), others.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and "), kept.as_ref().map(|k| format!(" ({} keeps serving it)", k.display())).unwrap_or_default())]
    SameName {
        path: PathBuf,
        name: String,
        others: Vec<PathBuf>,
        /// The file that keeps the name: the one that held it before a reload, if any.
        kept: Option<PathBuf>,
    },
    #[error("plugin {plugin} is quarantined after {failures} consecutive failures; next try in {retry_in:?}")]
    Quarantined {
        plugin: String,
        failures: u32,
        retry_in: Duration,
    },
    #[error("plugin {plugin} failed to derive: {message}")]
    Guest { plugin: String, message: String },

    #[error("failed to set up the plugin engine: {cause:#}")]
    Engine { cause: wasmtime::Error },
}

impl PluginError {
    /// Every `reason` a loaded plugin's failures are counted under: those of
    /// [`Self::reason`], and `invalid` for refused declarations.
    pub const REASONS: [&'static str; 8] = [
        "load",
        "timeout",
        "memory",
        "trap",
        "output",
        "quarantined",
        "error",
        "invalid",
    ];

    /// The `reason` label of `testmeter_plugin_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            PluginError::Compile { .. }
            | PluginError::Link { .. }
            | PluginError::UnsupportedWit { .. }
            | PluginError::Declaration { .. }
            | PluginError::Copy { .. }
            | PluginError::SameName { .. }
            | PluginError::Engine { .. } => "load",
            PluginError::Timeout { .. } => "timeout",
            PluginError::Memory { .. } => "memory",
            PluginError::Trap { .. } => "trap",
            PluginError::Output { .. } | PluginError::OutputString { .. } => "output",
            PluginError::Quarantined { .. } => "quarantined",
            PluginError::Guest { .. } => "error",
        }
    }
}

/// Which wall-time budget bounds a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// `[sandbox] timeout`: each call alone.
    Call,
    /// `[sandbox] derivation_timeout`: all the calls of one run's derivation together.
    Derivation,
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Budget::Call => "per-call",
            Budget::Derivation => "per-derivation",
        })
    }
}

/// A version of the `testmeter:plugin` WIT package that the agent loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitVersion {
    /// Frozen; adapted in `compat`.
    V0_1,
    /// Frozen; adapted in `compat`.
    V0_2,
    /// Frozen; streamed like the current version, its records adapted in `compat`.
    V0_3,
    /// The current version, `wit/plugin.wit`.
    V0_4,
}

impl WitVersion {
    /// Every supported version, newest first.
    pub const ALL: [WitVersion; 4] = [
        WitVersion::V0_4,
        WitVersion::V0_3,
        WitVersion::V0_2,
        WitVersion::V0_1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
            WitVersion::V0_3 => "0.3.0",
            WitVersion::V0_4 => "0.4.0",
        }
    }

    fn parse(version: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == version)
    }

    /// The version a component targets, read from the `testmeter:plugin/...@version` names it
    /// imports: `None` when it names no `testmeter:plugin` interface at all.
    fn of(component: &Component, engine: &Engine) -> Option<Result<Self, String>> {
        let ty = component.component_type();
        let found = ty
            .imports(engine)
            .map(|(name, _)| name)
            .chain(ty.exports(engine).map(|(name, _)| name))
            .filter_map(|name| name.strip_prefix("testmeter:plugin/"))
            .filter_map(|name| name.split_once('@').map(|(_, version)| version))
            .next()?;
        Some(Self::parse(found).ok_or_else(|| found.to_owned()))
    }
}

/// What a loaded plugin costs in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCost {
    /// The compiled component's image (machine code and data), mapped in the agent.
    pub code_bytes: usize,
    /// Linear memory of a fresh instance, after `describe`: what each derivation starts with.
    pub instance_bytes: usize,
}

/// The pre-instantiated component, typed by the WIT version it was built against.
pub(crate) enum Pre {
    V0_1(v0_1::MetricsPluginPre<HostState>),
    V0_2(v0_2::MetricsPluginPre<HostState>),
    V0_3 {
        pre: v0_3::MetricsPluginPre<HostState>,
        derivation: DerivationExports,
    },
    V0_4 {
        pre: v0_4::MetricsPluginPre<HostState>,
        derivation: DerivationExports,
    },
}

/// Where the `derivation` resource's functions are among a streaming (0.3.0 or later)
/// component's exports, found once at load.
#[derive(Debug, Clone)]
pub(crate) struct DerivationExports {
    pub constructor: ComponentExportIndex,
    pub feed: ComponentExportIndex,
    pub finish: ComponentExportIndex,
}

impl DerivationExports {
    fn of(component: &Component, version: WitVersion) -> Result<Self, wasmtime::Error> {
        let name = format!("testmeter:plugin/derive@{}", version.as_str());
        let interface = component
            .get_export_index(None, &name)
            .ok_or_else(|| wasmtime::format_err!("no export {name}"))?;
        let function = |function: &str| {
            component
                .get_export_index(Some(&interface), function)
                .ok_or_else(|| wasmtime::format_err!("no export {name}#{function}"))
        };
        Ok(Self {
            constructor: function("[constructor]derivation")?,
            feed: function("[method]derivation.feed")?,
            finish: function("[method]derivation.finish")?,
        })
    }
}

/// A compiled, linked plugin and what it declared.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub decl: PluginDecl,
    /// The optional case fields it reads (everything, for versions before 0.3.0).
    pub reads: Reads,
    /// The WIT version the plugin was built against.
    pub wit: WitVersion,
    /// Time to compile (or load from the cache), link and describe the component.
    pub load_time: Duration,
    /// Whether the compiled component came from the cache.
    pub cache: CacheOutcome,
    /// SHA-256 of the file's bytes: tells a copy from another plugin of the same name.
    pub digest: [u8; 32],
    /// The SLOs it declared that were not valid, left out of `decl`.
    pub refused_slos: Vec<crate::catalog::CatalogError>,
    /// What it costs in memory: its compiled code, mapped in the agent for as long as it is
    /// loaded, and the linear memory an instance starts with (each derivation has its own).
    pub cost: MemoryCost,
    pub(crate) pre: Pre,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("name", &self.decl.name)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// True when this plugin derives runs of `system`.
    pub fn handles(&self, system: &str) -> bool {
        self.decl.systems.iter().any(|s| s == system)
    }
}

/// Links the WASI interfaces a metrics plugin may use, and no others: wall and monotonic
/// clocks (timestamps, and timing its own work), random (hash seeds), `wasi:io` (the pollables
/// and streams the clocks and stdio are made of) and `wasi:cli` (an empty environment, no
/// arguments, stdin at end and stdout and stderr discarded, which a Rust or Python program
/// built for WASI touches on its own). Files and sockets are not linked at all, so there is
/// nothing behind them to misconfigure; a component that imports them gets traps instead
/// (see [`PluginRuntime::load`]). A sleep or a wait on a pollable is bounded like any other
/// call ([`PluginRuntime::call`]).
fn link_wasi(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::WasiView;

    wasmtime_wasi_io::add_to_linker_async(linker)?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(linker, HostState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(linker, HostState::clocks)?;
    random::random::add_to_linker::<_, WasiRandom>(linker, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(linker, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(linker, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::environment::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::stdin::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::stdout::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::stderr::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(linker, HostState::cli)?;
    Ok(())
}

/// The WASI interfaces the agent never links for a plugin.
const UNLINKED_WASI: [&str; 2] = ["wasi:filesystem/", "wasi:sockets/"];

/// Stands in for a resource of an interface that is not linked; no value of it is ever made.
struct Unlinked;

/// Satisfies `component`'s imports of files and sockets (which Rust's std and most language
/// runtimes import whether or not a plugin uses them) with functions that trap, naming what
/// was called, so such a plugin loads and only a call that reaches for them fails. Any other
/// import the agent does not provide still fails the link, with the linker's error.
fn stub_unlinked(
    linker: &mut Linker<HostState>,
    component: &Component,
    engine: &Engine,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::ResourceType;

    let ty = component.component_type();
    let unlinked = |import: &str| {
        UNLINKED_WASI
            .iter()
            .any(|prefix| import.starts_with(prefix))
    };
    // Resources the unlinked interfaces only use from linked ones (wasi:io's streams and
    // pollables): the linker has the real ones.
    let linked: Vec<ResourceType> = ty
        .imports(engine)
        .filter(|(import, _)| !unlinked(import))
        .filter_map(|(_, item)| match item.ty {
            ComponentItem::ComponentInstance(instance) => Some(instance),
            _ => None,
        })
        .flat_map(|instance| {
            instance
                .exports(engine)
                .filter_map(|(_, item)| match item.ty {
                    ComponentItem::Resource(resource) => Some(resource),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (import, item) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !unlinked(import) {
            continue;
        }
        let mut stubs = linker.instance(import)?;
        for (name, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let called = format!("{import}#{name}");
                    stubs.func_new(name, move |_, _, _, _| {
                        Err(wasmtime::format_err!(
                            "{called} is not available to plugins: the agent links no files or sockets"
                        ))
                    })?;
                }
                ComponentItem::Resource(resource) if !linked.contains(&resource) => {
                    stubs.resource(name, ResourceType::host::<Unlinked>(), |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The engine, linker and limits shared by all plugins.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: SandboxLimits,
    cache: Option<CompiledCache>,
    clock: EpochClock,
    logs: std::sync::Arc<PluginLogs>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PluginRuntime {
    pub fn new(limits: SandboxLimits) -> Result<Self, PluginError> {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|cause| PluginError::Engine { cause })?;
        let mut linker = Linker::new(&engine);
        link_wasi(&mut linker).map_err(|cause| PluginError::Engine { cause })?;
        v0_4::MetricsPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|cause| PluginError::Engine { cause })?;
        v0_3::MetricsPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|cause| PluginError::Engine { cause })?;
        v0_2::MetricsPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|cause| PluginError::Engine { cause })?;
        v0_1::MetricsPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|cause| PluginError::Engine { cause })?;
        let clock = EpochClock::start(engine.clone())
            .map_err(|e| PluginError::Engine { cause: e.into() })?;
        let logs = std::sync::Arc::new(PluginLogs::new(limits.log));
        Ok(Self {
            engine,
            linker,
            limits,
            cache: None,
            clock,
            logs,
        })
    }

    /// Counts the `host.log` lines plugins write past their budgets with `count` (the first
    /// one given; the agent gives one at start).
    pub fn count_suppressed_logs(&self, count: OnSuppressed) {
        self.logs.on_suppressed(count);
    }

    /// Keeps compiled components in `dir` from now on.
    pub fn enable_cache(&mut self, dir: &Path) -> Result<(), CacheError> {
        self.cache = Some(CompiledCache::open(dir, &self.engine)?);
        Ok(())
    }

    /// The component at `path`: from the cache, else compiled by a child process into the
    /// cache (see `compiler`), else compiled here.
    async fn obtain(
        &self,
        path: &Path,
    ) -> Result<(Component, CacheOutcome, [u8; 32]), PluginError> {
        let compile_error = |cause| PluginError::Compile {
            path: path.to_path_buf(),
            cause,
        };
        let wasm = std::fs::read(path).map_err(|e| compile_error(e.into()))?;
        let digest: [u8; 32] = sha2::Sha256::digest(&wasm).into();
        let (component, outcome) = self.compiled(path, &wasm).await?;
        Ok((component, outcome, digest))
    }

    /// The component of `wasm`, read from `path`: see [`Self::obtain`].
    async fn compiled(
        &self,
        path: &Path,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), PluginError> {
        let compile_error = |cause| PluginError::Compile {
            path: path.to_path_buf(),
            cause,
        };
        let Some(cache) = &self.cache else {
            return Component::new(&self.engine, wasm)
                .map(|component| (component, CacheOutcome::Disabled))
                .map_err(compile_error);
        };
        let entry = cache.entry_path(wasm);
        let mut compiled_by_child = false;
        if let Some(exe) = compiler::child_compiler().filter(|_| !entry.exists()) {
            match compiler::compile_in_child(exe, cache, path).await {
                Ok(()) => compiled_by_child = true,
                Err(reason) => tracing::debug!(
                    path = %path.display(),
                    reason,
                    "compiling in a child process failed; compiling in the agent"
                ),
            }
        }
        let (component, outcome) = cache
            .load_or_compile_at(&self.engine, wasm, &entry)
            .map_err(compile_error)?;
        Ok(match outcome {
            // Compiled moments ago, by the child: still a miss for this start.
            CacheOutcome::Hit if compiled_by_child => {
                (component, CacheOutcome::Miss { store_error: None })
            }
            outcome => (component, outcome),
        })
    }

    /// The engine every plugin of this runtime is compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles and links a component, then calls its `describe`.
    pub async fn load(&self, path: &Path) -> Result<LoadedPlugin, PluginError> {
        let started = std::time::Instant::now();
        let (component, cache, digest) = self.obtain(path).await?;
        let wit = match WitVersion::of(&component, &self.engine) {
            Some(Ok(version)) => version,
            Some(Err(found)) => {
                return Err(PluginError::UnsupportedWit {
                    path: path.to_path_buf(),
                    found,
                    supported: WitVersion::ALL.map(WitVersion::as_str).join(", "),
                })
            }
            // Nothing names the package: link against the current version and let the
            // linker say what is missing.
            None => WitVersion::V0_4,
        };
        let link_error = |cause| PluginError::Link {
            path: path.to_path_buf(),
            version: wit.as_str(),
            cause,
        };
        let mut linker = self.linker.clone();
        stub_unlinked(&mut linker, &component, &self.engine).map_err(link_error)?;
        let instance_pre = linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = match wit {
            WitVersion::V0_1 => v0_1::MetricsPluginPre::new(instance_pre).map(Pre::V0_1),
            WitVersion::V0_2 => v0_2::MetricsPluginPre::new(instance_pre).map(Pre::V0_2),
            WitVersion::V0_3 => v0_3::MetricsPluginPre::new(instance_pre).and_then(|pre| {
                Ok(Pre::V0_3 {
                    pre,
                    derivation: DerivationExports::of(&component, wit)?,
                })
            }),
            WitVersion::V0_4 => v0_4::MetricsPluginPre::new(instance_pre).and_then(|pre| {
                Ok(Pre::V0_4 {
                    pre,
                    derivation: DerivationExports::of(&component, wit)?,
                })
            }),
        }
        .map_err(link_error)?;
        let label = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let mut store = self.store(&label);
        let described = self
            .call(&mut store, Duration::ZERO, async |store| match &pre {
                Pre::V0_4 { pre, .. } => {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let info = instance.call_describe(&mut *store).await?;
                    Ok((Reads::from(info.reads), PluginDecl::from(info)))
                }
                Pre::V0_3 { pre, .. } => {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    Ok(compat::plugin_info_v0_3(
                        instance.call_describe(&mut *store).await?,
                    ))
                }
                Pre::V0_2(pre) => {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let info = instance.call_describe(&mut *store).await?;
                    Ok((Reads::ALL, compat::plugin_info_v0_2(info)))
                }
                Pre::V0_1(pre) => {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let info = instance.call_describe(&mut *store).await?;
                    Ok((Reads::ALL, compat::plugin_info_v0_1(info)))
                }
            })
            .await;
        let (reads, mut decl) = described?;
        let image = component.image_range();
        let cost = MemoryCost {
            code_bytes: (image.end as usize).saturating_sub(image.start as usize),
            instance_bytes: store.data().limiter.memory_bytes(),
        };
        self.limits.declarations.check(&decl)?;
        let refused_slos = crate::catalog::slo::retain_valid(&mut decl);
        Ok(LoadedPlugin {
            path: path.to_path_buf(),
            decl,
            reads,
            wit,
            load_time: started.elapsed(),
            cache,
            digest,
            refused_slos,
            cost,
            pre,
        })
    }

    pub(crate) fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// A fresh store for one plugin, its memory capped. Calls on it go through [`Self::call`].
    /// The epoch advances while the store lives.
    pub(crate) fn store(&self, plugin: &str) -> Store<HostState> {
        let mut store = Store::new(
            &self.engine,
            HostState::new(
                plugin,
                self.limits.memory_bytes,
                std::sync::Arc::clone(&self.logs),
                self.clock.hold(),
            ),
        );
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_max_component_handles(super::host::MAX_HANDLES);
        // One lift of a call's arguments or results (a log line, a finish's samples) allocates
        // on the host at most twice the plugin's memory.
        store.set_hostcall_fuel(self.limits.memory_bytes.saturating_mul(2));
        store
    }

    /// The wall time the next call may take, and the budget that sets it, when the calls of
    /// its derivation so far took `busy`: the call budget, or what is left of the derivation's
    /// when that is less.
    fn budget(&self, busy: Duration) -> (Duration, Budget) {
        let left = self.limits.derivation_timeout.saturating_sub(busy);
        if left < self.limits.call_timeout {
            (left, Budget::Derivation)
        } else {
            (self.limits.call_timeout, Budget::Call)
        }
    }

    /// Makes one call into the plugin on `store`, whose derivation's calls took `busy` so far.
    /// The call is bounded in wall time both ways a plugin can spend it: running, by the
    /// epoch deadline; waiting in host code (a WASI sleep or poll, where no deadline can
    /// fire), by a timer that drops the call. Either way the error is a timeout, and the
    /// store must not be called again.
    pub(crate) async fn call<T>(
        &self,
        store: &mut Store<HostState>,
        busy: Duration,
        call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        let (timeout, budget) = self.budget(busy);
        let timed_out = |store: &Store<HostState>| PluginError::Timeout {
            plugin: store.data().plugin().to_owned(),
            timeout: match budget {
                Budget::Call => self.limits.call_timeout,
                Budget::Derivation => self.limits.derivation_timeout,
            },
            budget,
        };
        if timeout.is_zero() {
            return Err(timed_out(store));
        }
        let ticks = timeout.as_millis().div_ceil(EPOCH_TICK.as_millis());
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        match tokio::time::timeout(timeout, call(&mut *store)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(cause)) => Err(match cause.downcast_ref::<Trap>() {
                _ if store.data().limiter.memory_exceeded => PluginError::Memory {
                    plugin: store.data().plugin().to_owned(),
                    limit: self.limits.memory_bytes,
                },
                Some(Trap::Interrupt) => timed_out(store),
                _ => PluginError::Trap {
                    plugin: store.data().plugin().to_owned(),
                    cause,
                },
            }),
            Err(_elapsed) => Err(timed_out(store)),
        }
    }
}

/// The child's side: compiles `wasm` with the agent's engine configuration into the cache at
/// `cache_dir` (a hit when another process got there first).
pub fn compile_into_cache(cache_dir: &Path, wasm: &Path) -> Result<CacheOutcome, PluginError> {
    let compile_error = |cause| PluginError::Compile {
        path: wasm.to_path_buf(),
        cause,
    };
    let runtime = PluginRuntime::new(SandboxLimits::default())?;
    let cache =
        CompiledCache::open(cache_dir, runtime.engine()).map_err(|e| compile_error(e.into()))?;
    let bytes = std::fs::read(wasm).map_err(|e| compile_error(e.into()))?;
    cache
        .load_or_compile(runtime.engine(), &bytes)
        .map(|(_, outcome)| outcome)
        .map_err(compile_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module that defines `memories` linear memories of `pages` 64 KiB pages each,
    /// encoded by hand: the magic, the version, and one memory section.
    fn module_with_memories(memories: u8, pages: u16) -> Vec<u8> {
        let mut limits = Vec::new();
        let mut pages = u32::from(pages);
        loop {
            let byte = u8::try_from(pages & 0x7f).unwrap_or(0);
            pages >>= 7;
            if pages == 0 {
                limits.push(byte);
                break;
            }
            limits.push(byte | 0x80);
        }
        let mut section = vec![memories];
        for _ in 0..memories {
            section.push(0x00); // min only
            section.extend_from_slice(&limits);
        }
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.push(0x05); // memory section
        module.push(u8::try_from(section.len()).expect("short section"));
        module.extend_from_slice(&section);
        module
    }

    /// Multi-memory is on in wasmtime: two memories of 20 MiB each fit a 32 MiB limit one at a
    /// time, and the store's limiter refuses the second because it counts them together.
    #[tokio::test]
    async fn memories_of_one_store_are_limited_together() {
        let runtime = PluginRuntime::new(SandboxLimits::default()).expect("engine");
        let instantiate = |memories| {
            let module =
                wasmtime::Module::new(runtime.engine(), module_with_memories(memories, 320))
                    .expect("a valid module");
            let mut store = runtime.store("multi-memory");
            async move {
                let linker = wasmtime::Linker::new(module.engine());
                let instance = linker.instantiate_async(&mut store, &module).await;
                (instance.is_ok(), store.data().limiter.memory_exceeded)
            }
        };
        assert_eq!(instantiate(1).await, (true, false), "one memory fits");
        assert_eq!(instantiate(2).await, (false, true), "two do not, together");
    }
}
