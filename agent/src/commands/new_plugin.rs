//! `testmeter new-plugin`: a new plugin project, and the commands its README gives to build,
//! check and drop it in.

use std::path::Path;
use std::process::ExitCode;

use testmeter::plugin::scaffold;

pub fn run(
    name: &str,
    system: Option<&str>,
    lang: crate::PluginLang,
    parent: &Path,
) -> anyhow::Result<ExitCode> {
    let written = scaffold::write(&scaffold::NewPlugin {
        name,
        system: system.unwrap_or(name),
        lang: match lang {
            crate::PluginLang::Rust => scaffold::Lang::Rust,
            crate::PluginLang::Python => scaffold::Lang::Python,
        },
        parent,
    })?;
    println!(
        "wrote {}; build, check and drop it in as its README.md says:\n",
        written.display()
    );
    let readme = std::fs::read_to_string(written.join("README.md"))?;
    let commands = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_default();
    print!("  cd {}\n{}", written.display(), indent(commands));
    Ok(ExitCode::SUCCESS)
}

/// Every line of `text` indented by two spaces.
fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}
