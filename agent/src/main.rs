//! The `testmeter` command line: parses the arguments and hands each command to its module in
//! `commands/`. The only place, with those modules, where `anyhow` is used.

mod commands;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use testmeter::parse::{self, Format, Limits};
use testmeter::plugin::compiler;

#[derive(Debug, Parser)]
#[command(
    name = "testmeter",
    version,
    about = "Turns test runs into production metrics"
)]
struct Cli {
    /// Log line format on stderr (level from RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PluginLang {
    Rust,
    Python,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every suite once, export, flush OTLP, print a summary and exit. Exits 1 when
    /// something could not run (test failures are not such a thing), 2 on a bad config.
    Once {
        #[arg(long, short)]
        config: PathBuf,
        /// Also list every series each plugin derived, with its value.
        #[arg(long)]
        details: bool,
    },
    /// Run suites on their intervals and serve /metrics until SIGINT or SIGTERM.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Send reports another job wrote through the plugins of a system, export the metrics
    /// once (an OTLP push, when OTLP is configured) and exit. Exits 1 when a report cannot
    /// be read or a plugin fails.
    Ingest {
        /// Report files in any supported format; `-` reads standard input. Several files are
        /// one run (e.g. Surefire's one file per test class).
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// The system whose plugins derive the metrics.
        #[arg(long)]
        system: String,
        /// Suite name for labels and the agent's own metrics. Default: the system. A suite of
        /// that name in the config lends its labels.
        #[arg(long)]
        suite: Option<String>,
        /// Config with plugins_dir, [otlp] and [sandbox]. Default: built-in defaults with
        /// ./plugins.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Report format (auto, junit, pytest-text, libtest, libtest-json, go-test-json, tap).
        #[arg(long, default_value_t = Format::Auto)]
        format: Format,
        /// Extra sample label, `key=value`; repeatable.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// A file plugins may read as an artifact (e.g. a results JSON); repeatable.
        #[arg(long = "artifact")]
        artifacts: Vec<PathBuf>,
        /// Largest report accepted, in bytes.
        #[arg(long, default_value_t = parse::DEFAULT_MAX_REPORT_BYTES)]
        max_report_bytes: u64,
        /// End by printing the resulting Prometheus exposition on stdout (the summary then
        /// goes to stderr).
        #[arg(long)]
        print: bool,
    },
    /// Write any supported report as one clean JUnit XML document: one <testcase> per test,
    /// retries as <flakyFailure>/<rerunFailure>, totals counted per test.
    Convert {
        /// The report; `-` reads standard input.
        report: PathBuf,
        #[arg(long, default_value_t = Format::Auto)]
        format: Format,
        /// Output file (written whole, then renamed into place). Default: stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Largest report accepted, in bytes.
        #[arg(long, default_value_t = parse::DEFAULT_MAX_REPORT_BYTES)]
        max_report_bytes: u64,
    },
    /// List the loaded plugins and the metrics and SLOs they declare.
    Plugins {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write a new plugin project NAME: a Rust crate (with this agent's SDK and WIT inside it)
    /// or a Python module, a real sample report, a config with a `[[suite]]` for it, and a
    /// README with the commands to build, check and drop it in.
    NewPlugin {
        name: String,
        /// The `system` of the suites it derives. Default: NAME.
        #[arg(long)]
        system: Option<String>,
        #[arg(long, value_enum, default_value_t = PluginLang::Rust)]
        lang: PluginLang,
        /// Where the project's directory is made.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Write Grafana dashboards generated from the plugins' declarations: an overview and one
    /// per system.
    Dashboards {
        #[arg(long, short)]
        config: PathBuf,
        /// Directory to write `testmeter-*.json` into (created if missing).
        #[arg(long, default_value = "dashboards")]
        out: PathBuf,
    },
    /// Write Prometheus alert rules generated from the declared SLOs, plus a staleness alert
    /// per suite.
    Alerts {
        #[arg(long, short)]
        config: PathBuf,
        /// Rule file to write. Default: stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check dashboards and rule files against the declared metrics, offline: unknown names,
    /// functions on the wrong kind, unknown labels, vector matches that yield nothing. Exits
    /// 1 when anything is found.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// Grafana dashboard JSON files, Prometheus rule files, or dirs holding them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// A Prometheus config: `job` matchers must name one of its scrape jobs, and every
        /// rule file checked must be loaded by its `rule_files`.
        #[arg(long)]
        scrape_config: Option<PathBuf>,
        /// Also ask this running Prometheus (for example http://127.0.0.1:9090) whether every
        /// referenced series has a recent sample and every dashboard query returns data.
        #[arg(long)]
        prometheus: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Evaluate the declared SLOs, on a run of every suite made now or on a live Prometheus,
    /// and exit 1 when one is breached or cannot be decided: a rollout step's go/no-go.
    Gate {
        #[arg(long, short)]
        config: PathBuf,
        /// An SLO to gate on (repeatable). Default: every declared SLO.
        #[arg(long = "slo")]
        slos: Vec<String>,
        /// Also fail when a suite has a test that passed in its previous run and fails now
        /// (from the per-test history).
        #[arg(long)]
        no_new_failures: bool,
        /// Also fail when more than N tests are flaky, over all suites (from the per-test
        /// history).
        #[arg(long, value_name = "N")]
        max_flaky: Option<u64>,
        /// Evaluate on this Prometheus instead of running the suites.
        #[arg(long)]
        prometheus: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// A suite's recent runs from the per-test history and, with --test, the outcome
    /// timeline of each test whose `classname::name` contains PATTERN.
    History {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        suite: String,
        #[arg(long = "test", value_name = "PATTERN")]
        test: Option<String>,
        /// Runs shown, newest first.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
    /// Tests the per-test history holds as flaky, with their flip rate and last failure.
    Flaky {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        suite: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Quarantine a test in the per-test history: its failures are still run and recorded,
    /// but are not new failures and are shown apart, until the quarantine expires.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineAction,
    },
    /// Internal: compile one plugin into the compiled-plugin cache. The agent runs this in a
    /// child process, so it never holds the compiler's memory itself.
    #[command(name = "compile-plugin", hide = true)]
    CompilePlugin {
        #[arg(long)]
        cache_dir: PathBuf,
        wasm: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum QuarantineAction {
    /// Quarantine a recorded test.
    Add {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        suite: String,
        /// The test as `testmeter history` names it: `classname::name`.
        #[arg(long)]
        test: String,
        /// Why: shown beside it wherever it is listed.
        #[arg(long)]
        reason: String,
        /// How long, e.g. `14days`; the quarantine then ends by itself.
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
    },
    /// End a test's quarantine now.
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        suite: String,
        #[arg(long)]
        test: String,
    },
    /// List quarantined tests, soonest to expire first.
    List {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        suite: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got {text:?}"))?;
    if !testmeter::config::is_label_name(key) {
        return Err(format!("{key:?} is not a valid label name"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    if let Ok(exe) = std::env::current_exe() {
        compiler::use_child_compiler(exe);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    let writer = testmeter::consumers::progress::LogWriter;
    match format {
        LogFormat::Text => builder.with_writer(testmeter::log::OneLine(writer)).init(),
        LogFormat::Json => builder.with_writer(writer).json().init(),
    }
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Once { config, details } => commands::once::run(&config, details).await,
        Command::Run { config } => commands::run::run(&config).await,
        Command::Ingest {
            reports,
            system,
            suite,
            config,
            format,
            labels,
            artifacts,
            max_report_bytes,
            print,
        } => {
            let options = commands::ingest::Options {
                suite: suite.unwrap_or_else(|| system.clone()),
                system,
                config,
                format,
                labels: labels.into_iter().collect(),
                artifacts,
                limits: Limits { max_report_bytes },
                print,
            };
            commands::ingest::run(&reports, options).await
        }
        Command::Convert {
            report,
            format,
            output,
            max_report_bytes,
        } => Ok(commands::convert::run(
            &report,
            format,
            output.as_deref(),
            Limits { max_report_bytes },
        )),
        Command::Plugins { config } => commands::plugins::run(&config).await,
        Command::NewPlugin {
            name,
            system,
            lang,
            dir,
        } => commands::new_plugin::run(&name, system.as_deref(), lang, &dir),
        Command::Dashboards { config, out } => commands::dashboards::run(&config, &out).await,
        Command::Alerts { config, out } => commands::alerts::run(&config, out.as_deref()).await,
        Command::Check {
            config,
            paths,
            scrape_config,
            prometheus,
            format,
        } => {
            commands::check::run(
                &config,
                &paths,
                scrape_config.as_deref(),
                prometheus,
                format,
            )
            .await
        }
        Command::Gate {
            config,
            slos,
            no_new_failures,
            max_flaky,
            prometheus,
            format,
        } => {
            let history = commands::gate::HistoryChecks {
                no_new_failures,
                max_flaky,
            };
            commands::gate::run(&config, &slos, history, prometheus, format).await
        }
        Command::History {
            config,
            suite,
            test,
            runs,
            json,
        } => commands::history::run(&config, &suite, test.as_deref(), runs, json),
        Command::Flaky {
            config,
            suite,
            json,
        } => commands::history::flaky(&config, suite.as_deref(), json),
        Command::Quarantine { action } => match action {
            QuarantineAction::Add {
                config,
                suite,
                test,
                reason,
                duration,
            } => commands::history::quarantine(&config, &suite, &test, &reason, duration),
            QuarantineAction::Remove {
                config,
                suite,
                test,
            } => commands::history::release(&config, &suite, &test),
            QuarantineAction::List {
                config,
                suite,
                json,
            } => commands::history::quarantined(&config, suite.as_deref(), json),
        },
        Command::CompilePlugin { cache_dir, wasm } => {
            commands::compile_plugin::run(&cache_dir, &wasm)
        }
    }
}
