//! `testmeter check` over files: finds the PromQL in Grafana dashboards (any panel, rows
//! included) and Prometheus rule files, checks each expression against the contract, checks
//! `job` matchers and loaded rule files against a scrape config, and renders the findings as
//! text or JSON.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::check::{check_expr, FindingKind, Problem};
use super::model::Contract;
use super::promql;
use super::rules::RuleFile;

/// Why an input could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Grafana dashboard: {reason}")]
    Dashboard { path: PathBuf, reason: String },
    #[error("{path} is not a Prometheus rule file: {reason}")]
    Rules { path: PathBuf, reason: String },
    #[error("{path} is not a Prometheus config: {reason}")]
    ScrapeConfig { path: PathBuf, reason: String },
    #[error("{path}: expected .json (dashboard) or .yml/.yaml (rule file)")]
    UnknownFile { path: PathBuf },
}

/// Where an expression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A dashboard panel: it should return data.
    Panel,
    /// An alerting or recording rule: an alert's condition is empty while it is healthy.
    Rule,
    /// Not an expression: a finding about a whole file.
    File,
}

/// One PromQL expression and where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    pub file: String,
    /// `panel 4 "Overall System Health", target A` or `group warning_alerts, rule X`.
    pub location: String,
    pub expr: String,
    #[serde(skip)]
    pub source: Source,
}

/// A problem at a place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub at: Reference,
    #[serde(flatten)]
    pub problem: Problem,
}

/// Everything `check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub files: usize,
    pub expressions: usize,
    pub findings: Vec<Finding>,
    /// Every expression checked, for the live check.
    #[serde(skip)]
    pub references: Vec<Reference>,
}

/// The parts of a Prometheus config `check` reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScrapeConfig {
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeJob>,
    /// The config's own path; `rule_files` are relative to its directory.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScrapeJob {
    pub job_name: String,
}

impl ScrapeConfig {
    pub fn load(path: &Path) -> Result<Self, CheckError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: ScrapeConfig =
            serde_yaml::from_str(&text).map_err(|e| CheckError::ScrapeConfig {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        config.path = path.to_path_buf();
        Ok(config)
    }

    fn jobs(&self) -> BTreeSet<&str> {
        self.scrape_configs
            .iter()
            .map(|job| job.job_name.as_str())
            .collect()
    }

    /// Whether one of `rule_files` (globs, relative to the config's directory) matches `file`.
    fn loads(&self, file: &Path) -> bool {
        let base = self.path.parent().unwrap_or(Path::new("."));
        let Ok(file) = std::fs::canonicalize(file) else {
            return false;
        };
        self.rule_files.iter().any(|pattern| {
            let full = base.join(pattern);
            glob::glob(&full.to_string_lossy())
                .map(|paths| {
                    paths
                        .flatten()
                        .any(|p| std::fs::canonicalize(p).is_ok_and(|p| p == file))
                })
                .unwrap_or(false)
        })
    }
}

/// Every `.json`, `.yml` and `.yaml` under the given files and dirs, sorted.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CheckError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| CheckError::Read {
                path: path.clone(),
                source,
            })?;
            let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            children.sort();
            let children: Vec<PathBuf> = children
                .into_iter()
                .filter(|p| {
                    p.is_dir()
                        || p.extension()
                            .is_some_and(|e| e == "json" || e == "yml" || e == "yaml")
                })
                .collect();
            files.extend(expand(&children)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Every PromQL expression of one dashboard, with its panel.
pub fn dashboard_references(path: &Path, text: &str) -> Result<Vec<Reference>, CheckError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| CheckError::Dashboard {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    // The HTTP API's wrapper `{"dashboard": {...}}` is accepted as well as the bare model.
    let dashboard = value.get("dashboard").unwrap_or(&value);
    let Some(panels) = dashboard.get("panels").and_then(|p| p.as_array()) else {
        return Err(CheckError::Dashboard {
            path: path.to_path_buf(),
            reason: "no \"panels\" array".to_owned(),
        });
    };
    let mut out = Vec::new();
    collect_panels(path, panels, &mut out);
    Ok(out)
}

fn collect_panels(path: &Path, panels: &[serde_json::Value], out: &mut Vec<Reference>) {
    for panel in panels {
        let title = panel.get("title").and_then(|t| t.as_str()).unwrap_or("");
        let id = panel
            .get("id")
            .map(|id| id.to_string())
            .unwrap_or_else(|| "?".to_owned());
        let targets = panel.get("targets").and_then(|t| t.as_array());
        for (index, target) in targets.into_iter().flatten().enumerate() {
            let Some(expr) = target.get("expr").and_then(|e| e.as_str()) else {
                continue;
            };
            let ref_id = target
                .get("refId")
                .and_then(|r| r.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("#{}", index + 1));
            out.push(Reference {
                file: path.display().to_string(),
                location: format!("panel {id} {title:?}, target {ref_id}"),
                expr: expr.to_owned(),
                source: Source::Panel,
            });
        }
        if let Some(children) = panel.get("panels").and_then(|p| p.as_array()) {
            collect_panels(path, children, out);
        }
    }
}

/// Every expression of one rule file, with its group and rule.
pub fn rule_references(path: &Path, text: &str) -> Result<Vec<Reference>, CheckError> {
    let file: RuleFile = serde_yaml::from_str(text).map_err(|e| CheckError::Rules {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(file
        .groups
        .iter()
        .flat_map(|group| {
            group.rules.iter().map(|rule| Reference {
                file: path.display().to_string(),
                location: format!("group {}, rule {}", group.name, rule.name()),
                expr: rule.expr.clone(),
                source: Source::Rule,
            })
        })
        .collect())
}

/// `job` matchers that no scrape job of the config satisfies.
fn job_problems(expr: &str, jobs: &BTreeSet<&str>) -> Vec<Problem> {
    let Ok(parsed) = promql::parse(expr) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for selector in promql::selectors(&parsed) {
        for matcher in selector
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name == "job")
        {
            let matched = jobs.iter().any(|job| matcher.is_match(job));
            if !matched {
                problems.push(Problem {
                    kind: FindingKind::UnknownJob,
                    message: format!(
                        "job{}{:?} matches no scrape job of the config ({})",
                        matcher.op,
                        matcher.value,
                        jobs.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                    suggestion: None,
                });
            }
        }
    }
    problems
}

/// Checks every file against the contract (and the scrape config, if given).
pub fn check_files(
    contract: &Contract,
    paths: &[PathBuf],
    scrape: Option<&ScrapeConfig>,
) -> Result<CheckReport, CheckError> {
    let mut report = CheckReport::default();
    for path in expand(paths)? {
        let text = std::fs::read_to_string(&path).map_err(|source| CheckError::Read {
            path: path.clone(),
            source,
        })?;
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let references = match extension {
            "json" => dashboard_references(&path, &text)?,
            "yml" | "yaml" => {
                let references = rule_references(&path, &text)?;
                if let Some(scrape) = scrape {
                    if !scrape.loads(&path) {
                        report.findings.push(Finding {
                            at: Reference {
                                file: path.display().to_string(),
                                location: "the whole file".to_owned(),
                                expr: String::new(),
                                source: Source::File,
                            },
                            problem: Problem {
                                kind: FindingKind::RuleFileNotLoaded,
                                message: format!(
                                    "{} does not load this file (rule_files: [{}]), so none of its alerts can fire",
                                    scrape.path.display(),
                                    scrape.rule_files.join(", ")
                                ),
                                suggestion: None,
                            },
                        });
                    }
                }
                references
            }
            _ => return Err(CheckError::UnknownFile { path }),
        };
        report.files += 1;
        report.expressions += references.len();
        report.references.extend(references.iter().cloned());
        for reference in references {
            let mut problems = check_expr(contract, &reference.expr);
            if let Some(scrape) = scrape {
                problems.extend(job_problems(&reference.expr, &scrape.jobs()));
            }
            report
                .findings
                .extend(problems.into_iter().map(|problem| Finding {
                    at: reference.clone(),
                    problem,
                }));
        }
    }
    Ok(report)
}

impl CheckReport {
    /// Human-readable findings, one block per finding, and a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            out.push_str(&format!("{}: {}\n", finding.at.file, finding.at.location));
            if !finding.at.expr.is_empty() {
                out.push_str(&format!("  expr: {}\n", finding.at.expr));
            }
            let kind = serde_json::to_value(finding.problem.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push_str(&format!("  {kind}: {}\n", finding.problem.message));
            if let Some(suggestion) = &finding.problem.suggestion {
                out.push_str(&format!("  suggestion: {suggestion}\n"));
            }
        }
        out.push_str(&format!(
            "{} finding(s) in {} expression(s) of {} file(s)\n",
            self.findings.len(),
            self.expressions,
            self.files
        ));
        out
    }
}
