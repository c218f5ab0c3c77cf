//! A run's place in a distributed trace: the W3C trace context (`traceparent`) a CI job hands
//! the agent, and the one the agent hands the suites it starts.

use std::fmt;

/// The ids of a span as W3C trace context carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub span_id: u64,
    /// The caller chose to record this trace (the `sampled` flag).
    pub sampled: bool,
}

/// A run's span: its own ids, and the span it is a child of when a caller passed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTrace {
    pub span: TraceContext,
    /// The remote parent (`TRACEPARENT` of the CI job), if any.
    pub parent: Option<TraceContext>,
}

/// Why a `traceparent` value was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a W3C traceparent (version-traceid-spanid-flags in lowercase hex): {0:?}")]
pub struct BadTraceparent(pub String);

impl TraceContext {
    /// The environment variable the context travels in, as otel-cli and the OpenTelemetry
    /// SDKs' environment carriers name it.
    pub const VARIABLE: &'static str = "TRACEPARENT";

    /// Parses a `traceparent` header value (W3C Trace Context, level 1). A later version is
    /// read by its first four fields, as the specification asks; version `ff`, all-zero ids
    /// and upper-case hex are refused.
    pub fn parse(value: &str) -> Result<Self, BadTraceparent> {
        let bad = || BadTraceparent(value.to_owned());
        let value = value.trim();
        let mut fields = value.split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2)
            || version == "ff"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
        {
            return Err(bad());
        }
        // Version 00 has exactly four fields; a later one may append more.
        if version == "00" && fields.next().is_some() {
            return Err(bad());
        }
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| bad())?;
        let span_id = u64::from_str_radix(span, 16).map_err(|_| bad())?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| bad())?;
        if trace_id == 0 || span_id == 0 {
            return Err(bad());
        }
        Ok(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// From this process's `TRACEPARENT`: `None` when unset or empty, an error when it is not
    /// a trace context.
    pub fn from_env() -> Option<Result<Self, BadTraceparent>> {
        std::env::var(Self::VARIABLE)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| Self::parse(&v))
    }

    /// The trace id as 32 lowercase hex digits, as backends show it.
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` value (version 00).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_traceparent() {
        // The example of the W3C Trace Context specification, section 3.2.
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(value).expect("valid");
        assert_eq!(context.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id, 0x00f0_67aa_0ba9_02b7);
        assert!(context.sampled);
        assert_eq!(context.to_string(), value);
        let unsampled =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .expect("valid");
        assert!(!unsampled.sampled);
        // A later version may carry more fields.
        assert!(TraceContext::parse(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds"
        )
        .is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_trace_context() {
        for value in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(
                TraceContext::parse(value),
                Err(BadTraceparent(value.to_owned())),
                "{value}"
            );
        }
    }
}
