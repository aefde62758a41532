//! Builds the verifier canister (`verifier-canister/`, a member of this workspace) for `wasm32-unknown-unknown`
//! in the `canister` profile with a nested cargo ([`opml_wasm_build::NestedBuild`]: own target directory, cleared
//! cargo/rustc environment) and copies the module into `OUT_DIR`, where `src/lib.rs` embeds it.
//!
//! Target directory: `$OPML_CANISTER_TARGET_DIR`, else `$CARGO_TARGET_DIR/canister-wasm`, else
//! `<workspace>/target/canister-wasm`.

use std::env;
use std::path::PathBuf;

use opml_wasm_build::{NestedBuild, emit_rerun_triggers, target_dir};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let workspace = manifest_dir.parent().expect("canister-wasm/ has a parent");
    // Everything the canister's bytes depend on: its sources, the VM's and the game's, the manifests, the lock.
    for krate in ["verifier-canister", "vm", "bisect"] {
        println!("cargo::rerun-if-changed={}", workspace.join(krate).join("Cargo.toml").display());
        emit_rerun_triggers(&workspace.join(krate).join("src"));
    }
    println!("cargo::rerun-if-changed={}", workspace.join("Cargo.toml").display());
    println!("cargo::rerun-if-changed={}", workspace.join("Cargo.lock").display());

    let target = target_dir(workspace, "OPML_CANISTER_TARGET_DIR", "canister-wasm");
    let build = NestedBuild {
        dir: workspace,
        manifest: &workspace.join("Cargo.toml"),
        target_dir: &target,
        profile: "canister",
        packages: &["opml-verifier-canister"],
        what: "the verifier canister (verifier-canister/)",
        lock_file: "Cargo.lock",
    };
    build.run();
    build.copy("opml_verifier_canister.wasm", &out_dir);
}
