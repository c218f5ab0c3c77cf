//! The WebAssembly plugin host: loads `plugins/*.wasm` components built against any supported
//! version of the `testmeter:plugin` WIT world, and calls `describe` and `derive` in a sandbox.

pub mod bindings;
pub mod cache;
pub mod compat;
pub mod conversions;
pub mod host;
pub mod quarantine;
pub mod runtime;

pub use runtime::{LoadedPlugin, PluginError, PluginRuntime, SandboxLimits, WitVersion};
