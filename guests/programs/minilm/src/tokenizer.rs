// BERT WordPiece tokenizer (uncased), as the `tokenizers` library runs it for all-MiniLM-L6-v2
// (`tokenizer.json`: BertNormalizer{clean_text, handle_chinese_chars, strip_accents = lowercase = true},
// BertPreTokenizer, WordPiece{unk "[UNK]", prefix "##", max 100 chars per word}, [CLS] ... [SEP]).
// Shared by the guest (`lib.rs`) and opml-guests' native tests (`include!`).

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// Words longer than this (in chars) become `[UNK]`.
const MAX_CHARS_PER_WORD: usize = 100;
/// Prefix of a word piece that continues a word.
const CONTINUATION: &str = "##";

/// The vocabulary (`vocab.txt`: one token per line, the id is the line number), kept as the text plus a table
/// sorted by token for binary search.
pub struct Vocab {
    text: String,
    /// (start, end, id) of each token in `text`, sorted by token.
    entries: Vec<(u32, u32, u32)>,
    unk: u32,
    cls: u32,
    sep: u32,
}

impl Vocab {
    /// Parses `vocab.txt` (one token per line, trailing whitespace trimmed). Fails if `[UNK]`, `[CLS]` or
    /// `[SEP]` is missing.
    pub fn parse(text: String) -> Result<Vocab, String> {
        let mut entries = Vec::new();
        let mut start = 0usize;
        for (id, line) in text.split_terminator('\n').enumerate() {
            let token = line.trim_end();
            entries.push((start as u32, (start + token.len()) as u32, id as u32));
            start += line.len() + 1;
        }
        // Stable sort, then keep the last line of a duplicated token (as `tokenizers` does when it reads a vocab
        // file into its map); BERT vocabularies have none.
        let key = |e: &(u32, u32, u32)| &text[e.0 as usize..e.1 as usize];
        entries.sort_by(|a, b| key(a).cmp(key(b)));
        let mut last_of_each = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if entries.get(i + 1).is_none_or(|next| key(next) != key(e)) {
                last_of_each.push(*e);
            }
        }
        let entries = last_of_each;
        let mut vocab = Vocab { text, entries, unk: 0, cls: 0, sep: 0 };
        if vocab.is_empty() {
            return Err("vocab.txt is empty".to_string());
        }
        let special = |v: &Vocab, t: &str| v.id(t).ok_or_else(|| format!("vocab.txt has no {t}"));
        vocab.unk = special(&vocab, "[UNK]")?;
        vocab.cls = special(&vocab, "[CLS]")?;
        vocab.sep = special(&vocab, "[SEP]")?;
        Ok(vocab)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the vocabulary is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn token(&self, e: &(u32, u32, u32)) -> &str {
        &self.text[e.0 as usize..e.1 as usize]
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.entries.binary_search_by(|e| self.token(e).cmp(token)).ok().map(|i| self.entries[i].2)
    }

    /// The id of `prefix` followed by `rest`, without building the string in most cases.
    fn id_of_concat(&self, prefix: &str, rest: &str, buf: &mut String) -> Option<u32> {
        if prefix.is_empty() {
            return self.id(rest);
        }
        buf.clear();
        buf.push_str(prefix);
        buf.push_str(rest);
        self.id(buf)
    }
}

/// Category "Other" (Cc, Cf, Cn, Co, Cs), which the normalizer removes (tab, newline and CR excepted).
fn is_other(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Unassigned
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
    )
}

/// Unicode punctuation (P*) or ASCII punctuation (which also counts `$+<=>^`|~`): split off as a word.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            GeneralCategory::ConnectorPunctuation
                | GeneralCategory::DashPunctuation
                | GeneralCategory::OpenPunctuation
                | GeneralCategory::ClosePunctuation
                | GeneralCategory::InitialPunctuation
                | GeneralCategory::FinalPunctuation
                | GeneralCategory::OtherPunctuation
        )
}

/// CJK ideographs (BERT's list of blocks), which become words of their own.
fn is_chinese(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// BertNormalizer: drop NUL, U+FFFD and "Other" characters; whitespace becomes a space; spaces around CJK
/// ideographs; strip accents (NFD, then drop nonspacing marks); lowercase (per char).
pub fn normalize(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\t' | '\n' | '\r') || c.is_whitespace() && !is_other(c) {
            cleaned.push(' ');
        } else if c == '\0' || c == '\u{fffd}' || is_other(c) {
            continue;
        } else if is_chinese(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    cleaned
        .nfd()
        .filter(|&c| get_general_category(c) != GeneralCategory::NonspacingMark)
        .flat_map(char::to_lowercase)
        .collect()
}

/// BertPreTokenizer: split on whitespace (dropped) and around each punctuation character (kept, alone).
pub fn pre_tokenize(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() || is_punctuation(c) {
            if let Some(s) = start.take() {
                words.push(&text[s..i]);
            }
            if !c.is_whitespace() {
                words.push(&text[i..i + c.len_utf8()]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push(&text[s..]);
    }
    words
}

/// WordPiece on one word: greedy longest-match-first, pieces after the first prefixed with `##`; a word with a
/// part that matches nothing, or longer than 100 chars, is one `[UNK]`.
fn word_pieces(vocab: &Vocab, word: &str, out: &mut Vec<u32>) {
    if word.chars().count() > MAX_CHARS_PER_WORD {
        out.push(vocab.unk);
        return;
    }
    let first = out.len();
    let mut buf = String::new();
    let mut start = 0;
    while start < word.len() {
        let prefix = if start == 0 { "" } else { CONTINUATION };
        // Candidate ends, longest first, at char boundaries.
        let found = word[start..]
            .char_indices()
            .map(|(i, c)| start + i + c.len_utf8())
            .rev()
            .find_map(|end| vocab.id_of_concat(prefix, &word[start..end], &mut buf).map(|id| (end, id)));
        match found {
            Some((end, id)) => {
                out.push(id);
                start = end;
            }
            None => {
                out.truncate(first);
                out.push(vocab.unk);
                return;
            }
        }
    }
}

/// Token ids of `text`: `[CLS]`, its word pieces (the first `max_len - 2`), `[SEP]`.
pub fn encode(vocab: &Vocab, text: &str, max_len: usize) -> Vec<u32> {
    assert!(max_len >= 2, "max_len must leave room for [CLS] and [SEP]");
    let normalized = normalize(text);
    let mut ids = vec![vocab.cls];
    for word in pre_tokenize(&normalized) {
        word_pieces(vocab, word, &mut ids);
        if ids.len() >= max_len - 1 {
            break;
        }
    }
    ids.truncate(max_len - 1);
    ids.push(vocab.sep);
    ids
}
