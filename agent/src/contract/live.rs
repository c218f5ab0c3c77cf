//! `testmeter check --prometheus URL`: asks a running Prometheus whether every series the
//! checked files reference exists with a recent sample, and whether every dashboard query
//! returns data. A Prometheus that cannot be reached is an error, never "all fine".

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use super::check::{FindingKind, Problem};
use super::check_files::{Finding, Reference, Source};
use super::promql;

/// Why the live check could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot query Prometheus at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} refused the query {query:?}: {reason}")]
    Query {
        url: String,
        query: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// A client of one Prometheus server's HTTP API.
pub struct Prometheus {
    base: String,
    agent: ureq::Agent,
}

impl Prometheus {
    pub fn new(url: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            base: url.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    /// Whether an instant query returns anything: a non-empty vector or matrix, or a scalar.
    pub fn has_data(&self, query: &str) -> Result<bool, LiveError> {
        let url = format!("{}/api/v1/query", self.base);
        let unreachable = |reason: String| LiveError::Unreachable {
            url: self.base.clone(),
            reason,
        };
        let response: ApiResponse = self
            .agent
            .get(&url)
            .query("query", query)
            .call()
            .map_err(|e| unreachable(e.to_string()))?
            .body_mut()
            .read_json()
            .map_err(|e| unreachable(format!("not a Prometheus API response: {e}")))?;
        if response.status != "success" {
            return Err(LiveError::Query {
                url: self.base.clone(),
                query: query.to_owned(),
                reason: response.error.unwrap_or_else(|| response.status.clone()),
            });
        }
        let Some(data) = response.data else {
            return Ok(false);
        };
        Ok(match data.result_type.as_str() {
            "scalar" | "string" => true,
            _ => data.result.as_array().is_some_and(|r| !r.is_empty()),
        })
    }
}

/// Live findings for every reference: `no_data` for a referenced series without a recent
/// sample, and `empty_result` for a dashboard query that returns nothing although its series
/// exist. Expressions that do not parse are left to the offline check.
pub fn check(prometheus: &Prometheus, references: &[Reference]) -> Result<Vec<Finding>, LiveError> {
    let mut findings = Vec::new();
    let mut missing: BTreeSet<String> = BTreeSet::new();
    let mut present: BTreeSet<String> = BTreeSet::new();
    for reference in references.iter().filter(|r| r.source != Source::File) {
        let Ok(expr) = promql::parse(&reference.expr) else {
            continue;
        };
        let mut any_missing = false;
        for selector in promql::selectors(&expr) {
            let text = promql::current_selector(selector);
            let exists = if present.contains(&text) {
                true
            } else if missing.contains(&text) {
                false
            } else {
                // An instant selector only sees samples from the last 5 minutes (the lookback).
                let found = prometheus.has_data(&format!("count({text})"))?;
                if found {
                    present.insert(text.clone());
                } else {
                    missing.insert(text.clone());
                }
                found
            };
            if !exists {
                any_missing = true;
                findings.push(Finding {
                    at: reference.clone(),
                    problem: Problem {
                        kind: FindingKind::NoData,
                        message: format!("no series {text} with a sample in the last 5m"),
                        suggestion: None,
                    },
                });
            }
        }
        if reference.source == Source::Panel
            && !any_missing
            && !prometheus.has_data(&expr.to_string())?
        {
            findings.push(Finding {
                at: reference.clone(),
                problem: Problem {
                    kind: FindingKind::EmptyResult,
                    message: "every series exists, but the query returns nothing".to_owned(),
                    suggestion: None,
                },
            });
        }
    }
    Ok(findings)
}
