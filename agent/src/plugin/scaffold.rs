//! `testmeter new-plugin`: writes a plugin project that builds and runs where it is written,
//! from the repository's own template (Rust) or example (Python), with the SDK and the WIT of
//! this agent inside it, a real sample report, a config with a `[[suite]]` for it, and a
//! README with the commands to build, check and drop it in.

use std::path::{Path, PathBuf};

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "{what} {value:?} must be lowercase letters, digits, `-` and `_`, starting with a letter"
    )]
    Name { what: &'static str, value: String },
    #[error("{0} already exists; choose another name or directory")]
    Exists(PathBuf),
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The files this binary carries to write a project: the repository's own, so a new plugin
/// is what the tests build.
mod source {
    pub const WIT: &str = include_str!("../../../wit/plugin.wit");
    pub const SDK_LIB: &str = include_str!("../../../plugins/sdk/src/lib.rs");
    pub const SDK_OUTPUT: &str = include_str!("../../../plugins/sdk/src/output.rs");
    pub const SDK_README: &str = include_str!("../../../plugins/sdk/README.md");
    pub const RUST_LIB: &str = include_str!("../../../examples/plugin-template/src/lib.rs");
    pub const RUST_LOCK: &str = include_str!("../../../examples/plugin-template/Cargo.lock");
    pub const PY_APP: &str = include_str!("../../../examples/python-plugin/app.py");
    pub const PY_DERIVE: &str = include_str!("../../../examples/python-plugin/derive.py");
    pub const PY_BUILD: &str = include_str!("../../../examples/python-plugin/build.sh");
    /// A real pytest JUnit report with a `category` property on each case (the OSWorld
    /// example suite's run; `examples/osworld`).
    pub const SAMPLE: &str = include_str!("../../../tests/fixtures/osworld/junit.xml");
}

/// What to write.
#[derive(Debug, Clone)]
pub struct NewPlugin<'a> {
    /// The project's directory and package name.
    pub name: &'a str,
    /// The `system` of the suites it derives.
    pub system: &'a str,
    pub lang: Lang,
    /// Where the project's directory is made.
    pub parent: &'a Path,
}

fn check(what: &'static str, value: &str) -> Result<(), ScaffoldError> {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::Name {
            what,
            value: value.to_owned(),
        })
    }
}

/// `web-shop` as `WebShop`, for alert names.
fn camel(system: &str) -> String {
    system
        .split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Writes the project and returns its directory.
pub fn write(request: &NewPlugin<'_>) -> Result<PathBuf, ScaffoldError> {
    check("the plugin name", request.name)?;
    check("the system", request.system)?;
    let dir = request.parent.join(request.name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let prefix = request.system.replace('-', "_");
    let files = match request.lang {
        Lang::Rust => rust(request, &prefix),
        Lang::Python => python(request, &prefix),
    };
    for (path, content, executable) in files {
        let path = dir.join(path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, content))
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                let mode = if executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            });
        written.map_err(|source| ScaffoldError::Write { path, source })?;
    }
    Ok(dir)
}

/// A file of the project: its path in it, its content, and whether it is executable.
type File = (&'static str, String, bool);

/// The config of the project: its plugins dir, and a suite of its system that prints the
/// sample report (replace the command with the suite's own).
fn config(system: &str, python: bool) -> String {
    let sandbox = if python {
        "\n# An embedded CPython needs more than the default sandbox.\n[sandbox]\nmemory_bytes = 268435456\ntimeout = \"10s\"\n"
    } else {
        ""
    };
    format!(
        "plugins_dir = \"plugins\"\n\n[prometheus]\nlisten = \"{LISTEN}\"\n{sandbox}\n[[suite]]\nname = \"{system}\"\nsystem = \"{system}\"\n# Replace with the command that runs the suite; without `report`, its stdout is the report.\ncommand = [\"cat\", \"reports/sample.xml\"]\ninterval = \"10m\"\n"
    )
}

/// Where the project's agent serves: `testmeter run --config testmeter.toml` in the project.
pub const LISTEN: &str = "127.0.0.1:9464";

fn readme(request: &NewPlugin<'_>, build: &str, wasm: &str) -> String {
    let NewPlugin { name, system, .. } = request;
    let prefix = system.replace('-', "_");
    format!(
        "# {name}: a testmeter plugin for the `{system}` system\n\n\
         Build it, check it on the sample report, and see it on `/metrics`:\n\n\
         ```sh\n\
         {build}\n\
         mkdir -p plugins && cp {wasm} plugins/{name}.wasm\n\
         testmeter ingest reports/sample.xml --system {system} --config testmeter.toml --print\n\
         testmeter run --config testmeter.toml &\n\
         until curl -sf http://{LISTEN}/readyz; do sleep 0.2; done\n\
         curl -s http://{LISTEN}/metrics | grep '^{prefix}_'\n\
         kill %1\n\
         ```\n\n\
         `ingest --print` runs the sample report (a real pytest JUnit report whose cases carry a\n\
         `category` property) through the plugin and prints what the agent would export. `run`\n\
         serves it: `/readyz` answers once the suite of `testmeter.toml` has run once. To use\n\
         the plugin for real, copy `plugins/{name}.wasm` into your agent's `plugins_dir` (a\n\
         running `testmeter run` loads it within a second; its values appear at the suite's next\n\
         run) and add the `[[suite]]` of `testmeter.toml` to the agent's config, with the suite's\n\
         own command. See docs/plugins.md in testmeter for what a plugin may do.\n"
    )
}

fn rust(request: &NewPlugin<'_>, prefix: &str) -> Vec<File> {
    let name = request.name;
    let lib = source::RUST_LIB
        .replace("\"template\"", &format!("{:?}", request.system))
        .replace("template_", &format!("{prefix}_"))
        .replace(
            "TemplatePassRateLow",
            &format!("{}PassRateLow", camel(request.system)),
        )
        .replace(
            "//! A template testmeter plugin:",
            &format!(
                "//! The testmeter plugin of the `{}` system, from the template:",
                request.system
            ),
        );
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n# The SDK of the testmeter that wrote this project, with its WIT (sdk/wit/plugin.wit).\ntestmeter-plugin-sdk = {{ path = \"sdk\" }}\n\n[profile.release]\nopt-level = \"s\"\nstrip = true\n\n[workspace]\n"
    );
    let sdk_manifest = format!(
        "[package]\nname = \"testmeter-plugin-sdk\"\nversion = \"{}\"\nedition = \"2021\"\nlicense = \"Apache-2.0\"\ndescription = \"Guest-side bindings of the testmeter plugin WIT, and helpers every plugin needs\"\npublish = false\n\n[lib]\ncrate-type = [\"rlib\"]\n\n[dependencies]\nwit-bindgen = \"0.61\"\n",
        env!("CARGO_PKG_VERSION")
    );
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    vec![
        ("Cargo.toml", manifest, false),
        (
            "Cargo.lock",
            source::RUST_LOCK.replace("testmeter-plugin-template", name),
            false,
        ),
        ("src/lib.rs", lib, false),
        ("sdk/Cargo.toml", sdk_manifest, false),
        ("sdk/README.md", source::SDK_README.to_owned(), false),
        ("sdk/src/lib.rs", source::SDK_LIB.to_owned(), false),
        ("sdk/src/output.rs", source::SDK_OUTPUT.to_owned(), false),
        ("sdk/wit/plugin.wit", source::WIT.to_owned(), false),
        ("reports/sample.xml", source::SAMPLE.to_owned(), false),
        ("testmeter.toml", config(request.system, false), false),
        (
            "README.md",
            readme(
                request,
                "cargo build --release --target wasm32-wasip2   # once: rustup target add wasm32-wasip2",
                &wasm,
            ),
            false,
        ),
    ]
}

fn python(request: &NewPlugin<'_>, prefix: &str) -> Vec<File> {
    let rename = |text: &str| {
        text.replace("flaky-demo", request.system)
            .replace("flaky_demo_", &format!("{prefix}_"))
            .replace(
                "FlakyTestsPresent",
                &format!("{}FlakyTestsPresent", camel(request.system)),
            )
    };
    let name = request.name;
    vec![
        ("app.py", rename(source::PY_APP), false),
        ("derive.py", rename(source::PY_DERIVE), false),
        ("build.sh", source::PY_BUILD.to_owned(), true),
        ("wit/plugin.wit", source::WIT.to_owned(), false),
        ("reports/sample.xml", source::SAMPLE.to_owned(), false),
        ("testmeter.toml", config(request.system, true), false),
        (
            "README.md",
            readme(
                request,
                &format!(
                    "./build.sh {name}.wasm   # needs componentize-py: pip install componentize-py"
                ),
                &format!("{name}.wasm"),
            ),
            false,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_an_existing_dir_is_never_written_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let request = |name, system| NewPlugin {
            name,
            system,
            lang: Lang::Rust,
            parent: dir.path(),
        };
        assert!(matches!(
            write(&request("Web Shop", "web")),
            Err(ScaffoldError::Name { .. })
        ));
        assert!(matches!(
            write(&request("web", "../x")),
            Err(ScaffoldError::Name { .. })
        ));
        write(&request("web", "web-shop")).expect("written");
        assert!(matches!(
            write(&request("web", "web-shop")),
            Err(ScaffoldError::Exists(_))
        ));
        let lib = std::fs::read_to_string(dir.path().join("web/src/lib.rs")).expect("lib");
        assert!(lib.contains("const SYSTEM: &str = \"web-shop\";"));
        assert!(lib.contains("\"web_shop_pass_rate\"") && lib.contains("WebShopPassRateLow"));
        assert!(!lib.contains("template_"));
    }
}
