//! Builds the guest workspace `guests/programs` for `wasm32-unknown-unknown` with a nested cargo and copies
//! each guest's `.wasm` into `OUT_DIR`, where `src/lib.rs` embeds it with `include_bytes!`.
//!
//! - The nested cargo runs in `guests/programs` (so its `.cargo/config.toml`, which pins the target features,
//!   applies) with `--release --locked --target wasm32-unknown-unknown`, once per guest (`-p`, so guests do not
//!   unify each other's dependency features).
//! - It uses its own target directory (`$OPML_GUESTS_TARGET_DIR`, else `$CARGO_TARGET_DIR/guests`, else
//!   `<workspace>/target/guests`), never the outer build's, so the two cargos never wait on the same lock.
//! - The outer build's environment must not change a guest's bytes: every `CARGO_*` variable except a short
//!   allow-list (home, jobserver, network, registry, terminal settings) is removed, and so are `RUSTFLAGS`,
//!   `RUSTDOCFLAGS`, the rustc wrappers (`cargo clippy` sets `RUSTC_WORKSPACE_WRAPPER`, coverage tools set
//!   `RUSTFLAGS`) and the build-script variables. The jobserver (`CARGO_MAKEFLAGS`) is kept so the nested
//!   build shares the outer build's job slots.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// Every guest crate of `guests/programs`, by the file name of its module (`<crate name with _>.wasm`).
const GUESTS: &[&str] = &["bench_kernels", "verifier_harness", "digits", "minilm"];

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let programs = manifest_dir.join("programs");

    emit_rerun_triggers(&programs);
    // `verifier-harness` links `opml-vm` (its no_std half) by path: the guests must be rebuilt when it changes,
    // and when the workspace manifest it inherits dependencies from does.
    let workspace = manifest_dir.parent().expect("guests/ has a parent");
    println!("cargo::rerun-if-changed={}", workspace.join("Cargo.toml").display());
    println!("cargo::rerun-if-changed={}", workspace.join("vm").join("Cargo.toml").display());
    emit_rerun_triggers(&workspace.join("vm").join("src"));
    println!("cargo::rerun-if-env-changed=OPML_GUESTS_TARGET_DIR");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    check_wasm_target_installed(&rustc);

    let target_dir = guest_target_dir(&manifest_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    // One nested build per guest (`-p`): cargo unifies the features of dependencies across the packages of one
    // build, so building them together would let one guest change another's dependencies (candle's `std`
    // features reaching the `no_std` verifier harness) and so its bytes.
    for guest in GUESTS {
        build_guest(&cargo, &rustc, &programs, &target_dir, &guest.replace('_', "-"));
    }

    let built = target_dir.join(WASM_TARGET).join("release");
    for guest in GUESTS {
        let file = format!("{guest}.wasm");
        let from = built.join(&file);
        fs::copy(&from, out_dir.join(&file))
            .unwrap_or_else(|e| fail(&format!("guest {guest}: cannot copy {}: {e}", from.display())));
    }
}

/// Builds one guest package of `programs` with a nested cargo, its configuration from the environment cleared.
fn build_guest(cargo: &OsString, rustc: &OsString, programs: &Path, target_dir: &Path, package: &str) {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(programs)
        .arg("build")
        .arg("--release")
        .arg("--locked")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(programs.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .arg("-p")
        .arg(package);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if !inherit_env(key) {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUSTC", rustc);

    let output = cmd.output().unwrap_or_else(|e| fail(&format!("could not run {cargo:?} to build the guests: {e}")));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        let mut msg = format!(
            "nested build (in {}, cargo/rustc configuration from the environment cleared):\n  {} {}\n\
             --- nested cargo stderr ---\n{stderr}",
            programs.display(),
            cargo.to_string_lossy(),
            args.join(" ")
        );
        if stderr.contains("--locked") || stderr.contains("lock file") {
            msg.push_str(
                "\nhint: guests/programs/Cargo.lock is out of date; update it with\n  \
                 cargo update --manifest-path guests/programs/Cargo.toml\nand commit it.\n",
            );
        }
        fail_with(
            &format!(
                "building the guest program {package} (guests/programs) failed ({}); its output follows",
                output.status
            ),
            &msg,
        );
    }
}

/// Whether the nested cargo keeps an inherited environment variable. Everything that configures cargo or
/// rustc (and so could change a guest's bytes) is dropped; settings of the machine and the user are kept.
fn inherit_env(key: &str) -> bool {
    const DROP: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "RUSTC_LINKER",
        // Set by cargo for build scripts; the nested cargo sets its own for its build scripts.
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

/// Target directory of the nested build: separate from the outer one (no shared lock), but shared by all
/// profiles of the outer build so the guests compile once.
fn guest_target_dir(manifest_dir: &Path) -> PathBuf {
    let workspace = manifest_dir.parent().expect("guests/ has a parent");
    let absolute = |p: PathBuf| {
        if p.is_absolute() { p } else { workspace.join(p) }
    };
    if let Some(dir) = env::var_os("OPML_GUESTS_TARGET_DIR").filter(|v| !v.is_empty()) {
        return absolute(PathBuf::from(dir));
    }
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return absolute(PathBuf::from(dir)).join("guests");
    }
    workspace.join("target").join("guests")
}

/// Fails early, with the fix, when the toolchain has no standard library for the wasm32 target.
fn check_wasm_target_installed(rustc: &OsString) {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else { return }; // let the nested cargo report whatever is wrong
    let lib = sysroot.join("lib").join("rustlib").join(WASM_TARGET).join("lib");
    if !lib.is_dir() {
        fail(&format!(
            "the Rust target `{WASM_TARGET}` is not installed for this toolchain ({}); opml-guests needs it to \
             build the guest programs: run `rustup target add {WASM_TARGET}`",
            sysroot.display()
        ));
    }
}

/// Emits `rerun-if-changed` for every file and directory of the guest workspace except build outputs
/// (`target/`) and hidden directories other than `.cargo/`. Directories are listed too, so a new source file
/// triggers a rebuild; the workspace root itself is not (it would also cover `target/`), but a new crate must
/// be added to its `Cargo.toml`, which is listed.
fn emit_rerun_triggers(programs: &Path) {
    fn walk(dir: &Path, top: bool) {
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
                walk(&path, false);
            } else if !(top && name == ".gitignore") {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
    }
    walk(programs, true);
}

/// Fails the build: `summary` (one line) is cargo's error message, `detail` goes to the script's stderr, which
/// cargo prints below it.
fn fail_with(summary: &str, detail: &str) -> ! {
    println!("cargo::error={summary}");
    if !detail.is_empty() {
        eprintln!("{detail}");
    }
    std::process::exit(1);
}

fn fail(msg: &str) -> ! {
    fail_with(msg, "")
}
