//! Guest `minilm`: the all-MiniLM-L6-v2 sentence embedding (BERT, 6 layers, hidden 384) on candle-core, with
//! the BERT WordPiece tokenizer inside the guest.
//!
//! - Blob 0: `model.safetensors` (the BertModel weights, F32, as shipped by sentence-transformers).
//! - Blob 1: `vocab.txt` (30522 tokens, one per line).
//! - Blob 2: the text, UTF-8 (a trap if it is not). Tokenized uncased (lowercase, accents stripped, split on
//!   whitespace and punctuation, greedy longest-match WordPiece with `##`), `[CLS]` ... `[SEP]`, at most 256
//!   tokens (the rest of the text is cut off).
//! - Output: the L2-normalized mean-pooled embedding, 384 f32 little-endian (1536 bytes).
//!
//! Segments: 1. read the safetensors header, tokenize, embeddings; 2-7. encoder layers 0-5; 8. pooling,
//! normalization, output. Each segment reads only the weights it needs (the embedding segment only the word
//! embedding rows of the input's tokens) and drops them before it ends.
//!
//! The model code is in `model.rs` and `tokenizer.rs`, which opml-guests' tests also compile natively.

mod kernel;
mod model;
mod tokenizer;

opml_guest_sdk::entry!(model::MiniLm::new);
