//! A test case borrowed: what a [`crate::CaseSink`] receives. A stream hands on most cases
//! straight from the reader's buffers, without building a `quick_junit::TestCase` for each;
//! a case the model holds is viewed the same way. Either is one case of the one model, and
//! [`CaseView::to_case`] gives the owned `TestCase` back.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use quick_junit::{Property, TestCase, TestCaseStatus, XmlString};

/// One test case, every string borrowed and cleaned as `XmlString::new` cleans it.
#[derive(Debug, Clone, Copy)]
pub struct CaseView<'a> {
    pub name: &'a str,
    pub classname: Option<&'a str>,
    pub time: Option<Duration>,
    pub timestamp: Option<DateTime<FixedOffset>>,
    pub assertions: Option<usize>,
    /// The outcome with its reruns or flaky runs, as the model holds it.
    pub status: &'a TestCaseStatus,
    pub properties: Properties<'a>,
    pub system_out: Option<&'a str>,
    pub system_err: Option<&'a str>,
}

/// A case's `<property>` elements, as (name, value) pairs in report order.
#[derive(Debug, Clone, Copy)]
pub struct Properties<'a>(Repr<'a>);

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    Model(&'a [Property]),
    /// Where the names and values are in a text the reader keeps.
    Spans {
        text: &'a str,
        spans: &'a [(Span, Span)],
    },
}

/// Where one string is in a case's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub(crate) fn of(self, text: &str) -> &str {
        text.get(self.start..self.end).unwrap_or("")
    }
}

impl<'a> Properties<'a> {
    pub(crate) fn spans(text: &'a str, spans: &'a [(Span, Span)]) -> Self {
        Properties(Repr::Spans { text, spans })
    }

    /// How many properties there are.
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Model(properties) => properties.len(),
            Repr::Spans { spans, .. } => spans.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each property's name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (model, spans, text) = match self.0 {
            Repr::Model(properties) => (properties, &[][..], ""),
            Repr::Spans { text, spans } => (&[][..], spans, text),
        };
        model
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .chain(spans.iter().map(move |(n, v)| (n.of(text), v.of(text))))
    }
}

impl<'a> CaseView<'a> {
    /// Views a case the model holds.
    pub fn of(case: &'a TestCase) -> Self {
        CaseView {
            name: case.name.as_str(),
            classname: case.classname.as_ref().map(|c| c.as_str()),
            time: case.time,
            timestamp: case.timestamp,
            assertions: case.assertions,
            status: &case.status,
            properties: Properties(Repr::Model(&case.properties)),
            system_out: case.system_out.as_ref().map(|s| s.as_str()),
            system_err: case.system_err.as_ref().map(|s| s.as_str()),
        }
    }

    /// The case as the model holds it, owned.
    pub fn to_case(&self) -> TestCase {
        self.build(self.status.clone(), |text| XmlString::new(text))
    }

    /// The owned case with `status` in place of the view's (moved in, not copied), its
    /// classname and property strings made by `share` (which may hand out shared copies).
    pub(crate) fn build(
        &self,
        status: TestCaseStatus,
        mut share: impl FnMut(&str) -> XmlString,
    ) -> TestCase {
        let mut case = TestCase::new(self.name, status);
        case.classname = self.classname.map(&mut share);
        case.time = self.time;
        case.timestamp = self.timestamp;
        case.assertions = self.assertions;
        case.properties = self
            .properties
            .iter()
            .map(|(name, value)| Property::new(share(name), share(value)))
            .collect();
        case.system_out = self.system_out.map(XmlString::new);
        case.system_err = self.system_err.map(XmlString::new);
        case
    }
}

/// True when `XmlString::new` would keep `text` as it is: no control character but a line
/// feed, no DEL, and no lead byte of a C1 control (0xC2). Conservative: text it says no to
/// may still be clean, and is then cleaned by `XmlString::new` itself.
pub(crate) fn is_clean(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Line feeds are clean, and rare in the short strings that are most of a report.
    !crate::bytes::any_control_or(bytes, &[0x7f, 0xc2])
        || bytes
            .iter()
            .all(|&byte| (byte >= 0x20 || byte == b'\n') && byte != 0x7f && byte != 0xc2)
}

/// Appends `text` to `out` cleaned as `XmlString::new` cleans it, and says where it is.
pub(crate) fn push_clean(out: &mut String, text: &str) -> Span {
    let start = out.len();
    if is_clean(text) {
        out.push_str(text);
    } else {
        out.push_str(XmlString::new(text).as_str());
    }
    Span {
        start,
        end: out.len(),
    }
}

/// `text` cleaned as `XmlString::new` cleans it, without a copy when it is clean already.
pub(crate) fn clean(text: String) -> String {
    if is_clean(&text) {
        text
    } else {
        XmlString::new(text).into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_what_xml_string_makes() {
        let texts = [
            "plain text, line\nends",
            "tab\there",
            "cr\r\nlf",
            "\u{1b}[31mred\u{1b}[0m",
            "bell\u{7}",
            "del\u{7f}",
            "c1 \u{9b}31m csi",
            "© café ß 日本",
            "nul\0",
            "",
        ];
        for text in texts {
            let mut out = String::from("x");
            let span = push_clean(&mut out, text);
            let made = XmlString::new(text);
            assert_eq!(span.of(&out), made.as_str(), "{text:?}");
            assert_eq!(clean(text.to_owned()), made.as_str(), "{text:?}");
            if is_clean(text) {
                assert_eq!(made.as_str(), text, "{text:?} is said to be clean");
            }
        }
    }

    #[test]
    fn a_view_gives_back_the_case_it_views() {
        let mut case = TestCase::new("t", TestCaseStatus::success());
        case.classname = Some("c".into());
        case.time = Some(Duration::from_millis(1500));
        case.assertions = Some(3);
        case.properties = vec![Property::new("a", "1"), Property::new("b", "2")];
        case.system_out = Some("out".into());
        let view = CaseView::of(&case);
        assert_eq!(
            view.properties.iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "2")]
        );
        assert_eq!(view.to_case(), case);
    }
}
