//! The results tree the upstream OSWorld harness writes, found among the run's artifacts:
//! `<action_space>/<observation_type>/<model>/<domain>/<example_id>/` under its result dir, with
//! `result.txt` (the evaluator's score, one number) and `traj.jsonl` (one JSON object per
//! action, with its `step_num`; an `{"Error": ...}` line when the example raised).
//!
//! Scores are read as the harness's `show_result.py` reads them: a number, or `True`/`False`
//! (its `eval` fallback), and anything else counts as 0 (its `get_result`'s `except`), with a
//! warning. An example without `result.txt` did not finish (it crashed, or the run stopped):
//! the harness leaves it out of the success rate and runs it again when it resumes.

use std::collections::BTreeMap;

use testmeter_plugin_sdk::{log, Artifact, LogLevel};

/// One example of the tree.
#[derive(Debug, Default)]
pub struct Example {
    /// The score in `result.txt`, when the example finished.
    pub score: Option<f64>,
    /// Whether `result.txt` was written during this run.
    pub score_fresh: bool,
    /// Steps taken: the distinct `step_num`s of `traj.jsonl`.
    pub steps: Option<u64>,
    /// `traj.jsonl` has an `{"Error": ...}` line: the example raised.
    pub crashed: bool,
    /// Whether `traj.jsonl` was written during this run.
    pub traj_fresh: bool,
}

/// The examples of a results tree, by (domain, example id).
#[derive(Debug, Default)]
pub struct Tree {
    pub examples: BTreeMap<(String, String), Example>,
}

/// The tree among `artifacts`, or `None` when no artifact is a `result.txt` or `traj.jsonl` of
/// one (at least `<domain>/<example_id>/` above the file).
pub fn find(artifacts: &[Artifact]) -> Option<Tree> {
    let mut tree = Tree::default();
    for artifact in artifacts {
        let parts: Vec<&str> = artifact.name.split('/').collect();
        let [.., domain, example_id, file] = parts.as_slice() else {
            continue;
        };
        if *file != "result.txt" && *file != "traj.jsonl" {
            continue;
        }
        let example = tree
            .examples
            .entry(((*domain).to_owned(), (*example_id).to_owned()))
            .or_default();
        if *file == "result.txt" {
            example.score = Some(score(&artifact.name, &artifact.content));
            example.score_fresh = artifact.fresh;
        } else {
            let (steps, crashed) = trajectory(&artifact.name, &artifact.content);
            example.steps = steps;
            example.crashed = crashed;
            example.traj_fresh = artifact.fresh;
        }
    }
    (!tree.examples.is_empty()).then_some(tree)
}

/// A `result.txt` as `show_result.py` reads it.
fn score(name: &str, content: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(content);
    let text = text.trim();
    if let Ok(value) = text.parse::<f64>() {
        if value.is_finite() {
            return value;
        }
    }
    match text {
        "True" => 1.0,
        "False" => 0.0,
        _ => {
            log(
                LogLevel::Warn,
                &format!("{name}: {text:?} is not a score; counted as 0, as show_result.py does"),
            );
            0.0
        }
    }
}

/// The steps of a `traj.jsonl` (distinct `step_num`s; `None` when a line is not JSON) and
/// whether it records an error.
fn trajectory(name: &str, content: &[u8]) -> (Option<u64>, bool) {
    let mut steps: Vec<u64> = Vec::new();
    let mut crashed = false;
    let mut malformed = 0usize;
    for line in content.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(entry) => {
                crashed |= entry.get("Error").is_some();
                if let Some(step) = entry.get("step_num").and_then(serde_json::Value::as_u64) {
                    if !steps.contains(&step) {
                        steps.push(step);
                    }
                }
            }
            Err(_) => malformed += 1,
        }
    }
    if malformed > 0 {
        log(
            LogLevel::Warn,
            &format!("{name}: {malformed} line(s) are not JSON; its steps are left out"),
        );
        return (None, crashed);
    }
    (Some(steps.len() as u64), crashed)
}
