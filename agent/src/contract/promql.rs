//! PromQL through a real parser (`promql-parser`): parsing with Grafana's variables resolved,
//! walking every vector selector, and reading an SLO's threshold (`expr < 90`).

use promql_parser::parser::{self, BinaryExpr, Expr, VectorSelector};

/// Grafana's built-in interval variables, replaced by a valid duration before parsing.
const GRAFANA_INTERVALS: &[&str] = &[
    "$__rate_interval",
    "${__rate_interval}",
    "$__interval",
    "${__interval}",
    "$__range",
    "${__range}",
];

/// Parses an expression, first replacing Grafana's interval variables with `5m`.
pub fn parse(expr: &str) -> Result<Expr, String> {
    let mut text = expr.to_owned();
    for variable in GRAFANA_INTERVALS {
        text = text.replace(variable, "5m");
    }
    parser::parse(&text)
}

/// A comparison operator of an SLO condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    fn of(op: &str) -> Option<Self> {
        Some(match op {
            "<" => Comparison::Less,
            "<=" => Comparison::LessOrEqual,
            ">" => Comparison::Greater,
            ">=" => Comparison::GreaterOrEqual,
            _ => return None,
        })
    }

    /// The same condition with its operands swapped (`90 > x` is `x < 90`).
    fn flipped(self) -> Self {
        match self {
            Comparison::Less => Comparison::Greater,
            Comparison::LessOrEqual => Comparison::GreaterOrEqual,
            Comparison::Greater => Comparison::Less,
            Comparison::GreaterOrEqual => Comparison::LessOrEqual,
        }
    }

    /// True when `value` breaches a condition with this operator and `threshold`.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Less => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
            Comparison::Greater => value > threshold,
            Comparison::GreaterOrEqual => value >= threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
        }
    }
}

/// An SLO condition of the form `<value expression> <op> <number>`.
#[derive(Debug, Clone)]
pub struct Threshold {
    /// The watched expression, as PromQL text.
    pub value: String,
    pub comparison: Comparison,
    pub threshold: f64,
}

/// The threshold of `expr` when it is a filtering comparison against a number.
pub fn threshold(expr: &Expr) -> Option<Threshold> {
    let Expr::Binary(BinaryExpr {
        op,
        lhs,
        rhs,
        modifier,
    }) = unparen(expr)
    else {
        return None;
    };
    if modifier.as_ref().is_some_and(|m| m.return_bool) {
        return None;
    }
    let comparison = Comparison::of(&op.to_string())?;
    match (unparen(lhs), unparen(rhs)) {
        (value, Expr::NumberLiteral(number)) if !matches!(value, Expr::NumberLiteral(_)) => {
            Some(Threshold {
                value: value.to_string(),
                comparison,
                threshold: number.val,
            })
        }
        (Expr::NumberLiteral(number), value) if !matches!(value, Expr::NumberLiteral(_)) => {
            Some(Threshold {
                value: value.to_string(),
                comparison: comparison.flipped(),
                threshold: number.val,
            })
        }
        _ => None,
    }
}

fn unparen(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(paren) => unparen(&paren.expr),
        other => other,
    }
}

/// Every vector selector in `expr` (those inside range selectors and subqueries included), in
/// the order they appear.
pub fn selectors(expr: &Expr) -> Vec<&VectorSelector> {
    let mut found = Vec::new();
    collect(expr, &mut found);
    found
}

fn collect<'a>(expr: &'a Expr, found: &mut Vec<&'a VectorSelector>) {
    match expr {
        Expr::VectorSelector(selector) => found.push(selector),
        Expr::MatrixSelector(matrix) => found.push(&matrix.vs),
        Expr::Aggregate(aggregate) => {
            if let Some(param) = &aggregate.param {
                collect(param, found);
            }
            collect(&aggregate.expr, found);
        }
        Expr::Unary(unary) => collect(&unary.expr, found),
        Expr::Binary(binary) => {
            collect(&binary.lhs, found);
            collect(&binary.rhs, found);
        }
        Expr::Paren(paren) => collect(&paren.expr, found),
        Expr::Subquery(subquery) => collect(&subquery.expr, found),
        Expr::Call(call) => {
            for arg in &call.args.args {
                collect(arg, found);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// A selector as an instant query asking for its series now: its name and matchers, without
/// `offset` or `@`.
pub fn current_selector(selector: &VectorSelector) -> String {
    let mut bare = selector.clone();
    bare.offset = None;
    bare.at = None;
    bare.to_string()
}

/// The metric name a selector asks for: its name, or a `__name__="..."` matcher.
pub fn metric_name(selector: &VectorSelector) -> Option<&str> {
    selector.name.as_deref().or_else(|| {
        selector
            .matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && matches!(m.op, promql_parser::label::MatchOp::Equal))
            .map(|m| m.value.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold_of(expr: &str) -> Option<(String, &'static str, f64)> {
        threshold(&parse(expr).expect("parses"))
            .map(|t| (t.value, t.comparison.as_str(), t.threshold))
    }

    #[test]
    fn reads_thresholds_on_either_side_and_ignores_the_rest() {
        assert_eq!(
            threshold_of(r#"genesis_osworld_success_rate{task_category="all"} < 90"#),
            Some((
                r#"genesis_osworld_success_rate{task_category="all"}"#.to_owned(),
                "<",
                90.0
            ))
        );
        assert_eq!(
            threshold_of("20 < genesis_langmem_memory_usage_mb"),
            Some(("genesis_langmem_memory_usage_mb".to_owned(), ">", 20.0))
        );
        assert_eq!(
            threshold_of("(genesis_osworld_memory_usage_bytes / 1024 / 1024) > 20")
                .map(|t| (t.1, t.2)),
            Some((">", 20.0))
        );
        assert_eq!(threshold_of("x > bool 3"), None);
        assert_eq!(threshold_of("x > y"), None);
        assert_eq!(threshold_of("absent(x)"), None);
    }

    #[test]
    fn finds_every_selector_and_resolves_grafana_intervals() {
        let expr = parse(
            "histogram_quantile(0.95, sum by (le) (rate(a_bucket[$__rate_interval]))) / on() group_left b{c=\"d\"}",
        )
        .expect("parses");
        let names: Vec<_> = selectors(&expr)
            .into_iter()
            .filter_map(metric_name)
            .collect();
        assert_eq!(names, ["a_bucket", "b"]);
        assert!(parse("rate(x[5m]").is_err());
    }
}
