//! `testmeter check`, offline: every PromQL expression of dashboards and rule files checked
//! against the contract with a real parser. It finds unknown series (with a suggestion), a
//! function used on the wrong kind, matchers on labels a metric does not have, and vector
//! operations whose label sets cannot match.

use std::collections::BTreeSet;

use promql_parser::label::MatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, VectorSelector};
use serde::Serialize;

use super::model::{Contract, SeriesRef, Suffix};
use super::promql;
use crate::catalog::MetricKind;

/// What is wrong with an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The expression does not parse.
    Syntax,
    /// A series name nothing exports.
    UnknownMetric,
    /// `rate()` on a gauge, `histogram_quantile` on something other than `_bucket`, ...
    WrongKind,
    /// A matcher on a label the metric does not carry.
    UnknownLabel,
    /// A binary operation whose sides cannot match without `on()`/`ignoring()`.
    UnmatchedLabels,
    /// A `job` matcher no scrape job provides.
    UnknownJob,
    /// A rule file the scrape config does not load.
    RuleFileNotLoaded,
    /// Live: a referenced series has no recent sample in Prometheus.
    NoData,
    /// Live: a dashboard query returns nothing although its series exist.
    EmptyResult,
}

/// One problem in one expression, before it is placed in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: FindingKind,
    pub message: String,
    /// A likely fix, when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl Problem {
    fn new(kind: FindingKind, message: String, suggestion: Option<String>) -> Self {
        Self {
            kind,
            message,
            suggestion,
        }
    }
}

/// Checks one PromQL expression against the contract.
pub fn check_expr(contract: &Contract, text: &str) -> Vec<Problem> {
    let expr = match promql::parse(text) {
        Ok(expr) => expr,
        Err(error) => {
            return vec![Problem::new(
                FindingKind::Syntax,
                format!("does not parse: {error}"),
                None,
            )]
        }
    };
    let mut checker = Checker {
        contract,
        problems: Vec::new(),
    };
    checker.names_and_labels(&expr);
    checker.functions(&expr);
    checker.shape(&expr);
    checker.problems
}

/// The label set an expression's result carries: `None` when unknown (an unknown metric).
#[derive(Debug, Clone)]
enum Shape {
    Scalar,
    Vector(Option<BTreeSet<String>>),
}

struct Checker<'a> {
    contract: &'a Contract,
    problems: Vec<Problem>,
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

impl Checker<'_> {
    fn push(&mut self, kind: FindingKind, message: String, suggestion: Option<String>) {
        let problem = Problem::new(kind, message, suggestion);
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    /// The closest exported name to an unknown one.
    fn suggest(&self, name: &str) -> Option<String> {
        let known = |candidate: &str| self.contract.series(candidate).is_some();
        if let Some(base) = self.contract.metrics.get(name) {
            if base.decl.kind == MetricKind::Histogram {
                return Some(format!(
                    "{name} is a histogram: query {name}_bucket (for histogram_quantile), {name}_sum or {name}_count"
                ));
            }
        }
        let mut candidates = Vec::new();
        let mut stripped = name;
        while let Some(shorter) = stripped.strip_suffix("_total") {
            stripped = shorter;
            candidates.push(stripped.to_owned());
            candidates.push(format!("{stripped}_total"));
        }
        candidates.push(format!("{name}_total"));
        candidates.push(format!("{name}_bucket"));
        if let Some(found) = candidates.iter().find(|c| c.as_str() != name && known(c)) {
            return Some(format!("did you mean {found}?"));
        }
        let limit = (name.len() / 4).max(3);
        self.contract
            .series_names()
            .into_iter()
            .map(|candidate| (levenshtein(name, &candidate), candidate))
            .filter(|(distance, _)| *distance <= limit)
            .min()
            .map(|(_, candidate)| format!("did you mean {candidate}?"))
    }

    fn series(&self, selector: &VectorSelector) -> Option<SeriesRef<'_>> {
        promql::metric_name(selector).and_then(|name| self.contract.series(name))
    }

    fn names_and_labels(&mut self, expr: &Expr) {
        for selector in promql::selectors(expr) {
            let Some(name) = promql::metric_name(selector) else {
                continue;
            };
            let Some(series) = self.contract.series(name) else {
                let suggestion = self.suggest(name);
                self.push(
                    FindingKind::UnknownMetric,
                    format!("{name} is not exported by any loaded plugin or by the agent"),
                    suggestion,
                );
                continue;
            };
            let labels = self.contract.labels_of(&series);
            for matcher in &selector.matchers.matchers {
                if matcher.name == "__name__" || labels.contains(&matcher.name) {
                    continue;
                }
                // A matcher that only accepts the empty value matches series without the label.
                if matches!(matcher.op, MatchOp::Equal) && matcher.value.is_empty() {
                    continue;
                }
                self.push(
                    FindingKind::UnknownLabel,
                    format!(
                        "{name} has no label {:?}; its labels are {}",
                        matcher.name,
                        labels.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    None,
                );
            }
        }
    }

    fn functions(&mut self, expr: &Expr) {
        match expr {
            Expr::Call(call) => {
                self.call_kinds(call);
                for arg in &call.args.args {
                    self.functions(arg);
                }
            }
            Expr::Aggregate(aggregate) => {
                self.functions(&aggregate.expr);
                if let Some(param) = &aggregate.param {
                    self.functions(param);
                }
            }
            Expr::Binary(binary) => {
                self.functions(&binary.lhs);
                self.functions(&binary.rhs);
            }
            Expr::Paren(paren) => self.functions(&paren.expr),
            Expr::Unary(unary) => self.functions(&unary.expr),
            Expr::Subquery(subquery) => self.functions(&subquery.expr),
            _ => {}
        }
    }

    fn call_kinds(&mut self, call: &Call) {
        let function = call.func.name;
        let selectors_of = |index: usize| -> Vec<&VectorSelector> {
            call.args
                .args
                .get(index)
                .map(|arg| promql::selectors(arg))
                .unwrap_or_default()
        };
        match function {
            "rate" | "irate" | "increase" | "resets" => {
                for selector in selectors_of(0) {
                    if let Some(series) = self.series(selector) {
                        if !series.is_counter_like() {
                            let name = promql::metric_name(selector).unwrap_or_default();
                            self.push(
                                FindingKind::WrongKind,
                                format!(
                                    "{function}() on {name}, a {}: it only makes sense on counters",
                                    series.metric.decl.kind.as_str()
                                ),
                                Some(format!(
                                    "use {name} directly, or delta()/deriv() for its change"
                                )),
                            );
                        }
                    }
                }
            }
            "delta" | "idelta" | "deriv" | "predict_linear" => {
                for selector in selectors_of(0) {
                    if let Some(series) = self.series(selector) {
                        if series.suffix == Suffix::None
                            && series.metric.decl.kind == MetricKind::Counter
                        {
                            let name = promql::metric_name(selector).unwrap_or_default();
                            self.push(
                                FindingKind::WrongKind,
                                format!("{function}() on {name}, a counter: counter resets make it wrong"),
                                Some(format!("use rate({name}[...]) or increase({name}[...])")),
                            );
                        }
                    }
                }
            }
            "histogram_quantile" => {
                for selector in selectors_of(1) {
                    let Some(name) = promql::metric_name(selector) else {
                        continue;
                    };
                    if let Some(series) = self.contract.series(name) {
                        if series.suffix != Suffix::Bucket {
                            self.push(
                                FindingKind::WrongKind,
                                format!("histogram_quantile() over {name}, which is not a histogram's _bucket series"),
                                None,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn shape(&mut self, expr: &Expr) -> Shape {
        match expr {
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Shape::Scalar,
            Expr::VectorSelector(selector) => self.selector_shape(selector),
            Expr::MatrixSelector(matrix) => self.selector_shape(&matrix.vs),
            Expr::Paren(paren) => self.shape(&paren.expr),
            Expr::Unary(unary) => self.shape(&unary.expr),
            Expr::Subquery(subquery) => self.shape(&subquery.expr),
            Expr::Aggregate(aggregate) => self.aggregate_shape(aggregate),
            Expr::Call(call) => self.call_shape(call),
            Expr::Binary(binary) => self.binary_shape(binary),
        }
    }

    fn selector_shape(&self, selector: &VectorSelector) -> Shape {
        Shape::Vector(
            self.series(selector)
                .map(|series| self.contract.labels_of(&series)),
        )
    }

    fn aggregate_shape(&mut self, aggregate: &AggregateExpr) -> Shape {
        let inner = self.shape(&aggregate.expr);
        if let Some(param) = &aggregate.param {
            self.shape(param);
        }
        let op = aggregate.op.to_string();
        if matches!(op.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") {
            return inner;
        }
        let inner = match inner {
            Shape::Vector(labels) => labels,
            Shape::Scalar => Some(BTreeSet::new()),
        };
        match &aggregate.modifier {
            Some(LabelModifier::Include(by)) => {
                Shape::Vector(Some(by.labels.iter().cloned().collect()))
            }
            Some(LabelModifier::Exclude(without)) => Shape::Vector(inner.map(|labels| {
                labels
                    .into_iter()
                    .filter(|l| !without.labels.contains(l))
                    .collect()
            })),
            None => Shape::Vector(Some(BTreeSet::new())),
        }
    }

    fn call_shape(&mut self, call: &Call) -> Shape {
        let shapes: Vec<Shape> = call.args.args.iter().map(|arg| self.shape(arg)).collect();
        if call.func.return_type == ValueType::Scalar {
            return Shape::Scalar;
        }
        match call.func.name {
            "vector" => Shape::Vector(Some(BTreeSet::new())),
            "absent" | "absent_over_time" => {
                let labels = call
                    .args
                    .args
                    .first()
                    .map(|arg| promql::selectors(arg))
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(|s| &s.matchers.matchers)
                    .filter(|m| matches!(m.op, MatchOp::Equal) && m.name != "__name__")
                    .map(|m| m.name.clone())
                    .collect();
                Shape::Vector(Some(labels))
            }
            "histogram_quantile" => match shapes.get(1) {
                Some(Shape::Vector(Some(labels))) => {
                    let mut labels = labels.clone();
                    labels.remove("le");
                    Shape::Vector(Some(labels))
                }
                _ => Shape::Vector(None),
            },
            "label_replace" | "label_join" => {
                let added = call.args.args.get(1).and_then(|arg| match arg.as_ref() {
                    Expr::StringLiteral(s) => Some(s.val.clone()),
                    _ => None,
                });
                match shapes.into_iter().next() {
                    Some(Shape::Vector(Some(mut labels))) => {
                        labels.extend(added);
                        Shape::Vector(Some(labels))
                    }
                    _ => Shape::Vector(None),
                }
            }
            _ => shapes
                .into_iter()
                .find(|s| matches!(s, Shape::Vector(_)))
                .unwrap_or(Shape::Vector(None)),
        }
    }

    fn binary_shape(&mut self, binary: &BinaryExpr) -> Shape {
        let lhs = self.shape(&binary.lhs);
        let rhs = self.shape(&binary.rhs);
        let (left, right) = match (lhs, rhs) {
            (Shape::Scalar, other) | (other, Shape::Scalar) => return other,
            (Shape::Vector(left), Shape::Vector(right)) => (left, right),
        };
        let op = binary.op.to_string();
        if op == "or" {
            return Shape::Vector(left);
        }
        let matching = binary.modifier.as_ref().and_then(|m| m.matching.as_ref());
        let group_right = binary.modifier.as_ref().is_some_and(|m| {
            matches!(
                m.card,
                promql_parser::parser::VectorMatchCardinality::OneToMany(_)
            )
        });
        let result = if group_right {
            right.clone()
        } else {
            left.clone()
        };
        let (Some(left), Some(right)) = (left, right) else {
            return Shape::Vector(result);
        };
        let compared = |labels: &BTreeSet<String>| -> BTreeSet<String> {
            match matching {
                Some(LabelModifier::Include(on)) => labels
                    .iter()
                    .filter(|l| on.labels.contains(l))
                    .cloned()
                    .collect(),
                Some(LabelModifier::Exclude(ignoring)) => labels
                    .iter()
                    .filter(|l| !ignoring.labels.contains(l))
                    .cloned()
                    .collect(),
                None => labels.clone(),
            }
        };
        let (l, r) = (compared(&left), compared(&right));
        if l != r {
            let only_left: Vec<&String> = l.difference(&r).collect();
            let only_right: Vec<&String> = r.difference(&l).collect();
            let common: Vec<&String> = l.intersection(&r).collect();
            let list = |labels: &[&String]| {
                labels
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            self.push(
                FindingKind::UnmatchedLabels,
                format!(
                    "`{op}` between vectors whose labels differ ({} only on the left, {} only on the right): no series match, so the result is empty",
                    if only_left.is_empty() { "none".to_owned() } else { list(&only_left) },
                    if only_right.is_empty() { "none".to_owned() } else { list(&only_right) },
                ),
                Some(format!("match on(...) a subset of ({}), or ignoring({})", list(&common), list(&[only_left, only_right].concat()))),
            );
        }
        Shape::Vector(result)
    }
}
