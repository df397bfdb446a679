//! tiktoken's `encode_ordinary` for Node: GitHub's `bpe-openai` (same ids as tiktoken for the encodings it ships)
//! behind napi-rs. Ids come back as typed arrays, never as JS arrays of numbers: building a JS number per token
//! costs more than tokenizing, which is what made the native tiktoken bindings on npm slower than JS ports. One call
//! per text: against a page's tokenizing, crossing into native code costs nothing measurable (a batch call with
//! one array of ids for many texts measured the same).

use std::cell::RefCell;
use std::sync::LazyLock;

use bpe_openai::Tokenizer;
use napi::bindgen_prelude::{Error, Result, Uint32Array};
use napi_derive::napi;
use rustc_hash::FxHashMap;

/// A bpe-openai tokenizer and its vocabulary by bytes: most pieces of a text are one token, found with one lookup
/// instead of a BPE pass (as tiktoken itself does).
struct Encoding {
    tokenizer: &'static Tokenizer,
    vocabulary: FxHashMap<&'static [u8], u32>,
    /// Which slot of a thread's piece caches is this encoding's.
    slot: usize,
}

impl Encoding {
    fn new(tokenizer: &'static Tokenizer, slot: usize) -> Self {
        let bpe = &tokenizer.bpe;
        let vocabulary = (0..bpe.num_tokens() as u32).map(|id| (bpe.token_bytes(id), id)).collect();
        Encoding { tokenizer, vocabulary, slot }
    }

    fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        PIECES.with_borrow_mut(|caches| {
            let cache = &mut caches[self.slot];
            for piece in self.tokenizer.split(text) {
                let bytes = piece.as_bytes();
                if let Some(&id) = self.vocabulary.get(bytes) {
                    out.push(id);
                } else if let Some(ids) = cache.get(bytes) {
                    out.extend_from_slice(ids);
                } else {
                    let ids = self.tokenizer.bpe.encode_via_backtracking(bytes);
                    out.extend_from_slice(&ids);
                    if bytes.len() <= CACHED_PIECE_BYTES {
                        if cache.len() >= CACHED_PIECES {
                            cache.clear();
                        }
                        cache.insert(bytes.into(), ids.into());
                    }
                }
            }
        });
    }
}

/// Pieces of several tokens recur (Zipf): each thread keeps their ids, bounded, per encoding.
const CACHED_PIECES: usize = 1 << 16;
const CACHED_PIECE_BYTES: usize = 64;
type PieceCache = FxHashMap<Box<[u8]>, Box<[u32]>>;
thread_local! {
    static PIECES: RefCell<[PieceCache; 2]> = RefCell::new(Default::default());
}

static CL100K_BASE: LazyLock<Encoding> = LazyLock::new(|| Encoding::new(bpe_openai::cl100k_base(), 0));
static O200K_BASE: LazyLock<Encoding> = LazyLock::new(|| Encoding::new(bpe_openai::o200k_base(), 1));

fn encoding(name: &str) -> Option<&'static Encoding> {
    match name {
        "cl100k_base" => Some(&CL100K_BASE),
        "o200k_base" => Some(&O200K_BASE),
        _ => None,
    }
}

/// The encodings this addon serves; others take the JS path.
#[napi]
pub fn encodings() -> Vec<String> {
    vec!["cl100k_base".to_owned(), "o200k_base".to_owned()]
}

/// One encoding's tokenizer. Special-token strings in the text are ordinary text: bpe-openai knows no specials.
#[napi]
pub struct Encoder {
    encoding: &'static Encoding,
}

#[napi]
impl Encoder {
    #[napi(constructor)]
    pub fn new(name: String) -> Result<Self> {
        encoding(&name)
            .map(|encoding| Encoder { encoding })
            .ok_or_else(|| Error::from_reason(format!("the native tokenizer has no encoding \"{name}\"")))
    }

    #[napi]
    pub fn encode_ordinary(&self, text: String) -> Uint32Array {
        let mut ids = Vec::with_capacity(text.len() / 3);
        self.encoding.encode_into(&text, &mut ids);
        Uint32Array::new(ids)
    }
}

