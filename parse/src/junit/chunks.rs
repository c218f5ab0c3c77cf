//! Tokenizing on a thread of its own: the tokenizer hands over each buffer it has read with
//! the tokens it found in it (a [`Chunk`]), and the reader takes the tokens from those chunks
//! on its thread. For a large report this moves about a third of the parse off the reader's
//! core; the tokens are the same as the tokenizer's own, in the same order, with the same
//! errors at the same offsets.

use std::io::Read;
use std::ops::Range;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use super::xml::{view, Raw, Token, Tokenizer, XmlError, XmlErrorKind};

/// Chunks the tokenizer may be ahead of the reader.
const CHUNKS_AHEAD: usize = 2;

/// Input bytes in a chunk: with its tokens, a chunk takes about three times this, and about
/// five chunks are alive at once. Each handover can wake the other thread; at 256 KiB a 100k
/// case ingest was 4–10% faster than at 64 KiB (three interleaved runs of 15–41 rounds), for
/// 0.7 MiB more peak RSS.
const CHUNK_BYTES: usize = 256 * 1024;

/// Reports at least this large are tokenized on a thread of their own; for smaller ones the
/// thread would cost more than it saves.
pub(crate) const THREADED_FROM_BYTES: u64 = 1 << 20;

/// A buffer the tokenizer has read and every token it found in it.
struct Chunk {
    bytes: Bytes,
    tokens: Vec<(u64, Raw)>,
    /// The attributes of every start tag in `tokens`, each tag's `attributes` a range here.
    attributes: Vec<(Range<usize>, Range<usize>)>,
    /// Where the input is after the last token: the next token's offset.
    end: u64,
    /// The input stops after these tokens with this error.
    error: Option<XmlError>,
}

/// A chunk's bytes, as text when they are all valid UTF-8 (checked once, on the tokenizer's
/// thread).
enum Bytes {
    Text(String),
    Raw(Vec<u8>),
}

impl Bytes {
    fn of(mut bytes: Vec<u8>, consumed: usize) -> Bytes {
        bytes.truncate(consumed);
        match String::from_utf8(bytes) {
            Ok(text) => Bytes::Text(text),
            Err(invalid) => Bytes::Raw(invalid.into_bytes()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Bytes::Text(text) => text.as_bytes(),
            Bytes::Raw(bytes) => bytes,
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Bytes::Text(text) => text.into_bytes(),
            Bytes::Raw(bytes) => bytes,
        }
    }
}

impl Chunk {
    fn new(at: u64) -> Chunk {
        Chunk {
            bytes: Bytes::Raw(Vec::new()),
            tokens: Vec::new(),
            attributes: Vec::new(),
            end: at,
            error: None,
        }
    }

    /// A chunk the reader is done with, emptied for the tokens from `at` on; its buffer is
    /// returned for the tokenizer to read into. Reusing them keeps every allocation of the
    /// tokenizer's on its own thread, and the memory flat.
    fn reuse(mut self, at: u64) -> (Chunk, Vec<u8>) {
        let bytes = std::mem::replace(&mut self.bytes, Bytes::Raw(Vec::new())).into_vec();
        self.tokens.clear();
        self.attributes.clear();
        self.end = at;
        self.error = None;
        (self, bytes)
    }
}

/// Hands the bytes the tokenizer has read to `chunk`, whose tokens cover them; the tokenizer
/// goes on in `buffer`.
fn seal<R: Read>(chunk: &mut Chunk, tokenizer: &mut Tokenizer<R>, buffer: Vec<u8>) {
    let (bytes, consumed) = tokenizer.swap_buffer(buffer);
    chunk.bytes = Bytes::of(bytes, consumed);
}

/// Runs on the tokenizer's thread: tokenizes `input` and sends the chunks, until the input
/// ends, an error stops it, or the reader hangs up.
fn tokenize<R: Read>(
    mut tokenizer: Tokenizer<R>,
    chunks: SyncSender<Chunk>,
    spent: Receiver<Chunk>,
) {
    let mut chunk = Chunk::new(0);
    loop {
        match tokenizer.advance() {
            Ok(Some((at, raw))) => {
                let eof = matches!(raw, Raw::Eof);
                let raw = match raw {
                    Raw::Start {
                        tag, name, empty, ..
                    } => {
                        let first = chunk.attributes.len();
                        chunk.attributes.extend_from_slice(tokenizer.attributes());
                        Raw::Start {
                            tag,
                            name,
                            attributes: first..chunk.attributes.len(),
                            empty,
                        }
                    }
                    raw => raw,
                };
                chunk.tokens.push((at, raw));
                chunk.end = tokenizer.position();
                if eof {
                    seal(&mut chunk, &mut tokenizer, Vec::new());
                    let _ = chunks.send(chunk);
                    return;
                }
            }
            Ok(None) if chunk.tokens.is_empty() => {
                if let Err(error) = tokenizer.fill() {
                    chunk.error = Some(error);
                    let _ = chunks.send(chunk);
                    return;
                }
            }
            Ok(None) => {
                // The buffer is read: hand it over with its tokens and go on in another.
                let at = tokenizer.position();
                let (next, buffer) = match spent.try_recv() {
                    Ok(done) => done.reuse(at),
                    Err(_) => (Chunk::new(at), Vec::new()),
                };
                seal(&mut chunk, &mut tokenizer, buffer);
                if chunks.send(std::mem::replace(&mut chunk, next)).is_err() {
                    return;
                }
            }
            Err(error) => {
                seal(&mut chunk, &mut tokenizer, Vec::new());
                chunk.error = Some(error);
                let _ = chunks.send(chunk);
                return;
            }
        }
    }
}

/// The reader's side: the tokens of the chunks as they arrive.
pub(crate) struct ChunkTokens {
    chunks: Receiver<Chunk>,
    /// Chunks the reader is done with, for the tokenizer to fill again.
    spent: Sender<Chunk>,
    chunk: Chunk,
    next: usize,
}

impl ChunkTokens {
    /// The next token and its offset in the input.
    pub fn next_located(&mut self) -> Result<(u64, Token<'_>), XmlError> {
        while self.next == self.chunk.tokens.len() {
            if let Some(error) = self.chunk.error.take() {
                return Err(error);
            }
            let Ok(chunk) = self.chunks.recv() else {
                return Err(XmlError {
                    offset: self.chunk.end,
                    kind: XmlErrorKind::Io("the tokenizer stopped".to_owned()),
                });
            };
            let done = std::mem::replace(&mut self.chunk, chunk);
            let _ = self.spent.send(done);
            self.next = 0;
        }
        let (at, raw) = &self.chunk.tokens[self.next];
        self.next += 1;
        let text = match &self.chunk.bytes {
            Bytes::Text(text) => Some(text.as_str()),
            Bytes::Raw(_) => None,
        };
        let token = view(
            self.chunk.bytes.as_bytes(),
            text,
            &self.chunk.attributes,
            raw,
        );
        Ok((*at, token))
    }
}

/// Runs `read` over the tokens of `input`, tokenized on a scoped thread of its own. `Err`
/// gives the input back when no thread could be started (the caller tokenizes it itself).
pub(crate) fn with_tokenizer_thread<R, T>(
    input: R,
    read: impl FnOnce(&mut ChunkTokens) -> T,
) -> Result<T, R>
where
    R: Read + Send,
{
    with_tokenizer_thread_sized(input, CHUNK_BYTES, read)
}

/// [`with_tokenizer_thread`] with buffers of `buffer_size` bytes (tests use small ones, for
/// many chunks).
pub(super) fn with_tokenizer_thread_sized<R, T>(
    input: R,
    buffer_size: usize,
    read: impl FnOnce(&mut ChunkTokens) -> T,
) -> Result<T, R>
where
    R: Read + Send,
{
    let (chunk_sender, chunks) = mpsc::sync_channel(CHUNKS_AHEAD);
    let (spent, spent_receiver) = mpsc::channel();
    // The input is handed to the thread only once it is known to have started.
    let (input_sender, input_receiver) = mpsc::sync_channel::<R>(1);
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("testmeter-tokenize".to_owned())
            .spawn_scoped(scope, move || {
                if let Ok(input) = input_receiver.recv() {
                    let tokenizer = Tokenizer::with_buffer(input, buffer_size);
                    tokenize(tokenizer, chunk_sender, spent_receiver);
                }
            });
        if spawned.is_err() {
            return Err(input);
        }
        if let Err(returned) = input_sender.send(input) {
            return Err(returned.0);
        }
        let mut tokens = ChunkTokens {
            chunks,
            spent,
            chunk: Chunk::new(0),
            next: 0,
        };
        Ok(read(&mut tokens))
    })
}
