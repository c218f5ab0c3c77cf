//! Real servers on loopback, stopped when dropped: a rotel OTLP collector and Prometheus.

use std::collections::BTreeMap;

use super::*;

/// A span as rotel printed it.
#[derive(Debug, Default, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    /// Empty for a root span.
    pub parent_id: String,
    pub id: String,
    pub name: String,
    pub status: String,
    pub status_message: String,
    /// Values as rotel prints them: `Str(...)`, `Int(...)`, `Bool(...)`, `Double(...)`.
    pub attributes: BTreeMap<String, String>,
    pub events: Vec<BTreeMap<String, String>>,
    pub resource: BTreeMap<String, String>,
}

/// A real rotel OTLP collector on loopback that logs every metric (or, started with
/// [`Rotel::start_traces`], every span) it receives to a file.
pub struct Rotel {
    pub grpc_port: u16,
    pub http_port: u16,
    log: PathBuf,
    _guard: Guard,
}

impl Rotel {
    pub fn start(dir: &Path) -> Self {
        Self::start_on(dir, free_port(), free_port(), "rotel")
    }

    /// A collector that logs the spans it receives rather than the metrics.
    pub fn start_traces(dir: &Path) -> Self {
        Self::spawn(dir, free_port(), free_port(), "rotel-traces", "traces")
    }

    /// A collector on given ports, logging to `<dir>/<name>.log`: a second one can take over
    /// the ports of one that was stopped.
    pub fn start_on(dir: &Path, grpc_port: u16, http_port: u16, name: &str) -> Self {
        Self::spawn(dir, grpc_port, http_port, name, "metrics")
    }

    /// `signal`: what its debug log prints (rotel's `--debug-log` takes one of metrics,
    /// traces, logs).
    fn spawn(dir: &Path, grpc_port: u16, http_port: u16, name: &str, signal: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("rotel log");
        let guard = Guard::spawn(
            "rotel-agent",
            Command::new(rotel_agent())
                .args(["start", "--otlp-grpc-endpoint"])
                .arg(format!("127.0.0.1:{grpc_port}"))
                .arg("--otlp-http-endpoint")
                .arg(format!("127.0.0.1:{http_port}"))
                .args(["--exporter", "blackhole", "--debug-log", signal])
                .args(["--debug-log-verbosity", "detailed"])
                .arg("--pid-file")
                .arg(dir.join(format!("{name}.pid")))
                .stdout(out.try_clone().expect("clone log handle"))
                .stderr(out),
        );
        let rotel = Self {
            grpc_port,
            http_port,
            log,
            _guard: guard,
        };
        wait_for("rotel to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", grpc_port)).ok()?;
            std::net::TcpStream::connect(("127.0.0.1", http_port)).ok()
        });
        rotel
    }

    /// Every span rotel received so far, from its detailed debug log (a collector started
    /// with [`Rotel::start_traces`]), each with its batch's resource attributes.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let mut spans = Vec::new();
        let mut resource = BTreeMap::new();
        // Where an `-> key: value` line goes: the resource, the span, or its latest event.
        #[derive(PartialEq)]
        enum In {
            Resource,
            Span,
            Event,
            Other,
        }
        let mut at = In::Other;
        for line in self.output().lines() {
            let trimmed = line.trim();
            if line.starts_with("ResourceSpans #") {
                resource = BTreeMap::new();
                at = In::Other;
            } else if line.starts_with("Resource attributes:") {
                at = In::Resource;
            } else if line.starts_with("ScopeSpans #") {
                at = In::Other;
            } else if line.starts_with("Span #") {
                spans.push(ReceivedSpan {
                    resource: resource.clone(),
                    ..ReceivedSpan::default()
                });
                at = In::Other;
            } else if line.starts_with("Attributes:") {
                at = In::Span;
            } else if line.starts_with("SpanEvent #") {
                if let Some(span) = spans.last_mut() {
                    span.events.push(BTreeMap::new());
                }
                at = In::Event;
            } else if let Some(pair) = trimmed.strip_prefix("-> ") {
                let Some((key, value)) = pair.split_once(": ") else {
                    continue;
                };
                let (key, value) = (key.to_owned(), value.to_owned());
                match at {
                    In::Resource => {
                        resource.insert(key, value);
                    }
                    In::Span => {
                        if let Some(span) = spans.last_mut() {
                            span.attributes.insert(key, value);
                        }
                    }
                    In::Event => {
                        if let Some(event) = spans.last_mut().and_then(|s| s.events.last_mut()) {
                            event.insert(key, value);
                        }
                    }
                    In::Other => {}
                }
            } else if let Some((field, value)) = trimmed.split_once(" : ") {
                let Some(span) = spans.last_mut() else {
                    continue;
                };
                let value = value.trim().to_owned();
                match field.trim() {
                    "Trace ID" => span.trace_id = value,
                    "Parent ID" => span.parent_id = value,
                    "ID" => span.id = value,
                    "Name" => span.name = value,
                    "Status code" => span.status = value,
                    "Status message" => span.status_message = value,
                    _ => {}
                }
            } else if trimmed == "Events:" {
                at = In::Other;
            }
        }
        spans
    }

    /// What rotel printed so far, without colours.
    pub fn output(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Waits until every one of `expected` has arrived; returns all names received by then.
    pub fn wait_for_metrics(&self, expected: &[&str]) -> Vec<String> {
        wait_for(
            "the collector to receive the metrics",
            Duration::from_secs(30),
            || {
                let names = self.metric_names();
                expected
                    .iter()
                    .all(|m| names.iter().any(|n| n == m))
                    .then_some(names)
            },
        )
    }

    /// The latest value rotel received of every number series (gauges and sums) and of every
    /// histogram's `_count` and `_sum`, keyed `name{k="v",...}` with sorted attributes (the
    /// resource's and scope's left out), from its detailed debug log.
    pub fn values(&self) -> std::collections::BTreeMap<String, f64> {
        let mut values = std::collections::BTreeMap::new();
        let (mut name, mut attrs, mut in_attrs) = (String::new(), Vec::new(), false);
        let key = |name: &str, suffix: &str, attrs: &[String]| {
            let mut attrs = attrs.to_vec();
            attrs.sort();
            format!("{name}{suffix}{{{}}}", attrs.join(","))
        };
        for line in self.output().lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("-> Name: ") {
                name = rest.to_owned();
            } else if line.starts_with("NumberDataPoints #")
                || line.starts_with("HistogramDataPoints #")
            {
                attrs.clear();
                in_attrs = false;
            } else if line == "Data point attributes:" {
                in_attrs = true;
            } else if let (true, Some(rest)) = (in_attrs, line.strip_prefix("-> ")) {
                if let Some((k, v)) = rest.split_once(": ") {
                    let v = v
                        .strip_prefix("Str(")
                        .and_then(|v| v.strip_suffix(')'))
                        .unwrap_or(v);
                    attrs.push(format!("{k}={v:?}"));
                }
            } else if line.starts_with("StartTimestamp: ") {
                in_attrs = false;
            } else if let Some(value) = line.strip_prefix("Value: ") {
                if let Ok(value) = value.parse() {
                    values.insert(key(&name, "", &attrs), value);
                }
            } else if let Some(count) = line.strip_prefix("Count: ") {
                if let Ok(count) = count.parse() {
                    values.insert(key(&name, "_count", &attrs), count);
                }
            } else if let Some(sum) = line.strip_prefix("Sum: ") {
                if let Ok(sum) = sum.parse() {
                    values.insert(key(&name, "_sum", &attrs), sum);
                }
            }
        }
        values
    }

    /// The metric names rotel received, sorted and deduplicated.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .output()
            .lines()
            .filter_map(|line| line.trim().strip_prefix("-> Name: "))
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// A real Prometheus server on loopback, scraping `target` every second.
pub struct Prometheus {
    pub port: u16,
    _guard: Guard,
}

impl Prometheus {
    pub fn start(dir: &Path, target: &str) -> Self {
        Self::start_with_job(
            dir,
            &format!(
                "  - job_name: testmeter\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
    }

    /// A Prometheus scraping every second with one given scrape job (YAML under
    /// `scrape_configs:`).
    pub fn start_with_job(dir: &Path, job: &str) -> Self {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{job}"
            ),
        )
        .expect("prometheus config");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let guard = Guard::spawn(
            "prometheus",
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Scrapes then ask for OpenMetrics first, and exemplars are kept.
                .arg("--enable-feature=exemplar-storage")
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log),
        );
        let prometheus = Self {
            port,
            _guard: guard,
        };
        wait_for("prometheus to be ready", Duration::from_secs(30), || {
            ureq::get(&format!("http://127.0.0.1:{port}/-/ready"))
                .call()
                .ok()
        });
        prometheus
    }

    /// The exemplars of the series `promql` selects over the last hour
    /// (`/api/v1/query_exemplars`): each with its `labels` (trace_id, span_id), `value` and
    /// `timestamp`.
    pub fn exemplars(&self, promql: &str) -> Vec<serde_json::Value> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let body: serde_json::Value = ureq::get(&format!(
            "http://127.0.0.1:{}/api/v1/query_exemplars",
            self.port
        ))
        .query("query", promql)
        .query("start", (now - 3600).to_string())
        .query("end", (now + 60).to_string())
        .call()
        .expect("query exemplars")
        .body_mut()
        .read_json()
        .expect("json answer");
        assert_eq!(
            body["status"], "success",
            "exemplars of {promql} failed: {body}"
        );
        body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|series| series["exemplars"].as_array())
            .flatten()
            .cloned()
            .collect()
    }

    /// Runs an instant query and returns its result vector.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let body: serde_json::Value =
            ureq::get(&format!("http://127.0.0.1:{}/api/v1/query", self.port))
                .query("query", promql)
                .call()
                .expect("query prometheus")
                .body_mut()
                .read_json()
                .expect("json answer");
        assert_eq!(body["status"], "success", "query {promql} failed: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The single value of an instant query, if the result has exactly one series.
    pub fn value(&self, promql: &str) -> Option<f64> {
        match self.query(promql).as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Every metric name Prometheus has stored.
    pub fn names(&self) -> Vec<String> {
        let body: serde_json::Value = ureq::get(&format!(
            "http://127.0.0.1:{}/api/v1/label/__name__/values",
            self.port
        ))
        .call()
        .expect("label values")
        .body_mut()
        .read_json()
        .expect("json answer");
        body["data"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
