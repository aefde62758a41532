// all-MiniLM-L6-v2 on candle-core: the guest program, segment by segment. Shared by the guest (`lib.rs`) and
// opml-guests' native tests (`include!`, next to `tokenizer.rs` as the sibling module `tokenizer`).

use candle_core::{D, DType, Device, Tensor};
use opml_guest_sdk::safetensors::Index;
use opml_guest_sdk::{Program, Step};

use super::tokenizer::{self, Vocab};

/// Blob 0: `model.safetensors` (BertModel weights, F32).
pub const BLOB_MODEL: u32 = 0;
/// Blob 1: `vocab.txt`.
pub const BLOB_VOCAB: u32 = 1;
/// Blob 2: the text to embed, UTF-8.
pub const BLOB_TEXT: u32 = 2;

pub const HIDDEN: usize = 384;
pub const LAYERS: usize = 6;
pub const HEADS: usize = 12;
pub const HEAD_DIM: usize = HIDDEN / HEADS;
pub const INTERMEDIATE: usize = 1536;
pub const VOCAB_SIZE: usize = 30522;
pub const MAX_POSITIONS: usize = 512;
/// Longest input in tokens, `[CLS]` and `[SEP]` included (sentence-transformers' `max_seq_length`); the rest of
/// a longer text is cut off.
pub const MAX_TOKENS: usize = 256;
const LAYER_NORM_EPS: f64 = 1e-12;
/// Output length: 384 f32, little-endian.
pub const OUTPUT_LEN: usize = 4 * HIDDEN;

/// Unwraps a candle result; a failure is a bug or a malformed model blob, and traps the guest.
fn ok<T>(r: candle_core::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("minilm: {e}"))
}

/// Reads the whole F32 tensor `name` with shape `shape` as a candle tensor (on the CPU).
fn weight(index: &Index, name: &str, shape: &[usize]) -> Tensor {
    let data = index.read_f32_shaped(name, shape).unwrap_or_else(|e| panic!("minilm: {e}"));
    ok(Tensor::from_vec(data, shape, &Device::Cpu))
}

/// `x W^T + b` with PyTorch-layout weights `prefix.weight` [out, in] and `prefix.bias` [out]. In the guest by
/// the interpreter-friendly kernel (`kernel.rs`, which streams the weights through a small buffer), natively by
/// candle's matmul.
fn linear(index: &Index, prefix: &str, x: &Tensor, out: usize, inp: usize) -> Tensor {
    let (w_name, n) = (format!("{prefix}.weight"), ok(x.dim(0)));
    let b = weight(index, &format!("{prefix}.bias"), &[out]);
    #[cfg(target_arch = "wasm32")]
    {
        index.check_f32_shape(&w_name, &[out, inp]).unwrap_or_else(|e| panic!("minilm: {e}"));
        let mut read_w = |rows: core::ops::Range<usize>, buf: &mut [f32]| {
            index.read_f32_row_range_into(&w_name, rows, buf).unwrap_or_else(|e| panic!("minilm: {e}"))
        };
        let x = ok(ok(x.flatten_all()).to_vec1::<f32>());
        let y = super::kernel::linear(&x, inp, &ok(b.to_vec1::<f32>()), &mut read_w);
        ok(Tensor::from_vec(y, (n, out), &Device::Cpu))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let w = weight(index, &w_name, &[out, inp]);
        ok(ok(ok(x.matmul(&ok(w.t()))).broadcast_add(&b)).reshape((n, out)))
    }
}

/// Layer norm over the last dimension with `prefix.weight` and `prefix.bias` (eps 1e-12).
fn layer_norm(index: &Index, prefix: &str, x: &Tensor) -> Tensor {
    let gamma = weight(index, &format!("{prefix}.weight"), &[HIDDEN]);
    let beta = weight(index, &format!("{prefix}.bias"), &[HIDDEN]);
    let mean = ok(x.mean_keepdim(D::Minus1));
    let centered = ok(x.broadcast_sub(&mean));
    let var = ok(ok(centered.sqr()).mean_keepdim(D::Minus1));
    let normed = ok(centered.broadcast_div(&ok(ok(var + LAYER_NORM_EPS).sqrt())));
    ok(ok(normed.broadcast_mul(&gamma)).broadcast_add(&beta))
}

/// Softmax over the last dimension.
fn softmax_last(x: &Tensor) -> Tensor {
    let shifted = ok(x.broadcast_sub(&ok(x.max_keepdim(D::Minus1))));
    let e = ok(shifted.exp());
    ok(e.broadcast_div(&ok(e.sum_keepdim(D::Minus1))))
}

/// Reads the vocabulary and the text blobs and tokenizes the text: `[CLS]`, word pieces, `[SEP]`, at most
/// [`MAX_TOKENS`] ids. Traps if the text is not UTF-8.
pub fn read_tokens() -> Vec<u32> {
    let vocab = opml_guest_sdk::read_to_vec(BLOB_VOCAB).expect("minilm: no vocab blob (blob 1)");
    let vocab = String::from_utf8(vocab).expect("minilm: vocab.txt is not UTF-8");
    let vocab = Vocab::parse(vocab).unwrap_or_else(|e| panic!("minilm: {e}"));
    assert_eq!(vocab.len(), VOCAB_SIZE, "minilm: vocab.txt has {} tokens, expected {VOCAB_SIZE}", vocab.len());
    let text = opml_guest_sdk::read_to_vec(BLOB_TEXT).expect("minilm: no text blob (blob 2)");
    let text = String::from_utf8(text).expect("minilm: the text blob is not UTF-8");
    tokenizer::encode(&vocab, &text, MAX_TOKENS)
}

/// The embeddings of a token sequence, [n, 384]: word + position + token type 0, then layer norm. Reads only
/// the word-embedding rows of the tokens and the first n position rows.
pub fn embed(index: &Index, tokens: &[u32]) -> Tensor {
    let n = tokens.len();
    assert!(n <= MAX_TOKENS && MAX_TOKENS <= MAX_POSITIONS, "minilm: {n} tokens");
    let rows: Vec<usize> = tokens.iter().map(|&t| t as usize).collect();
    let read = |r: Result<Vec<f32>, _>| r.unwrap_or_else(|e| panic!("minilm: {e}"));
    let word = read(index.read_f32_rows("embeddings.word_embeddings.weight", &rows));
    let position = read(index.read_f32_row_range("embeddings.position_embeddings.weight", 0..n));
    let token_type = read(index.read_f32_row_range("embeddings.token_type_embeddings.weight", 0..1));
    let word = ok(Tensor::from_vec(word, (n, HIDDEN), &Device::Cpu));
    let position = ok(Tensor::from_vec(position, (n, HIDDEN), &Device::Cpu));
    let token_type = ok(Tensor::from_vec(token_type, HIDDEN, &Device::Cpu));
    let sum = ok(ok(word + position).broadcast_add(&token_type));
    layer_norm(index, "embeddings.LayerNorm", &sum)
}

/// Self-attention half of encoder layer `l` on hidden states `x` [n, 384]: 12 heads, no mask (one unpadded
/// sequence), output projection, residual, layer norm.
pub fn attention_block(index: &Index, l: usize, x: &Tensor) -> Tensor {
    let p = format!("encoder.layer.{l}.attention");
    let n = ok(x.dim(0));
    let heads = |t: Tensor| ok(ok(ok(t.reshape((n, HEADS, HEAD_DIM))).transpose(0, 1)).contiguous());
    let q = heads(linear(index, &format!("{p}.self.query"), x, HIDDEN, HIDDEN));
    let k = heads(linear(index, &format!("{p}.self.key"), x, HIDDEN, HIDDEN));
    let v = heads(linear(index, &format!("{p}.self.value"), x, HIDDEN, HIDDEN));
    let scores = ok(ok(q.matmul(&ok(k.t()))) * (1.0 / (HEAD_DIM as f64).sqrt()));
    let context = ok(softmax_last(&scores).matmul(&v)); // [heads, n, head_dim]
    let context = ok(ok(ok(context.transpose(0, 1)).contiguous()).reshape((n, HIDDEN)));
    let out = linear(index, &format!("{p}.output.dense"), &context, HIDDEN, HIDDEN);
    layer_norm(index, &format!("{p}.output.LayerNorm"), &ok(out + x))
}

/// Feed-forward half of encoder layer `l` on hidden states `x` [n, 384]: 384 -> 1536, GELU (erf), -> 384,
/// residual, layer norm.
pub fn feed_forward_block(index: &Index, l: usize, x: &Tensor) -> Tensor {
    let p = format!("encoder.layer.{l}");
    let inter = ok(linear(index, &format!("{p}.intermediate.dense"), x, INTERMEDIATE, HIDDEN).gelu_erf());
    let out = linear(index, &format!("{p}.output.dense"), &inter, HIDDEN, INTERMEDIATE);
    layer_norm(index, &format!("{p}.output.LayerNorm"), &ok(out + x))
}

/// Encoder layer `l` on hidden states `x` [n, 384].
pub fn layer(index: &Index, l: usize, x: &Tensor) -> Tensor {
    feed_forward_block(index, l, &attention_block(index, l, x))
}

/// Mean pooling over the tokens, then L2 normalization (norm floored at 1e-12): the sentence embedding.
pub fn pool(x: &Tensor) -> Vec<f32> {
    let mean = ok(x.mean(0));
    let norm = ok(ok(ok(mean.sqr()).sum_all()).sqrt());
    let norm = ok(norm.to_dtype(DType::F32));
    let norm = ok(norm.to_scalar::<f32>()).max(1e-12);
    ok(ok(mean / f64::from(norm)).to_vec1::<f32>())
}

/// Inputs longer than this many tokens run each encoder layer in two segments (attention, then feed-forward)
/// instead of one, to keep every segment well under the ~10^9-instruction budget: a whole layer at 256 tokens
/// is ~1.45e9 wasmi fuel, its halves ~0.66e9 and ~0.79e9 fuel; a whole layer at 128 tokens ~0.65e9 fuel.
pub const SPLIT_LAYERS_ABOVE: usize = 128;

/// Where the program is: the next segment to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Tokenize, then embeddings.
    Embed,
    /// Encoder layer `l`, whole (inputs of at most [`SPLIT_LAYERS_ABOVE`] tokens).
    Layer(usize),
    /// The attention half of encoder layer `l` (longer inputs).
    Attention(usize),
    /// The feed-forward half of encoder layer `l` (longer inputs).
    FeedForward(usize),
    /// Pooling, normalization, output.
    Pool,
}

/// Number of segments for an input of `tokens` tokens: embeddings, the layers (one or two segments each),
/// pooling. (For hosts and tests; the guest itself only steps.)
#[allow(dead_code)]
pub fn segments_for(tokens: usize) -> usize {
    let per_layer = if tokens > SPLIT_LAYERS_ABOVE { 2 } else { 1 };
    2 + per_layer * LAYERS
}

/// The guest program: embeddings, the 6 layers (one segment each, or two above [`SPLIT_LAYERS_ABOVE`] tokens),
/// pooling. Between segments it keeps only the safetensors header, the token ids and the hidden states; each
/// segment reads the weights it needs and drops them.
pub struct MiniLm {
    stage: Stage,
    index: Option<Index>,
    tokens: Vec<u32>,
    hidden: Option<Tensor>,
}

impl Default for MiniLm {
    fn default() -> Self {
        Self::new()
    }
}

impl MiniLm {
    pub fn new() -> Self {
        MiniLm { stage: Stage::Embed, index: None, tokens: Vec::new(), hidden: None }
    }

    /// The first segment of layer `l` (or pooling after the last layer).
    fn first_of_layer(&self, l: usize) -> Stage {
        match (l < LAYERS, self.tokens.len() > SPLIT_LAYERS_ABOVE) {
            (false, _) => Stage::Pool,
            (true, false) => Stage::Layer(l),
            (true, true) => Stage::Attention(l),
        }
    }
}

impl Program for MiniLm {
    fn step(&mut self) -> Step {
        if self.stage == Stage::Embed {
            let index = Index::read(BLOB_MODEL).unwrap_or_else(|e| panic!("minilm: {e}"));
            self.tokens = read_tokens();
            self.hidden = Some(embed(&index, &self.tokens));
            self.index = Some(index);
            self.stage = self.first_of_layer(0);
            return Step::More;
        }
        let x = self.hidden.take().expect("hidden states");
        let index = self.index.as_ref().expect("index read in the first segment");
        let (x, next) = match self.stage {
            Stage::Embed => unreachable!("handled above"),
            Stage::Layer(l) => (layer(index, l, &x), self.first_of_layer(l + 1)),
            Stage::Attention(l) => (attention_block(index, l, &x), Stage::FeedForward(l)),
            Stage::FeedForward(l) => (feed_forward_block(index, l, &x), self.first_of_layer(l + 1)),
            Stage::Pool => {
                let embedding = pool(&x);
                assert_eq!(4 * embedding.len(), OUTPUT_LEN);
                opml_guest_sdk::write_f32_le(&embedding);
                return Step::Done;
            }
        };
        self.hidden = Some(x);
        self.stage = next;
        Step::More
    }
}
