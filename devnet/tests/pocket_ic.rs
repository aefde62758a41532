//! The PocketIC path: the same ic-agent checks as against the devnet, against a PocketIC server. Runs only when
//! `POCKET_IC_BIN` names a PocketIC server binary (none can be installed where opml-ic is developed); otherwise it
//! prints why it is skipped and passes.

mod common;

use candid::{Encode, Principal};
use common::*;
use ic_agent::Identity;
use opml_devnet::test_canisters::COUNTER_WASM;

#[tokio::test]
async fn counter_on_pocket_ic() {
    let Some(bin) = std::env::var_os("POCKET_IC_BIN").filter(|v| !v.is_empty()) else {
        eprintln!(
            "skipped: POCKET_IC_BIN is not set (set it to a PocketIC server binary to run the devnet's agent checks \
             against PocketIC too)"
        );
        return;
    };
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
