//! Time to validate a guest and derive its commitment natively (registration's heavy part), for a module named
//! by `OPML_GUEST_WASM` (skipped when unset). An indication only: the canister's cost is measured on the devnet.

use std::time::Instant;

use opml_verifier_canister::vm::ProgramVm;
use opml_verifier_canister::vm_adapter::OpmlVm;

#[test]
fn derive_time_of_a_real_guest() {
    let Some(path) = std::env::var_os("OPML_GUEST_WASM") else {
        eprintln!("OPML_GUEST_WASM not set: skipped");
        return;
    };
    let wasm = std::fs::read(&path).unwrap();
    let start = Instant::now();
    let d = OpmlVm.derive(&wasm).unwrap();
    let c = opml_vm::program::ProgramCommitment::decode(
        d.data[..opml_vm::program::ProgramCommitment::BYTES].try_into().unwrap(),
    );
    eprintln!(
        "{}: {} bytes, {} ops, {} functions, derived in {:?}",
        path.to_string_lossy(),
        wasm.len(),
        c.n_code,
        c.n_funcs,
        start.elapsed()
    );
}
