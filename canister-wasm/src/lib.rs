//! # opml-canister-wasm: the verifier canister's module
//!
//! [`VERIFIER_WASM`] is `opml-verifier-canister` compiled for `wasm32-unknown-unknown` in the workspace's
//! `canister` profile by this crate's build script, so the devnet, the tests and `opml deploy` install exactly the
//! code in this tree, built by the normal `cargo build` with no manual step.

/// The verifier canister's wasm module (uncompressed; gzip it to install it over the IC's 2 MiB ingress limit).
pub const VERIFIER_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/opml_verifier_canister.wasm"));

#[cfg(test)]
mod tests {
    use super::VERIFIER_WASM;

    /// The embedded module is a valid wasm module that exports the canister's entry points.
    #[test]
    fn is_a_canister_module() {
        let mut validator = wasmparser::Validator::new();
        validator.validate_all(VERIFIER_WASM).expect("the verifier canister's wasm validates");
        let mut exports = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(VERIFIER_WASM) {
            if let wasmparser::Payload::ExportSection(reader) = payload.expect("parses") {
                for export in reader {
                    exports.push(export.expect("export").name.to_string());
                }
            }
        }
        for wanted in ["canister_init", "canister_post_upgrade", "canister_update submit_claim", "canister_update play"]
        {
            assert!(exports.iter().any(|e| e == wanted), "missing export {wanted:?}; exports: {exports:?}");
        }
    }
}
