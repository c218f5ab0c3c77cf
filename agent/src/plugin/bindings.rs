//! Host bindings generated from `wit/plugin.wit`. The only `bindgen!` in the agent.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "testmeter:plugin/metrics-plugin@0.1.0",
    exports: { default: async },
});
