//! The PocketIC path: the same ic-agent checks as against the devnet, against a PocketIC server, for the counter
//! test canister and for the real verifier canister (`opml_canister_wasm::VERIFIER_WASM`). Runs only when
//! `POCKET_IC_BIN` names a PocketIC server binary (none can be installed where opml-ic is developed); otherwise each
//! test prints why it is skipped and passes.

mod common;

use candid::{Decode, Encode, Principal};
use common::*;
use ic_agent::Identity;
use opml_bisect::Hash;
use opml_canister_wasm::VERIFIER_WASM;
use opml_devnet::test_canisters::COUNTER_WASM;
use opml_verifier_canister::Error as CanisterError;
use opml_verifier_canister::shell::UploadChunk;
use opml_verifier_canister::types::{BeginUpload, Config, DepositArgs, Program, RegistrationStep, Totals};
use sha3::{Digest, Sha3_256};

type R<T> = Result<T, CanisterError>;

fn pocket_ic_bin() -> Option<std::ffi::OsString> {
    let bin = std::env::var_os("POCKET_IC_BIN").filter(|v| !v.is_empty());
    if bin.is_none() {
        eprintln!(
            "skipped: POCKET_IC_BIN is not set (set it to a PocketIC server binary to run the devnet's agent checks \
             against PocketIC too)"
        );
    }
    bin
}

#[tokio::test]
async fn counter_on_pocket_ic() {
    let Some(bin) = pocket_ic_bin() else { return };
    let mut pic =
        pocket_ic::PocketIcBuilder::new().with_server_binary(bin.into()).with_application_subnet().build_async().await;
    let id = pic.create_canister().await;
    pic.add_cycles(id, 10_000_000_000_000).await;
    pic.install_canister(id, COUNTER_WASM.to_vec(), Encode!(&None::<Principal>).unwrap(), None).await;
    let url = pic.make_live(None).await;

    let ed = ed25519_identity(7);
    let me = ed.sender().unwrap();
    let agent = agent(url.as_str(), ed).await;
    assert_eq!(update::<u64>(&agent, id, "inc", Encode!().unwrap()).await, 1);
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 1);
    assert_eq!(query::<Principal>(&agent, id, "whoami", Encode!().unwrap()).await, me);
    let e = agent.update(&id, "inc_then_trap").with_arg(Encode!().unwrap()).call_and_wait().await;
    assert!(e.is_err());
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 1);
    pic.drop().await;
}

/// The real verifier canister on PocketIC: installed, a program registered by chunked upload through ic-agent, an
/// upgrade that keeps it, a typed error. PocketIC has no ICRC ledger here, so the configured ledger is a canister
/// id with nothing installed: a deposit is answered with the canister's typed `Ledger` error and credits nothing.
#[tokio::test]
async fn verifier_canister_on_pocket_ic() {
    let Some(bin) = pocket_ic_bin() else { return };
    let mut pic =
        pocket_ic::PocketIcBuilder::new().with_server_binary(bin.into()).with_application_subnet().build_async().await;
    let ledger = pic.create_canister().await;
    let id = pic.create_canister().await;
    pic.add_cycles(id, 10_000_000_000_000).await;
    let op = ed25519_identity(21);
    let op_p = op.sender().unwrap();
    let config = Config {
        ledger,
        ledger_fee: 10_000,
        operators: vec![op_p],
        arity: 4,
        max_segments: 1 << 20,
        max_segment_steps: 1 << 30,
        min_stake: 1_000_000,
        challenger_bond: 100_000,
        burn_bps: 2_000,
        min_challenge_window_ns: 1_000_000_000,
        max_challenge_window_ns: 86_400_000_000_000,
        min_clock_ns: 1_000_000_000,
        max_clock_ns: 86_400_000_000_000,
        max_program_bytes: 4 << 20,
        max_output_bytes: 4096,
        sweep_interval_s: 60,
    };
    pic.install_canister(id, VERIFIER_WASM.to_vec(), Encode!(&config).unwrap(), None).await;
    let url = pic.make_live(None).await;
    let agent = agent(url.as_str(), op).await;
    let call = |method: &'static str, arg: Vec<u8>| {
        let agent = agent.clone();
        async move { agent.update(&id, method).with_arg(arg).call_and_wait().await.unwrap() }
    };
    assert_eq!(query::<Config>(&agent, id, "config", Encode!().unwrap()).await, config);

    let wasm = opml_guests::DIGITS;
    let sha: [u8; 32] = Sha3_256::digest(wasm).into();
    let out =
        call("begin_upload", Encode!(&BeginUpload { wasm_sha3: Hash(sha), size: wasm.len() as u64 }).unwrap()).await;
    let upload = Decode!(&out, R<u64>).unwrap().unwrap();
    let mut offset = 0;
    for part in wasm.chunks(64 * 1024) {
        let out = call("upload_chunk", Encode!(&UploadChunk { upload, offset, bytes: part.to_vec() }).unwrap()).await;
        offset = Decode!(&out, R<u64>).unwrap().unwrap();
    }
    let program = loop {
        let out = call("finish_upload", Encode!(&upload).unwrap()).await;
        match Decode!(&out, R<RegistrationStep>).unwrap().unwrap() {
            RegistrationStep::Registered { program } => break program,
            RegistrationStep::Rewritten => {}
            RegistrationStep::Committing { done, total } => assert!(done < total, "{done} of {total}"),
        }
    };

    pic.upgrade_canister(id, VERIFIER_WASM.to_vec(), Encode!(&None::<Config>).unwrap(), None).await.expect("upgrade");
    let p = query::<R<Program>>(&agent, id, "get_program", Encode!(&program).unwrap()).await;
    assert_eq!(p.unwrap().wasm_sha3, Hash(sha), "the program survives the upgrade");

    let out = call("deposit", Encode!(&DepositArgs { from_subaccount: None, amount: 1 }).unwrap()).await;
    let r = Decode!(&out, R<u64>).unwrap();
    assert!(matches!(r, Err(CanisterError::Ledger { .. })), "{r:?}");
    let t = query::<Totals>(&agent, id, "totals", Encode!().unwrap()).await;
    assert_eq!(t, Totals::default(), "nothing credited");
    pic.drop().await;
}
