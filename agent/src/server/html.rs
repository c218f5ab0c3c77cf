//! What the endpoint's HTML pages share: their style sheet, text escaping and elapsed times.

use std::time::{Duration, SystemTime};

/// The style sheet of every page.
pub const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}\
header{padding:16px 24px;border-bottom:1px solid #d0d7de;background:#f6f8fa}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}\
main{padding:0 24px 24px}nav a{margin-right:16px}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;vertical-align:top;padding:6px 10px;border-bottom:1px solid #d0d7de}\
th{background:#f6f8fa;font-weight:600}\
ul.slos{list-style:none;margin:0;padding:0}ul.slos li{margin:0 0 4px}\
.badge{display:inline-block;min-width:64px;padding:2px 8px;border-radius:4px;\
color:#fff;font-weight:600;text-align:center}\
.passed,.met{background:#1a7f37}.failed,.breached,.error{background:#cf222e}\
.partial{background:#bf8700}.unknown,.pending{background:#6e7781}\
small{color:#59636e}code{font-size:12px}.problem{color:#cf222e}";

/// Whole seconds since `then`, as `3m 12s`.
pub fn ago(then: SystemTime, now: SystemTime) -> String {
    let elapsed = now.duration_since(then).unwrap_or_default();
    humantime::format_duration(Duration::from_secs(elapsed.as_secs())).to_string()
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
