//! With the `test-canisters` feature (on for this crate's own tests), builds the test canisters of
//! `test-canisters/` for `wasm32-unknown-unknown` with a nested cargo and copies each `.wasm` into `OUT_DIR`,
//! where `src/lib.rs` embeds it. Without the feature (how other crates depend on the devnet) it does nothing.
//!
//! As in `guests/build.rs`: the nested cargo runs in `test-canisters/` (its `.cargo/config.toml` pins the target
//! features) with `--release --locked`, in its own target directory (`$OPML_DEVNET_CANISTERS_TARGET_DIR`, else
//! `$CARGO_TARGET_DIR/devnet-test-canisters`, else `<workspace>/target/devnet-test-canisters`), with the outer
//! build's cargo/rustc configuration removed from its environment (the jobserver is kept).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const CANISTERS: &[&str] = &["counter"];
const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    println!("cargo::rerun-if-env-changed=OPML_DEVNET_CANISTERS_TARGET_DIR");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    if env::var_os("CARGO_FEATURE_TEST_CANISTERS").is_none() {
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let dir = manifest_dir.join("test-canisters");
    emit_rerun_triggers(&dir);

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = target_dir(&manifest_dir);
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&dir)
        .args(["build", "--release", "--locked", "--target", WASM_TARGET, "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if !inherit_env(key) {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUSTC", &rustc);
    let output =
        cmd.output().unwrap_or_else(|e| fail(&format!("could not run {cargo:?} to build the test canisters: {e}")));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("--- nested cargo stderr ---\n{stderr}");
        let mut msg = format!("building the devnet's test canisters ({}) failed ({})", dir.display(), output.status);
        if stderr.contains("--locked") || stderr.contains("lock file") {
            msg.push_str("; devnet/test-canisters/Cargo.lock is out of date: run `cargo update --manifest-path devnet/test-canisters/Cargo.toml`");
        }
        if stderr.contains("target may not be installed") || stderr.contains("can't find crate for `core`") {
            msg.push_str(&format!("; install the target with `rustup target add {WASM_TARGET}`"));
        }
        fail(&msg);
    }
    let built = target_dir.join(WASM_TARGET).join("release");
    for c in CANISTERS {
        let file = format!("{c}.wasm");
        fs::copy(built.join(&file), out_dir.join(&file))
            .unwrap_or_else(|e| fail(&format!("test canister {c}: cannot copy {}: {e}", built.join(&file).display())));
    }
}

/// Whether the nested cargo keeps an inherited variable: machine and user settings yes, build configuration no.
fn inherit_env(key: &str) -> bool {
    const DROP: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "RUSTC_LINKER",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
    ];
    const KEEP_CARGO: &[&str] = &[
        "CARGO_HOME",
        "CARGO_MAKEFLAGS",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
        "CARGO_TERM_",
    ];
    if DROP.contains(&key) || key.starts_with("__CARGO") {
        return false;
    }
    if key.starts_with("CARGO_") {
        return KEEP_CARGO.iter().any(|p| key.starts_with(p));
    }
    true
}

fn target_dir(manifest_dir: &Path) -> PathBuf {
    let workspace = manifest_dir.parent().expect("devnet/ has a parent");
    let absolute = |p: PathBuf| if p.is_absolute() { p } else { workspace.join(p) };
    if let Some(dir) = env::var_os("OPML_DEVNET_CANISTERS_TARGET_DIR").filter(|v| !v.is_empty()) {
        return absolute(PathBuf::from(dir));
    }
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return absolute(PathBuf::from(dir)).join("devnet-test-canisters");
    }
    workspace.join("target").join("devnet-test-canisters")
}

fn emit_rerun_triggers(dir: &Path) {
    fn walk(dir: &Path) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if name == "target" || (name.starts_with('.') && name != ".cargo") {
                    continue;
                }
                println!("cargo::rerun-if-changed={}", path.display());
                walk(&path);
            } else {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
    }
    walk(dir);
}

fn fail(msg: &str) -> ! {
    println!("cargo::error={msg}");
    std::process::exit(1);
}
