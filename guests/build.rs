//! Builds the guest workspace `guests/programs` for `wasm32-unknown-unknown` with a nested cargo
//! ([`opml_wasm_build::NestedBuild`]: own target directory, cleared cargo/rustc environment) and copies each
//! guest's `.wasm` into `OUT_DIR`, where `src/lib.rs` embeds it with `include_bytes!`.
//!
//! The nested cargo runs in `guests/programs` (so its `.cargo/config.toml`, which pins the target features,
//! applies) with `--release --locked`, once per guest (`-p`): cargo unifies the features of dependencies across
//! the packages of one build, so building them together would let one guest change another's dependencies
//! (candle's `std` features reaching the `no_std` verifier harness) and so its bytes. Target directory:
//! `$OPML_GUESTS_TARGET_DIR`, else `$CARGO_TARGET_DIR/guests`, else `<workspace>/target/guests`.

use std::env;
use std::path::PathBuf;

use opml_wasm_build::{NestedBuild, emit_rerun_triggers, target_dir};

/// Every guest crate of `guests/programs`, by the file name of its module (`<crate name with _>.wasm`).
const GUESTS: &[&str] = &["bench_kernels", "verifier_harness", "digits", "minilm"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let programs = manifest_dir.join("programs");
    let workspace = manifest_dir.parent().expect("guests/ has a parent");

    emit_rerun_triggers(&programs);
    // `verifier-harness` links `opml-vm` (its no_std half) by path: the guests must be rebuilt when it changes,
    // and when the workspace manifest it inherits dependencies from does.
    println!("cargo::rerun-if-changed={}", workspace.join("Cargo.toml").display());
    println!("cargo::rerun-if-changed={}", workspace.join("vm").join("Cargo.toml").display());
    emit_rerun_triggers(&workspace.join("vm").join("src"));

    let target = target_dir(workspace, "OPML_GUESTS_TARGET_DIR", "guests");
    let manifest = programs.join("Cargo.toml");
    for guest in GUESTS {
        let package = guest.replace('_', "-");
        let build = NestedBuild {
            dir: &programs,
            manifest: &manifest,
            target_dir: &target,
            profile: "release",
            packages: &[&package],
            what: &format!("the guest program {package} (guests/programs)"),
            lock_file: "guests/programs/Cargo.lock",
        };
        build.run();
        build.copy(&format!("{guest}.wasm"), &out_dir);
    }
}
