//! Test fixture: a component built against `testmeter:plugin@1.0.0`, a version this agent does
//! not know. The agent must refuse it by name and version, not fail somewhere inside linking.

wit_bindgen::generate!({
    inline: r#"
        package testmeter:plugin@1.0.0;

        interface host {
            log: func(message: string);
        }

        world metrics-plugin {
            import host;
            export describe: func() -> string;
        }
    "#,
});

struct Future;

impl Guest for Future {
    fn describe() -> String {
        testmeter::plugin::host::log("described by a 1.0.0 plugin");
        "future".to_owned()
    }
}

export!(Future);
