//! # opml-wasm-build: nested wasm32 builds for build scripts
//!
//! Three crates of the workspace embed wasm modules they build themselves (the guests, the verifier canister, the
//! devnet's test canisters). Each build script runs a nested `cargo build --release --locked --target
//! wasm32-unknown-unknown` through [`NestedBuild`], which fixes what must be the same for all of them:
//!
//! - **Own target directory** ([`target_dir`]), never the outer build's, so the two cargos never wait on the same
//!   lock; shared by all profiles of the outer build so a module compiles once.
//! - **Clean environment** ([`inherit_env`]): the outer build's configuration must not change a module's bytes.
//!   Every `CARGO_*` variable except a short allow-list (home, jobserver, network, registry, terminal) is removed,
//!   and so are `RUSTFLAGS`, `RUSTDOCFLAGS`, the rustc wrappers (`cargo clippy` sets `RUSTC_WORKSPACE_WRAPPER`,
//!   coverage tools set `RUSTFLAGS`) and the build-script variables. The jobserver (`CARGO_MAKEFLAGS`) is kept so
//!   the nested build shares the outer build's job slots.
//! - **Clear failures**: a missing wasm32 target or an out-of-date lock file fails with the command that fixes it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The target every module is built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// One nested `cargo build` of wasm32 modules.
pub struct NestedBuild<'a> {
    /// Directory the nested cargo runs in (its `.cargo/config.toml` applies).
    pub dir: &'a Path,
    /// The manifest to build.
    pub manifest: &'a Path,
    /// Where the nested build writes (see [`target_dir`]).
    pub target_dir: &'a Path,
    /// Cargo profile (`release` or a custom one defined in the manifest's workspace).
    pub profile: &'a str,
    /// Packages to build (`-p`); empty: the manifest's default members.
    pub packages: &'a [&'a str],
    /// What is being built, for error messages ("the guest program digits").
    pub what: &'a str,
    /// The lock file to update if `--locked` fails, for the hint.
    pub lock_file: &'a str,
}

impl NestedBuild<'_> {
    /// Runs the build; on failure, fails the build script with the nested cargo's output and a hint.
    pub fn run(&self) {
        let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
        let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        check_wasm_target_installed(&rustc);
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(self.dir)
            .args(["build", "--locked", "--target", WASM_TARGET, "--profile", self.profile, "--manifest-path"])
            .arg(self.manifest)
            .arg("--target-dir")
            .arg(self.target_dir);
        for p in self.packages {
            cmd.arg("-p").arg(p);
        }
        for (key, _) in env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if !inherit_env(key) {
                cmd.env_remove(key);
            }
        }
        cmd.env("RUSTC", &rustc);

        let output =
            cmd.output().unwrap_or_else(|e| fail(&format!("could not run {cargo:?} to build {}: {e}", self.what)));
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
            let mut msg = format!(
                "nested build (in {}, cargo/rustc configuration from the environment cleared):\n  {} {}\n\
                 --- nested cargo stderr ---\n{stderr}",
                self.dir.display(),
                cargo.to_string_lossy(),
                args.join(" ")
            );
            if stderr.contains("--locked") || stderr.contains("lock file") {
                msg.push_str(&format!(
                    "\nhint: {} is out of date; update it with\n  cargo update --manifest-path {}\nand commit it.\n",
                    self.lock_file,
                    self.manifest.display()
                ));
            }
            fail_with(&format!("building {} failed ({}); its output follows", self.what, output.status), &msg);
        }
    }

    /// Directory the built modules land in.
    pub fn out(&self) -> PathBuf {
        self.target_dir.join(WASM_TARGET).join(self.profile)
    }

    /// Copies the built module `file` into `out_dir`.
    pub fn copy(&self, file: &str, out_dir: &Path) {
        let from = self.out().join(file);
        fs::copy(&from, out_dir.join(file))
            .unwrap_or_else(|e| fail(&format!("{}: cannot copy {}: {e}", self.what, from.display())));
    }
}

/// Whether the nested cargo keeps an inherited environment variable. Everything that configures cargo or rustc
/// (and so could change a module's bytes) is dropped; settings of the machine and the user are kept.
pub fn inherit_env(key: &str) -> bool {
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

/// Target directory of a nested build: `$<override_var>` if set, else `$CARGO_TARGET_DIR/<subdir>`, else
/// `<workspace>/target/<subdir>` (relative paths are taken from `workspace`). Emits the rerun triggers for both
/// variables.
pub fn target_dir(workspace: &Path, override_var: &str, subdir: &str) -> PathBuf {
    println!("cargo::rerun-if-env-changed={override_var}");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    let absolute = |p: PathBuf| if p.is_absolute() { p } else { workspace.join(p) };
    if let Some(dir) = env::var_os(override_var).filter(|v| !v.is_empty()) {
        return absolute(PathBuf::from(dir));
    }
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return absolute(PathBuf::from(dir)).join(subdir);
    }
    workspace.join("target").join(subdir)
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
            "the Rust target `{WASM_TARGET}` is not installed for this toolchain ({}): run `rustup target add \
             {WASM_TARGET}`",
            sysroot.display()
        ));
    }
}

/// Emits `rerun-if-changed` for every file and directory under `dir` except build outputs (`target/`) and hidden
/// directories other than `.cargo/`. Directories are listed too, so a new source file triggers a rebuild.
pub fn emit_rerun_triggers(dir: &Path) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())))
        .map(|e| e.unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display()))).path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name == "target" || (name.starts_with('.') && name != ".cargo") {
                continue;
            }
            println!("cargo::rerun-if-changed={}", path.display());
            emit_rerun_triggers(&path);
        } else {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }
}

/// Fails the build: `summary` (one line) is cargo's error message, `detail` goes to the script's stderr, which
/// cargo prints below it.
pub fn fail_with(summary: &str, detail: &str) -> ! {
    println!("cargo::error={summary}");
    if !detail.is_empty() {
        eprintln!("{detail}");
    }
    std::process::exit(1);
}

/// Fails the build with a one-line message.
pub fn fail(msg: &str) -> ! {
    fail_with(msg, "")
}
