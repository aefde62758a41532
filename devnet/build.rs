//! With the `test-canisters` feature (on for this crate's own tests), builds the test canisters of
//! `test-canisters/` for `wasm32-unknown-unknown` with a nested cargo ([`opml_wasm_build::NestedBuild`]: own
//! target directory, cleared cargo/rustc environment) and copies each `.wasm` into `OUT_DIR`, where `src/lib.rs`
//! embeds it. Without the feature (how other crates depend on the devnet) it does nothing.
//!
//! Target directory: `$OPML_DEVNET_CANISTERS_TARGET_DIR`, else `$CARGO_TARGET_DIR/devnet-test-canisters`, else
//! `<workspace>/target/devnet-test-canisters`.

use std::env;
use std::path::PathBuf;

use opml_wasm_build::{NestedBuild, emit_rerun_triggers, target_dir};

const CANISTERS: &[&str] = &["counter"];

fn main() {
    if env::var_os("CARGO_FEATURE_TEST_CANISTERS").is_none() {
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let dir = manifest_dir.join("test-canisters");
    emit_rerun_triggers(&dir);
    let workspace = manifest_dir.parent().expect("devnet/ has a parent");
    let target = target_dir(workspace, "OPML_DEVNET_CANISTERS_TARGET_DIR", "devnet-test-canisters");
    let build = NestedBuild {
        dir: &dir,
        manifest: &dir.join("Cargo.toml"),
        target_dir: &target,
        profile: "release",
        packages: &[],
        what: "the devnet's test canisters (devnet/test-canisters)",
        lock_file: "devnet/test-canisters/Cargo.lock",
    };
    build.run();
    for c in CANISTERS {
        build.copy(&format!("{c}.wasm"), &out_dir);
    }
}
