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

/// The vocabulary (`vocab.txt`: one token per line, the id is the line number), kept as the text plus an
/// open-addressing hash table from token to line. A hash table, not a sorted table: the guest builds it on every
/// run, and sorting 30,522 strings took about a quarter of a MiniLM run's instructions (~70M steps), where hashing
/// them takes a few million.
pub struct Vocab {
    text: String,
    /// (start, end, id) of each line's token in `text`, in line order.
    lines: Vec<(u32, u32, u32)>,
    /// Index into `lines` per slot, [`EMPTY`] if free; the length is a power of two, at least twice the lines.
    slots: Vec<u32>,
    /// Distinct tokens.
    distinct: usize,
    unk: u32,
    cls: u32,
    sep: u32,
}

/// A free slot.
const EMPTY: u32 = u32::MAX;

/// FNV-1a, 64 bits: deterministic and cheap per byte (a guest must not depend on a randomly seeded hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Vocab {
    /// Parses `vocab.txt` (one token per line, trailing whitespace trimmed). Fails if `[UNK]`, `[CLS]` or
    /// `[SEP]` is missing.
    pub fn parse(text: String) -> Result<Vocab, String> {
        let mut lines = Vec::new();
        let mut start = 0usize;
        for (id, line) in text.split_terminator('\n').enumerate() {
            let token = line.trim_end();
            lines.push((start as u32, (start + token.len()) as u32, id as u32));
            start += line.len() + 1;
        }
        let size = (2 * lines.len()).max(2).next_power_of_two();
        let mut vocab = Vocab { text, lines, slots: vec![EMPTY; size], distinct: 0, unk: 0, cls: 0, sep: 0 };
        for i in 0..vocab.lines.len() {
            // A duplicated token keeps its last line (as `tokenizers` does when it reads a vocab file into its
            // map); BERT vocabularies have none.
            let slot = vocab.slot(vocab.token(i));
            if vocab.slots[slot] == EMPTY {
                vocab.distinct += 1;
            }
            vocab.slots[slot] = i as u32;
        }
        if vocab.is_empty() {
            return Err("vocab.txt is empty".to_string());
        }
        let special = |v: &Vocab, t: &str| v.id(t).ok_or_else(|| format!("vocab.txt has no {t}"));
        vocab.unk = special(&vocab, "[UNK]")?;
        vocab.cls = special(&vocab, "[CLS]")?;
        vocab.sep = special(&vocab, "[SEP]")?;
        Ok(vocab)
    }

    /// Number of distinct tokens.
    pub fn len(&self) -> usize {
        self.distinct
    }

    /// Whether the vocabulary is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.distinct == 0
    }

    /// The token of line `i`.
    fn token(&self, i: usize) -> &str {
        let (start, end, _) = self.lines[i];
        &self.text[start as usize..end as usize]
    }

    /// The slot holding `token`, or the free slot where it would go (linear probing; the table is never full).
    fn slot(&self, token: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut s = fnv1a(token.as_bytes()) as usize & mask;
        loop {
            let line = self.slots[s];
            if line == EMPTY || self.token(line as usize) == token {
                return s;
            }
            s = (s + 1) & mask;
        }
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        match self.slots[self.slot(token)] {
            EMPTY => None,
            line => Some(self.lines[line as usize].2),
        }
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
