//! Our XML tokenizer against quick-xml's on every JUnit fixture and the junit fuzz corpus.

use super::reader::Tokens;
use super::xml::{Token, Tokenizer, XmlErrorKind};
use quick_xml::events::Event;

#[derive(Debug, PartialEq)]
enum T {
    Start(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, bool),
    End,
    Text(Vec<u8>),
    CData(Vec<u8>),
    DocType(Vec<u8>),
}

fn push_text(out: &mut Vec<T>, bytes: &[u8], cdata: bool) {
    match (out.last_mut(), cdata) {
        (Some(T::Text(t)), false) | (Some(T::CData(t)), true) => t.extend_from_slice(bytes),
        _ => out.push(if cdata {
            T::CData(bytes.to_vec())
        } else {
            T::Text(bytes.to_vec())
        }),
    }
}

/// Tokens until the end or the first error (`true` when there was one).
fn ours(xml: &[u8]) -> (Vec<T>, bool) {
    let mut tokenizer = Tokenizer::new(xml);
    let mut out = Vec::new();
    loop {
        match tokenizer.next_token() {
            Ok(Token::Start(tag)) => out.push(T::Start(
                tag.local_name().to_vec(),
                tag.attributes()
                    .map(|(k, v)| (k.to_vec(), v.bytes.to_vec()))
                    .collect(),
                tag.empty,
            )),
            Ok(Token::End) => out.push(T::End),
            Ok(Token::Text(t)) => {
                // quick-xml splits references out of text, and fails on an `&` that
                // no `;` follows before another `&`; the reader here resolves them (and
                // fails on them) only in the text it keeps.
                let mut rest = t;
                while let Some(amp) = memchr::memchr(b'&', rest) {
                    match memchr::memchr2(b';', b'&', &rest[amp + 1..]) {
                        Some(end) if rest[amp + 1 + end] == b';' => {
                            rest = &rest[amp + end + 2..];
                        }
                        _ => {
                            let cut = t.len() - rest.len() + amp;
                            push_text(&mut out, &t[..cut], false);
                            return (out, true);
                        }
                    }
                }
                push_text(&mut out, t, false);
            }
            Ok(Token::CData(t)) => push_text(&mut out, t, true),
            Ok(Token::DocType(t)) => out.push(T::DocType(t.trim_ascii().to_vec())),
            Ok(Token::Eof) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

fn quick(xml: &[u8]) -> (Vec<T>, bool) {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut out = Vec::new();
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(_) => return (out, true),
        };
        let start = |e: &quick_xml::events::BytesStart<'_>, empty| {
            let attributes: Result<Vec<_>, _> = e
                .attributes()
                .with_checks(false)
                .map(|a| a.map(|a| (a.key.local_name().as_ref().to_vec(), a.value.to_vec())))
                .collect();
            attributes.map(|a| T::Start(e.local_name().as_ref().to_vec(), a, empty))
        };
        match event {
            Event::Start(e) => match start(&e, false) {
                Ok(t) => out.push(t),
                Err(_) => return (out, true),
            },
            Event::Empty(e) => match start(&e, true) {
                Ok(t) => out.push(t),
                Err(_) => return (out, true),
            },
            Event::End(_) => out.push(T::End),
            Event::Text(t) => push_text(&mut out, &t, false),
            Event::GeneralRef(r) => {
                push_text(&mut out, &[b"&", &r[..], b";"].concat(), false);
            }
            Event::CData(t) => push_text(&mut out, &t, true),
            Event::DocType(t) => out.push(T::DocType(t.trim_ascii().to_vec())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => return (out, false),
        }
    }
}

#[path = "../../tests/support/inputs.rs"]
mod inputs;

/// The XML fixtures of the repository.
fn xml_fixtures() -> Vec<std::path::PathBuf> {
    let mut paths = inputs::files(&inputs::fixtures_dir());
    paths.retain(|p| p.extension().is_some_and(|e| e == "xml"));
    paths
}

/// The fuzz corpus's JUnit inputs, unpacked into a directory of their own named after
/// `test` (removed by the caller when done).
fn junit_corpus(test: &str) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let dir = inputs::unpack_fuzz_corpus(test);
    let paths = inputs::files(&dir.join("corpus/junit"));
    (dir, paths)
}

#[test]
fn every_fixture_tokenizes_as_quick_xml_does() {
    let mut compared = 0;
    for path in &xml_fixtures() {
        let xml = std::fs::read(path).expect("fixture");
        let theirs = quick(&xml);
        assert!(!theirs.1, "quick-xml reads {}", path.display());
        assert_eq!(ours(&xml), theirs, "{}", path.display());
        compared += 1;
    }
    assert!(compared >= 15, "{compared} fixtures");
}

/// Where both read an input to its end, the tokens are the same; where either stops,
/// the tokens before are the same. Where only ours refuses an input, the tokens before
/// are quick-xml's and ours is a syntax error in a tag (`<>`, `<a b>`, `<a/b="1">`),
/// which quick-xml only reports when the tag's attributes are read.
#[test]
fn the_fuzz_corpus_tokenizes_as_quick_xml_does() {
    let (dir, paths) = junit_corpus("corpus");
    let (mut agree, mut stricter, mut differ) = (0, 0, Vec::new());
    for path in &paths {
        let xml = std::fs::read(path).expect("corpus file");
        let (ours, our_error) = ours(&xml);
        let (theirs, their_error) = quick(&xml);
        let n = ours.len().min(theirs.len());
        let same_prefix = ours[..n] == theirs[..n];
        let syntax_error = || {
            let mut tokenizer = Tokenizer::new(&xml[..]);
            loop {
                match tokenizer.next_token() {
                    Ok(Token::Eof) => return false,
                    Ok(_) => {}
                    Err(error) => return matches!(error.kind, XmlErrorKind::Syntax(_)),
                }
            }
        };
        match (our_error, their_error) {
            (false, false) if ours == theirs => agree += 1,
            (true, true) if same_prefix => agree += 1,
            (true, false) if same_prefix && syntax_error() => stricter += 1,
            _ => differ.push(path.file_name().map(|n| n.to_string_lossy().into_owned())),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(paths.len() > 1000, "{} corpus files", paths.len());
    assert!(
        differ.is_empty(),
        "{} of {} differ: {differ:?}",
        differ.len(),
        paths.len()
    );
    // Most of the corpus is read alike; a few fuzzed tags are refused only here.
    assert!(
        stricter * 20 < agree,
        "{stricter} refused only here, {agree} alike"
    );
}

/// One token, exactly: where it starts, and everything in it.
fn describe(at: u64, token: &Token<'_>) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match token {
        Token::Start(tag) => {
            let attributes: Vec<String> = tag
                .attributes()
                .map(|(k, v)| format!("{}={:?}/{}", text(k), text(v.bytes), v.text.is_some()))
                .collect();
            format!(
                "{at} <{} {attributes:?} {}>",
                text(tag.local_name()),
                tag.empty
            )
        }
        Token::End => format!("{at} end"),
        Token::Text(t) => format!("{at} text {:?}", text(t)),
        Token::CData(t) => format!("{at} cdata {:?}", text(t)),
        Token::DocType(t) => format!("{at} doctype {:?}", text(t)),
        Token::Eof => format!("{at} eof"),
    }
}

/// Every token until the end of the input, or the error that stops it, described.
fn described(tokens: &mut impl Tokens) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match tokens.next_located() {
            Ok((_, Token::Eof)) => return out,
            Ok((at, token)) => out.push(describe(at, &token)),
            Err(error) => {
                out.push(format!("error at {}: {}", error.offset, error.kind));
                return out;
            }
        }
    }
}

fn on_this_thread(xml: &[u8], buffer: usize) -> Vec<String> {
    described(&mut Tokenizer::with_buffer(xml, buffer))
}

fn through_chunks(xml: &[u8], buffer: usize) -> Vec<String> {
    super::chunks::with_tokenizer_thread_sized(xml, buffer, described)
        .unwrap_or_else(|_| panic!("a tokenizer thread starts"))
}

/// Tokens handed over in chunks from another thread are the tokenizer's own, with the same
/// positions and errors, for every fixture and corpus input, with buffers small enough to cut
/// every token somewhere.
#[test]
fn tokens_from_another_thread_are_the_same() {
    let (dir, corpus) = junit_corpus("chunks");
    let mut paths = xml_fixtures();
    paths.extend(corpus);
    for path in &paths {
        let xml = std::fs::read(path).expect("input");
        for buffer in [16, 100, 4096] {
            assert_eq!(
                through_chunks(&xml, buffer),
                on_this_thread(&xml, buffer),
                "{} with {buffer}-byte buffers",
                path.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(paths.len() > 1000, "{} inputs", paths.len());
}
