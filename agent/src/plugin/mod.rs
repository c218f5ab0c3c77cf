//! The WebAssembly plugin host: loads `plugins/*.wasm` components built against any supported
//! version of the `testmeter:plugin` WIT world into one plugin set, and calls `describe` and each
//! run's derivation in a sandbox; and new plugin projects (`scaffold.rs`).

pub mod bindings;
pub mod cache;
pub mod compat;
pub mod compiler;
pub mod conversions;
pub mod derivation;
mod epoch;
pub mod host;
pub mod quarantine;
pub mod runtime;
pub mod scaffold;
pub mod set;

pub use host::LogLimits;
pub use runtime::{
    Budget, DeclarationLimits, LoadedPlugin, PluginError, PluginRuntime, SandboxLimits, WitVersion,
};
pub use set::{LoadFailure, PluginSet};

/// Compiling components with Cranelift, or reading a large report, frees megabytes of heap that
/// glibc keeps for reuse; a daemon would carry them in its resident size for weeks. Hands free
/// heap pages back to the system; called after a load that compiled anything and after each
/// scheduled run.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it has no preconditions and
    // touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
