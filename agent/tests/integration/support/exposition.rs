//! Reading the Prometheus exposition a test scraped.

/// The exposition lines that start with one of `prefixes`, sorted, for snapshots.
pub fn lines_starting_with<'a>(exposition: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    let mut lines: Vec<&str> = exposition
        .lines()
        .filter(|line| prefixes.iter().any(|p| line.starts_with(p)))
        .collect();
    lines.sort_unstable();
    lines
}

/// The body of a GET to `url`, or None while the server is not answering.
pub fn scrape(url: &str) -> Option<String> {
    ureq::get(url).call().ok()?.body_mut().read_to_string().ok()
}

/// The value of the first exposition line starting with `prefix` (a name and its labels).
pub fn exposition_value(exposition: &str, prefix: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

/// Runs of a suite in `testmeter_suite_runs_total`, whatever their result.
pub fn suite_runs(exposition: &str, suite: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| {
            l.starts_with("testmeter_suite_runs_total{")
                && l.contains(&format!("suite=\"{suite}\""))
        })
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}
