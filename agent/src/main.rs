//! The `testmeter` command line: `once`, `run`, `ingest`, `convert` and `plugins`.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use testmeter::agent::{error_chain, Agent, SuiteOutcome};
use testmeter::config::{Config, SuiteConfig};
use testmeter::contract::{self, Contract};
use testmeter::export::connections::ConnectionLimits;
use testmeter::export::server;
use testmeter::ingest::{self, IngestRequest};
use testmeter::parse::{self, Format, Limits};
use testmeter::plugin::compiler;
use testmeter::runner::RunError;
use tokio::signal::unix::SignalKind;

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
enum PluginLang {
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
        /// Evaluate on this Prometheus instead of running the suites.
        #[arg(long)]
        prometheus: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
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
    let writer = testmeter::progress::LogWriter;
    match format {
        LogFormat::Text => builder.with_writer(testmeter::log::OneLine(writer)).init(),
        LogFormat::Json => builder.with_writer(writer).json().init(),
    }
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Once { config, details } => once(&config, details).await,
        Command::Run { config } => run(&config).await,
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
            let options = IngestOptions {
                suite: suite.unwrap_or_else(|| system.clone()),
                system,
                config,
                format,
                labels: labels.into_iter().collect(),
                artifacts,
                limits: Limits { max_report_bytes },
                print,
            };
            ingest_reports(&reports, options).await
        }
        Command::Convert {
            report,
            format,
            output,
            max_report_bytes,
        } => Ok(convert(
            &report,
            format,
            output.as_deref(),
            Limits { max_report_bytes },
        )),
        Command::Plugins { config } => plugins(&config).await,
        Command::NewPlugin {
            name,
            system,
            lang,
            dir,
        } => new_plugin(&name, system.as_deref(), lang, &dir),
        Command::Dashboards { config, out } => dashboards(&config, &out).await,
        Command::Alerts { config, out } => alerts(&config, out.as_deref()).await,
        Command::Check {
            config,
            paths,
            scrape_config,
            prometheus,
            format,
        } => {
            check(
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
            prometheus,
            format,
        } => gate(&config, &slos, prometheus, format).await,
        Command::CompilePlugin { cache_dir, wasm } => {
            compiler::compile_into_cache(&cache_dir, &wasm)
                .with_context(|| format!("failed to compile {}", wasm.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn check(
    config: &Path,
    paths: &[PathBuf],
    scrape_config: Option<&Path>,
    prometheus: Option<String>,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let contract = load_contract(config).await?;
    let scrape = scrape_config
        .map(contract::check_files::ScrapeConfig::load)
        .transpose()?;
    let mut report = contract::check_files::check_files(&contract, paths, scrape.as_ref())?;
    if let Some(url) = prometheus {
        let references = report.references.clone();
        let live = tokio::task::spawn_blocking(move || {
            contract::live::check(&contract::live::Prometheus::new(&url), &references)
        })
        .await??;
        report.findings.extend(live);
    }
    match format {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The contract of the config's plugins; refused when any plugin failed to load or had a
/// declaration refused, since generating from part of the catalog would drop panels and
/// alerts without a word.
async fn load_contract(path: &Path) -> anyhow::Result<Contract> {
    let agent = start_complete(path).await?;
    if let Err(error) = agent.telemetry.shutdown().await {
        tracing::warn!(%error, "metrics shutdown incomplete");
    }
    Ok(Contract::new(&agent.plugins(), &agent.config))
}

/// Starts the agent, refusing when any plugin failed to load or had a declaration refused.
async fn start_complete(path: &Path) -> anyhow::Result<Agent> {
    let config = Config::load(path)?;
    let agent = Agent::start(config)
        .await
        .context("failed to start the agent")?;
    let set = agent.plugins();
    let problems: Vec<String> = set
        .load_failures
        .iter()
        .map(|f| f.error.to_string())
        .chain(set.catalog_errors.iter().map(ToString::to_string))
        .collect();
    if !problems.is_empty() {
        if let Err(error) = agent.telemetry.shutdown().await {
            tracing::warn!(%error, "metrics shutdown incomplete");
        }
        anyhow::bail!(
            "refusing to work from an incomplete catalog:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(agent)
}

async fn gate(
    config: &Path,
    slos: &[String],
    prometheus: Option<String>,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let agent = start_complete(config).await?;
    let contract = Contract::new(&agent.plugins(), &agent.config);
    let selected: Vec<contract::model::ContractSlo> = contract::gate::select(&contract, slos)
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .cloned()
        .collect();
    let results = match prometheus {
        Some(url) => {
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&contract::model::ContractSlo> = selected.iter().collect();
                contract::gate::evaluate_live(&contract::live::Prometheus::new(&url), &refs)
            })
            .await??
        }
        None => {
            let outcomes = match until_stopped(agent.run_all_once()).await {
                Ok(outcomes) => outcomes,
                Err(stopped) => return Ok(stopped.exit(&agent).await),
            };
            for outcome in &outcomes {
                if let Err(error) = &outcome.run {
                    tracing::warn!(suite = outcome.suite, error = %error_chain(error), "suite did not run; its SLOs cannot be decided");
                }
            }
            let samples = outcomes
                .iter()
                .flat_map(|o| &o.plugins)
                .filter_map(|p| p.result.as_ref().ok())
                .flatten();
            let run = contract::gate::RunSamples::new(&contract, samples);
            let refs: Vec<&contract::model::ContractSlo> = selected.iter().collect();
            contract::gate::evaluate_run(&run, &refs)
        }
    };
    if let Err(error) = agent.telemetry.shutdown().await {
        tracing::warn!(%error, "metrics shutdown incomplete");
    }
    match format {
        ReportFormat::Text => print!("{}", contract::gate::render(&results)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&results)?),
    }
    let pass = results
        .iter()
        .all(|r| r.verdict == contract::gate::Verdict::Met);
    Ok(if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn dashboards(config: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    let contract = load_contract(config).await?;
    std::fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))?;
    for generated in contract::dashboards::generate(&contract) {
        let mut json = serde_json::to_vec_pretty(&generated.dashboard)?;
        json.push(b'\n');
        let path = out.join(&generated.file_name);
        write_atomically(&path, &json)?;
        println!(
            "wrote {} ({} panels)",
            path.display(),
            generated.dashboard.panels.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn alerts(config: &Path, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let contract = load_contract(config).await?;
    let rules = contract::alerts::generate(&contract);
    let yaml = format!(
        "# Generated by `testmeter alerts` from the plugins' declared SLOs. Do not edit: regenerate.\n{}",
        serde_yaml::to_string(&rules)?
    );
    match out {
        Some(path) => {
            write_atomically(path, yaml.as_bytes())?;
            let count: usize = rules.groups.iter().map(|g| g.rules.len()).sum();
            eprintln!("wrote {} ({count} rules)", path.display());
        }
        None => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

struct IngestOptions {
    suite: String,
    system: String,
    config: Option<PathBuf>,
    format: Format,
    labels: BTreeMap<String, String>,
    artifacts: Vec<PathBuf>,
    limits: Limits,
    print: bool,
}

async fn ingest_reports(reports: &[PathBuf], options: IngestOptions) -> anyhow::Result<ExitCode> {
    let config = match &options.config {
        Some(path) => Config::load(path)?,
        None => Config::from_toml("", Path::new("(defaults)"), &std::env::current_dir()?)?,
    };
    let mut labels = config
        .suites
        .iter()
        .find(|s| s.name == options.suite)
        .map(|s| s.labels.clone())
        .unwrap_or_default();
    labels.extend(options.labels);
    let suite = SuiteConfig::ingested(&options.suite, &options.system, labels);
    let started = Instant::now();
    let run = ingest::run_of(&IngestRequest {
        suite: &suite.name,
        system: &suite.system,
        labels: suite.labels.clone(),
        reports,
        format: options.format,
        limits: options.limits,
        artifacts: &options.artifacts,
        artifact_max_bytes: suite.artifact_max_bytes,
    });
    let run = match run {
        Ok(run) => run,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            return Ok(ExitCode::from(1));
        }
    };
    let agent = Agent::start(config)
        .await
        .context("failed to start the agent")?;
    let outcome = agent.record_run(&suite, Ok(run), started).await;
    // A report that cannot be read is the command's error, as for `convert`.
    if let Err(error @ RunError::Ingest { .. }) = &outcome.run {
        eprintln!("error: {}", error_chain(error));
        let _ = agent.telemetry.shutdown().await;
        return Ok(ExitCode::from(1));
    }
    let outcomes = [outcome];
    let summary = format!(
        "{}\n{}",
        testmeter::summary::render(&agent, &outcomes, true),
        testmeter::summary::table(&agent.status.snapshot())
    );
    if options.print {
        eprint!("{summary}");
        let exposition = server::exposition(&agent.telemetry.registry)?;
        std::io::stdout().write_all(&exposition)?;
    } else {
        print!("{summary}");
    }
    Ok(flush_and_exit_code(&agent, &outcomes).await)
}

/// Flushes the exporters (an OTLP push) and gives the exit code of a one-shot command: 0 when
/// every plugin loaded, every suite ran and every plugin derived it, and the flush worked.
async fn flush_and_exit_code(agent: &Agent, outcomes: &[SuiteOutcome]) -> ExitCode {
    let mut healthy =
        agent.plugins().load_failures.is_empty() && outcomes.iter().all(|o| o.succeeded());
    match agent.telemetry.shutdown().await {
        Ok(()) => {
            if let Some(target) = &agent.telemetry.otlp {
                tracing::info!(protocol = target.protocol_name(), "OTLP metrics flushed");
            }
        }
        Err(error) => {
            tracing::error!(%error, "metrics flush failed");
            healthy = false;
        }
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn convert(report: &Path, format: Format, output: Option<&Path>, limits: Limits) -> ExitCode {
    let parsed = if report == Path::new("-") {
        parse::parse_reader(std::io::stdin().lock(), format, limits)
    } else {
        parse::parse_file(report, format, limits)
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!(
                "error: failed to parse {}: {}",
                report.display(),
                error_chain(&error)
            );
            return ExitCode::from(1);
        }
    };
    if let Some(reason) = &parsed.partial {
        eprintln!("warning: partial run: {reason}");
    }
    let written = parse::to_junit_xml(&parsed)
        .map_err(anyhow::Error::from)
        .and_then(|xml| match output {
            Some(path) => write_atomically(path, xml.as_bytes()),
            None => Ok(std::io::stdout().write_all(xml.as_bytes())?),
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Writes beside the target and renames, so a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes)
        .with_context(|| format!("failed to write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| {
        format!(
            "failed to rename {} to {}",
            partial.display(),
            path.display()
        )
    })?;
    Ok(())
}

async fn once(path: &Path, details: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let agent = Agent::start(config)
        .await
        .context("failed to start the agent")?;
    let run = testmeter::progress::run_all(&agent, testmeter::progress::wanted());
    let outcomes = match until_stopped(run).await {
        Ok(outcomes) => outcomes,
        Err(stopped) => return Ok(stopped.exit(&agent).await),
    };
    print!(
        "{}\n{}",
        testmeter::summary::render(&agent, &outcomes, details),
        testmeter::summary::table(&agent.status.snapshot())
    );
    Ok(flush_and_exit_code(&agent, &outcomes).await)
}

async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let open_files = testmeter::export::connections::raise_open_file_limit();
    let security = config
        .prometheus
        .web_config
        .as_deref()
        .map(testmeter::export::web::WebSecurity::load)
        .transpose()?;
    let listener = server::bind(config.prometheus.listen).await?;
    let agent = Arc::new(
        Agent::start(config)
            .await
            .context("failed to start the agent")?,
    );
    tracing::info!(addr = %agent.config.prometheus.listen, "serving /metrics");
    if let Some(security) = &security {
        tracing::info!(tls = security.tls.is_some(), "web config loaded");
    }
    let prometheus = &agent.config.prometheus;
    let limits = ConnectionLimits {
        max_connections: prometheus.max_connections,
        header_read_timeout: prometheus.header_read_timeout,
        max_connection_age: prometheus.max_connection_age,
    }
    .within(open_files);
    if limits.max_connections < prometheus.max_connections {
        tracing::warn!(
            configured = prometheus.max_connections,
            max_connections = limits.max_connections,
            open_files,
            reserve = testmeter::export::connections::FD_RESERVE,
            "fewer /metrics connections than configured: the open-file limit is low"
        );
    }
    let server = tokio::spawn(server::serve(
        listener,
        server::Sources {
            registry: agent.telemetry.registry.clone(),
            readiness: Arc::clone(&agent.readiness),
            status: Arc::clone(&agent.status),
            connection_errors: agent.self_metrics.connection_errors(),
        },
        security,
        limits,
    ));
    let watcher = if agent.config.watch_plugins {
        match testmeter::reload::spawn(Arc::clone(&agent)) {
            Ok(task) => Some(task),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "plugins dir not watched; new plugins load at the next start");
                None
            }
        }
    } else {
        None
    };
    let mut scheduler = testmeter::schedule::Scheduler::start(Arc::clone(&agent));
    let mut hangup = signal(SignalKind::hangup());
    let mut terminate = signal(SignalKind::terminate());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = next(&mut terminate) => break,
            () = next(&mut hangup) => reload_suites(path, &agent, &mut scheduler),
        }
    }
    let grace = agent.config.shutdown_grace;
    tracing::info!(
        ?grace,
        "shutting down: no new runs; waiting for running suites"
    );
    let killed = scheduler.shutdown(grace).await;
    if !killed.is_empty() {
        tracing::warn!(
            ?killed,
            ?grace,
            "suites still running after the grace period were killed"
        );
    }
    server.abort();
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    if let Err(error) = agent.telemetry.shutdown().await {
        tracing::warn!(%error, "metrics shutdown incomplete");
    }
    Ok(ExitCode::SUCCESS)
}

/// A signal that stopped `once` or `gate` before its suites finished.
struct Stopped(&'static str, u8);

impl Stopped {
    /// Logs the stop and flushes the metrics; the exit code is 128 + the signal's number.
    async fn exit(self, agent: &Agent) -> ExitCode {
        let Stopped(signal, code) = self;
        tracing::warn!(
            signal,
            "stopped before the suites finished; the running suite's process group was killed"
        );
        if let Err(error) = agent.telemetry.shutdown().await {
            tracing::warn!(%error, "metrics shutdown incomplete");
        }
        ExitCode::from(code)
    }
}

/// Runs `work` (one pass over the suites) until it ends or SIGTERM or SIGINT arrives. On a
/// signal the work is dropped, and with it the suite it was running, whose whole process group
/// is killed (`runner::process`), as `run` kills a suite still running after its grace period:
/// nothing the agent started outlives it.
async fn until_stopped<T>(work: impl std::future::Future<Output = T>) -> Result<T, Stopped> {
    let mut terminate = signal(SignalKind::terminate());
    tokio::select! {
        done = work => Ok(done),
        _ = tokio::signal::ctrl_c() => Err(Stopped("SIGINT", 130)),
        _ = next(&mut terminate) => Err(Stopped("SIGTERM", 143)),
    }
}

fn signal(kind: SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
        .inspect_err(|error| tracing::warn!(%error, ?kind, "cannot listen for the signal"))
        .ok()
}

/// The next delivery of a signal; never, when it could not be listened for.
async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// SIGHUP: reads the config again and applies its suites. An invalid config is rejected and the
/// running schedule stays; settings other than the suites need a restart.
fn reload_suites(path: &Path, agent: &Agent, scheduler: &mut testmeter::schedule::Scheduler) {
    let running = &agent.config;
    match Config::load(path) {
        Ok(config) => {
            let changes = scheduler.apply(&config.suites);
            agent.status.set_suites(&config.suites);
            tracing::info!(
                added = ?changes.added,
                changed = ?changes.changed,
                removed = ?changes.removed,
                "config reloaded on SIGHUP"
            );
            if config.plugins_dir != running.plugins_dir
                || config.prometheus.listen != running.prometheus.listen
                || config.max_concurrent_suites != running.max_concurrent_suites
            {
                tracing::warn!(
                    "only suites are reloaded; other changed settings apply at the next start"
                );
            }
        }
        Err(error) => {
            tracing::error!(error = %error_chain(&error), "config reload rejected; the running config stays");
        }
    }
}

fn new_plugin(
    name: &str,
    system: Option<&str>,
    lang: PluginLang,
    parent: &Path,
) -> anyhow::Result<ExitCode> {
    let written = testmeter::scaffold::write(&testmeter::scaffold::NewPlugin {
        name,
        system: system.unwrap_or(name),
        lang: match lang {
            PluginLang::Rust => testmeter::scaffold::Lang::Rust,
            PluginLang::Python => testmeter::scaffold::Lang::Python,
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

/// Bytes as MiB with one decimal.
fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

async fn plugins(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let agent = Agent::start(config)
        .await
        .context("failed to start the agent")?;
    let set = agent.plugins();
    for plugin in &set.plugins {
        let decl = &plugin.decl;
        let reads = plugin.reads.names();
        println!(
            "{} {} (wit {}, {}) systems: {}; reads: {}",
            decl.name,
            decl.version,
            plugin.wit.as_str(),
            plugin.path.display(),
            decl.systems.join(", "),
            if reads.is_empty() {
                "outcomes and names only".to_owned()
            } else {
                reads.join(", ")
            }
        );
        println!(
            "  memory: {} of compiled code in the agent; {} of linear memory per derivation at start (limit {})",
            mib(plugin.cost.code_bytes),
            mib(plugin.cost.instance_bytes),
            mib(agent.config.sandbox.memory_bytes)
        );
        for metric in &decl.metrics {
            println!(
                "  {:<10} {} [{}] {{{}}}: {}",
                metric.kind.as_str(),
                metric.name,
                metric.unit,
                metric.label_keys.join(","),
                metric.description
            );
        }
        for slo in &decl.slos {
            println!(
                "  slo {} ({}, for {}s): {}",
                slo.name, slo.severity, slo.for_seconds, slo.expr
            );
        }
    }
    for failure in &set.load_failures {
        println!("not loaded: {}", failure.error);
    }
    if let Err(error) = agent.telemetry.shutdown().await {
        tracing::warn!(%error, "metrics shutdown incomplete");
    }
    Ok(if agent.plugins().load_failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
