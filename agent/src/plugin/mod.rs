//! The WebAssembly plugin host: loads `plugins/*.wasm` components behind the
//! `testmeter:plugin@0.1.0` WIT world and calls `describe` and `derive` in a sandbox.

pub mod bindings;
pub mod cache;
pub mod conversions;
pub mod host;
pub mod quarantine;
pub mod runtime;

pub use runtime::{LoadedPlugin, PluginError, PluginRuntime, SandboxLimits};
