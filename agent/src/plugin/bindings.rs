//! Host bindings of every WIT version the agent loads: the current one from `wit/plugin.wit`
//! and each frozen one from `wit/deps/`. These are the only `bindgen!`s in the agent.

/// `testmeter:plugin@0.4.0`, the current version.
pub mod v0_4 {
    wasmtime::component::bindgen!({
        path: "../wit/plugin.wit",
        world: "testmeter:plugin/metrics-plugin@0.4.0",
        exports: { default: async },
    });
}

/// `testmeter:plugin@0.3.0`, frozen; adapted to the current version in `compat`.
pub mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../wit/deps/testmeter-plugin-0.3.0",
        world: "testmeter:plugin/metrics-plugin@0.3.0",
        exports: { default: async },
    });
}

/// `testmeter:plugin@0.2.0`, frozen; adapted to the current version in `compat`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/deps/testmeter-plugin-0.2.0",
        world: "testmeter:plugin/metrics-plugin@0.2.0",
        exports: { default: async },
    });
}

/// `testmeter:plugin@0.1.0`, frozen; adapted to the current version in `compat`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/deps/testmeter-plugin-0.1.0",
        world: "testmeter:plugin/metrics-plugin@0.1.0",
        exports: { default: async },
    });
}
