//! Checks that a canister wasm built elsewhere (e.g. the verifier canister) is accepted by the devnet: every import
//! implemented, the module valid. Runs only when `OPML_DEVNET_CHECK_WASM` names a .wasm file; otherwise it prints
//! why it is skipped and passes.

#[test]
fn external_wasm_is_accepted() {
    let Some(path) = std::env::var_os("OPML_DEVNET_CHECK_WASM").filter(|v| !v.is_empty()) else {
        eprintln!("skipped: OPML_DEVNET_CHECK_WASM is not set (set it to a canister .wasm to check its imports)");
        return;
    };
    let wasm = std::fs::read(&path).expect("readable wasm");
    let engine = opml_devnet::exec::engine();
    let name = path.to_string_lossy();
    let prepared = opml_devnet::exec::prepare(&engine, &wasm).unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!("{name}: updates {:?}, queries {:?}", prepared.update_methods, prepared.query_methods);
}
