//! The models `opml` knows by name, and how a command-line input becomes a task's input blobs.

use std::path::Path;

/// A model: its guest program and how to build the input blobs from the user's input.
pub struct Model {
    /// Name on the command line.
    pub name: &'static str,
    /// The guest module.
    pub wasm: &'static [u8],
}

/// The shipped models.
pub const MODELS: &[Model] =
    &[Model { name: "digits", wasm: opml_guests::DIGITS }, Model { name: "minilm", wasm: opml_guests::MINILM }];

/// Looks a model up by name.
pub fn find(name: &str) -> Result<&'static Model, String> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        format!("unknown model `{name}` (known: {})", names.join(", "))
    })
}

/// The input blobs of a task for `model` from the command-line `input`.
///
/// - digits: `heldout:<n>` (image `n` of the held-out set), or a file of 64 bytes (pixels 0..=16),
///   or 64 comma-separated integers.
/// - minilm: the sentence itself, or `@<file>` to read it from a UTF-8 file.
pub fn blobs(model: &Model, input: &str) -> Result<Vec<Vec<u8>>, String> {
    match model.name {
        "digits" => {
            let image = digits_image(input)?;
            Ok(vec![opml_guests::digits::WEIGHTS.to_vec(), image])
        }
        "minilm" => {
            let text = match input.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?,
                None => input.to_string(),
            };
            let files = opml_guests::minilm::locate()?;
            let (weights, vocab) = files.read_blobs()?;
            Ok(vec![weights, vocab, text.into_bytes()])
        }
        other => Err(format!("no input format for model {other}")),
    }
}

fn digits_image(input: &str) -> Result<Vec<u8>, String> {
    use opml_guests::digits::{HELDOUT_LEN, IMAGE_LEN};
    if let Some(n) = input.strip_prefix("heldout:") {
        let n: usize = n.parse().map_err(|_| format!("`{n}` is not an image number"))?;
        let (image, _) = opml_guests::digits::heldout()
            .nth(n)
            .ok_or_else(|| format!("the held-out set has {HELDOUT_LEN} images (0..{HELDOUT_LEN})"))?;
        return Ok(image.to_vec());
    }
    let bytes = if Path::new(input).is_file() {
        std::fs::read(input).map_err(|e| format!("cannot read {input}: {e}"))?
    } else {
        input
            .split(',')
            .map(|v| v.trim().parse::<u8>().map_err(|_| format!("`{v}` is not a pixel value")))
            .collect::<Result<Vec<u8>, String>>()?
    };
    if bytes.len() != IMAGE_LEN || bytes.iter().any(|&p| p > 16) {
        return Err(format!("a digits image is {IMAGE_LEN} pixels with values 0..=16 (got {} values)", bytes.len()));
    }
    Ok(bytes)
}

/// A human-readable rendering of a model's output.
pub fn describe_output(model: &Model, output: &[u8]) -> String {
    match model.name {
        "digits" => match opml_guests::digits::decode_output(output) {
            Some((class, logits)) => format!("class {class}, logits {logits:.3?}"),
            None => format!("{} bytes (not a digits output)", output.len()),
        },
        "minilm" => match opml_guests::minilm::decode_output(output) {
            Some(v) => format!("embedding[384], first 8: {:.6?}", &v[..8]),
            None => format!("{} bytes (not an embedding)", output.len()),
        },
        _ => format!("{} bytes", output.len()),
    }
}
