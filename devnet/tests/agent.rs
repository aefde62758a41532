//! The counter test canister on the devnet, driven through the stock ic-agent 0.49 over HTTP (with the
//! certificate and query-signature verification the agent does by default).

mod common;

use std::time::Duration;

use candid::{Decode, Encode, Nat, Principal};
use common::*;
use ic_agent::agent::RejectCode;
use ic_agent::{AgentError, Identity};
use opml_devnet::test_canisters::COUNTER_WASM;
use opml_devnet::{DevnetConfig, InstallMode};

fn reject_of(e: AgentError) -> (RejectCode, String, Option<String>) {
    match e {
        AgentError::CertifiedReject { reject, .. } | AgentError::UncertifiedReject { reject, .. } => {
            (reject.reject_code, reject.reject_message, reject.error_code)
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

#[tokio::test]
async fn update_query_and_caller_identities() {
    let (devnet, id) = devnet_with_counter(DevnetConfig::default());
    let ed = ed25519_identity(7);
    let ed_principal = ed.sender().unwrap();
    let agent = agent(devnet.url(), ed).await;
    assert_eq!(agent.read_root_key(), devnet.root_key());

    assert_eq!(update::<u64>(&agent, id, "inc", Encode!().unwrap()).await, 1);
    assert_eq!(update::<u64>(&agent, id, "add", Encode!(&41u64).unwrap()).await, 42);
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 42);
    // A query's changes are discarded.
    assert_eq!(query::<u64>(&agent, id, "inc_in_query", Encode!().unwrap()).await, 43);
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 42);

    assert_eq!(query::<Principal>(&agent, id, "whoami", Encode!().unwrap()).await, ed_principal);
    assert_eq!(update::<Principal>(&agent, id, "whoami_update", Encode!().unwrap()).await, ed_principal);
    assert_eq!(query::<Principal>(&agent, id, "self_id", Encode!().unwrap()).await, id);
    assert_eq!(update::<String>(&agent, id, "method_name", Encode!().unwrap()).await, "method_name");

    let k1 = secp256k1_identity(9);
    let k1_principal = k1.sender().unwrap();
    let k1_agent = common::agent(devnet.url(), k1).await;
    assert_eq!(update::<Principal>(&k1_agent, id, "whoami_update", Encode!().unwrap()).await, k1_principal);
    assert_eq!(query::<Principal>(&k1_agent, id, "whoami", Encode!().unwrap()).await, k1_principal);

    let anon = anonymous_agent(devnet.url()).await;
    assert_eq!(update::<Principal>(&anon, id, "whoami_update", Encode!().unwrap()).await, Principal::anonymous());

    // The canister sees the devnet's time.
    let t = query::<u64>(&agent, id, "now", Encode!().unwrap()).await;
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    assert!(t.abs_diff(wall) < 60_000_000_000, "canister time {t} vs wall {wall}");

    // Explicit rejects and unknown methods.
    let e = agent.update(&id, "reject_me").with_arg(Encode!(&"no thanks").unwrap()).call_and_wait().await.unwrap_err();
    let (code, msg, err) = reject_of(e);
    assert_eq!((code, msg.as_str(), err.as_deref()), (RejectCode::CanisterReject, "no thanks", Some("IC0406")));
    let e = agent.update(&id, "no_such_method").with_arg(Encode!().unwrap()).call_and_wait().await.unwrap_err();
    let (code, _, err) = reject_of(e);
    assert_eq!((code, err.as_deref()), (RejectCode::CanisterError, Some("IC0536")));
    let e = agent.query(&id, "inc").with_arg(Encode!().unwrap()).call().await.unwrap_err();
    assert_eq!(reject_of(e).2.as_deref(), Some("IC0536"));

    // A canister that does not exist.
    let ghost = opml_devnet::replica::canister_id_from_u64(999_999);
    let e = agent.update(&ghost, "inc").with_arg(Encode!().unwrap()).call_and_wait().await.unwrap_err();
    let (code, _, err) = reject_of(e);
    assert_eq!((code, err.as_deref()), (RejectCode::DestinationInvalid, Some("IC0301")));

    // Canister info from the certified state tree.
    let hash = agent.read_state_canister_module_hash(id).await.unwrap();
    assert_eq!(hash, devnet.module_hash(id).unwrap().to_vec());
    let ctrl = agent.read_state_canister_controllers(id).await.unwrap();
    assert_eq!(ctrl, vec![Principal::anonymous()]);
    let candid = agent.read_state_canister_metadata(id, "candid:service").await;
    if let Ok(c) = candid {
        assert!(String::from_utf8_lossy(&c).contains("inc"));
    }
}

#[tokio::test]
async fn a_trap_leaves_state_untouched() {
    let (devnet, id) = devnet_with_counter(DevnetConfig::default());
    let agent = agent(devnet.url(), ed25519_identity(1)).await;
    assert_eq!(update::<u64>(&agent, id, "inc", Encode!().unwrap()).await, 1);
    let size = query::<u64>(&agent, id, "stable_size", Encode!().unwrap()).await;

    let e = agent.update(&id, "inc_then_trap").with_arg(Encode!().unwrap()).call_and_wait().await.unwrap_err();
    let (code, msg, err) = reject_of(e);
    assert_eq!((code, err.as_deref()), (RejectCode::CanisterError, Some("IC0503")));
    assert!(msg.contains("deliberate trap"), "{msg}");
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 1);

    // A panic after growing and writing stable memory: both undone.
    let e = agent
        .update(&id, "write_then_panic")
        .with_arg(Encode!(&(10u64 * 65536)).unwrap())
        .call_and_wait()
        .await
        .unwrap_err();
    assert!(reject_of(e).1.contains("deliberate panic"));
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 1);
    assert_eq!(query::<u64>(&agent, id, "stable_size", Encode!().unwrap()).await, size);

    // Trap in a callback: the part before the await is committed, the part after is not.
    let e = agent.update(&id, "trap_after_call").with_arg(Encode!().unwrap()).call_and_wait().await.unwrap_err();
    let (code, msg, _) = reject_of(e);
    assert_eq!(code, RejectCode::CanisterError);
    assert!(msg.contains("deliberate trap in the callback"), "{msg}");
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 2);

    // The canister keeps working.
    assert_eq!(update::<u64>(&agent, id, "inc", Encode!().unwrap()).await, 3);
    assert_eq!(update::<u64>(&agent, id, "self_call_inc", Encode!().unwrap()).await, 4);
}

#[tokio::test]
async fn inter_canister_calls_to_the_ledger() {
    let (devnet, id) = devnet_with_counter(DevnetConfig::default());
    let user = ed25519_identity(3);
    let user_p = user.sender().unwrap();
    let agent = agent(devnet.url(), user).await;
    let ledger = devnet.ledger_id();
    let fee = devnet.ledger_fee();

    // The faucet, from the library and through the ledger's devnet_mint method.
    devnet.mint(id, 1_000_000).unwrap();
    let minted: Result<Nat, LedgerError> = update(
        &agent,
        ledger,
        "devnet_mint",
        Encode!(&opml_devnet::ledger::MintArgs { to: opml_devnet::Account::of(user_p), amount: Nat::from(500_000u64) })
            .unwrap(),
    )
    .await;
    assert!(minted.is_ok());
    assert_eq!(query::<Nat>(&agent, ledger, "icrc1_balance_of", Encode!(&account(user_p)).unwrap()).await, 500_000u64);
    assert_eq!(query::<Nat>(&agent, ledger, "icrc1_fee", Encode!().unwrap()).await, fee);
    assert_eq!(query::<u8>(&agent, ledger, "icrc1_decimals", Encode!().unwrap()).await, 8);

    // icrc1_transfer from the canister (an inter-canister call with a callback).
    let before = query::<u64>(&agent, id, "get", Encode!().unwrap()).await;
    let paid: Result<Nat, LedgerError> =
        update(&agent, id, "pay", Encode!(&user_p, &Nat::from(1000u64)).unwrap()).await;
    assert!(paid.is_ok(), "{paid:?}");
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, before + 2);
    assert_eq!(devnet.balance(&opml_devnet::Account::of(user_p)), 501_000);
    assert_eq!(devnet.balance(&opml_devnet::Account::of(id)), 1_000_000 - 1000 - fee);
    let too_much: Result<Nat, LedgerError> =
        update(&agent, id, "pay", Encode!(&user_p, &Nat::from(10_000_000u64)).unwrap()).await;
    assert_eq!(too_much, Err(LedgerError::InsufficientFunds { balance: Nat::from(1_000_000 - 1000 - fee) }));
    let bal: Nat = update(&agent, id, "ledger_balance", Encode!(&user_p).unwrap()).await;
    assert_eq!(bal, 501_000u64);

    // ICRC-2: the user approves the canister, the canister pulls.
    let approve = ApproveArgs {
        from_subaccount: None,
        spender: account(id),
        amount: Nat::from(100_000u64),
        expected_allowance: None,
        expires_at: None,
        fee: None,
        memo: None,
        created_at_time: None,
    };
    let r: Result<Nat, LedgerError> = update(&agent, ledger, "icrc2_approve", Encode!(&approve).unwrap()).await;
    assert!(r.is_ok(), "{r:?}");
    let pulled: Result<Nat, LedgerError> =
        update(&agent, id, "pull", Encode!(&user_p, &Nat::from(60_000u64)).unwrap()).await;
    assert!(pulled.is_ok(), "{pulled:?}");
    let again: Result<Nat, LedgerError> =
        update(&agent, id, "pull", Encode!(&user_p, &Nat::from(60_000u64)).unwrap()).await;
    assert_eq!(
        again,
        Err(LedgerError::InsufficientAllowance { allowance: Nat::from(100_000u64 - 60_000 - fee as u64) })
    );
    assert_eq!(devnet.balance(&opml_devnet::Account::of(user_p)), 501_000 - fee - 60_000 - fee);

    // Errors of the ledger through the agent: a bad fee, and a method it does not have.
    let bad = TransferArg {
        from_subaccount: None,
        to: account(id),
        amount: Nat::from(1u64),
        fee: Some(Nat::from(1u64)),
        memo: None,
        created_at_time: None,
    };
    let r: Result<Nat, LedgerError> = update(&agent, ledger, "icrc1_transfer", Encode!(&bad).unwrap()).await;
    assert_eq!(r, Err(LedgerError::BadFee { expected_fee: Nat::from(fee) }));
    let out = agent.update(&id, "call_missing").with_arg(Encode!().unwrap()).call_and_wait().await.unwrap();
    let (code, msg) = Decode!(&out, u32, String).unwrap();
    assert_eq!(code, 5, "{msg}");
    assert!(msg.contains("no_such_method"), "{msg}");

    let counts = devnet.instruction_counts(id);
    assert!(counts.contains_key("pay") && counts.contains_key("pay (callback)"), "{counts:?}");
}

#[tokio::test]
async fn upgrade_keeps_stable_memory_and_failed_upgrades_change_nothing() {
    let (devnet, id) = devnet_with_counter(DevnetConfig::default());
    let agent = agent(devnet.url(), ed25519_identity(4)).await;
    let data = serde_bytes::ByteBuf::from(b"kept across upgrades".to_vec());
    let _: u64 = update(&agent, id, "stable_write", Encode!(&(3u64 * 65536 + 10), &data).unwrap()).await;
    for _ in 0..3 {
        let _: u64 = update(&agent, id, "inc", Encode!().unwrap()).await;
    }
    let read = |agent: &ic_agent::Agent| {
        let agent = agent.clone();
        async move {
            query::<serde_bytes::ByteBuf>(&agent, id, "stable_read", Encode!(&(3u64 * 65536 + 10), &20u64).unwrap())
                .await
        }
    };

    devnet.upgrade_canister(id, COUNTER_WASM, Encode!(&None::<Principal>).unwrap()).unwrap();
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 3);
    assert_eq!(query::<u64>(&agent, id, "upgrades", Encode!().unwrap()).await, 1);
    assert_eq!(read(&agent).await, data);
    // The ledger id survived through the upgrade record.
    let bal: Nat = update(&agent, id, "ledger_balance", Encode!(&id).unwrap()).await;
    assert_eq!(bal, 0u64);

    // post_upgrade traps (an argument it cannot decode): the upgrade fails and nothing changes.
    let e = devnet.upgrade_canister(id, COUNTER_WASM, b"not candid".to_vec()).unwrap_err();
    assert_eq!(e.error_code, "IC0503", "{e}");
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 3);
    assert_eq!(query::<u64>(&agent, id, "upgrades", Encode!().unwrap()).await, 1);
    assert_eq!(update::<u64>(&agent, id, "inc", Encode!().unwrap()).await, 4);
    assert_eq!(read(&agent).await, data);

    // An invalid module is refused with the import named.
    let bad = wat_module_importing("ic0", "mint_cycles128");
    let e = devnet.upgrade_canister(id, &bad, vec![]).unwrap_err();
    assert!(e.message.contains("ic0.mint_cycles128"), "{e}");

    // Reinstall wipes everything.
    devnet.reinstall_canister(id, COUNTER_WASM, Encode!(&None::<Principal>).unwrap()).unwrap();
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 0);
    assert_eq!(query::<u64>(&agent, id, "stable_size", Encode!().unwrap()).await, 0);
    assert!(devnet.install_code(id, InstallMode::Install, COUNTER_WASM, vec![]).is_err());
}

/// A minimal module importing `module.name` (hand-assembled: type, import, no body).
fn wat_module_importing(module: &str, name: &str) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    // type section: one func type () -> ()
    m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]);
    let mut imp = vec![1u8, module.len() as u8];
    imp.extend_from_slice(module.as_bytes());
    imp.push(name.len() as u8);
    imp.extend_from_slice(name.as_bytes());
    imp.extend_from_slice(&[0, 0]);
    m.push(2);
    m.push(imp.len() as u8);
    m.extend_from_slice(&imp);
    m
}

#[tokio::test]
async fn advancing_time_fires_timers() {
    let (devnet, id) = devnet_with_counter(DevnetConfig::default());
    let agent = agent(devnet.url(), ed25519_identity(5)).await;
    let () = update(&agent, id, "set_timer", Encode!(&3600u64).unwrap()).await;
    assert_eq!(query::<u64>(&agent, id, "timer_fired", Encode!().unwrap()).await, 0);
    let t0 = query::<u64>(&agent, id, "now", Encode!().unwrap()).await;
    devnet.advance_time(Duration::from_secs(1800));
    assert_eq!(query::<u64>(&agent, id, "timer_fired", Encode!().unwrap()).await, 0);
    devnet.advance_time(Duration::from_secs(1801));
    assert_eq!(query::<u64>(&agent, id, "timer_fired", Encode!().unwrap()).await, 1);
    let t1 = query::<u64>(&agent, id, "now", Encode!().unwrap()).await;
    assert!(t1 >= t0 + 3601 * 1_000_000_000);
    // Requests keep working with time ahead of the wall clock (expiry is checked against the host's clock).
    assert_eq!(update::<u64>(&agent, id, "inc", Encode!().unwrap()).await, 1);
    let counts = devnet.instruction_counts(id);
    assert!(counts.contains_key("global_timer"), "{counts:?}");
}

#[tokio::test]
async fn deploy_through_the_management_canister() {
    use candid::CandidType;
    #[derive(CandidType)]
    struct Create {
        amount: Option<Nat>,
        settings: Option<()>,
    }
    #[derive(CandidType, candid::Deserialize)]
    struct Created {
        canister_id: Principal,
    }
    #[derive(CandidType, candid::Deserialize)]
    enum Mode {
        #[serde(rename = "install")]
        Install,
    }
    #[derive(CandidType)]
    struct Install {
        mode: Mode,
        canister_id: Principal,
        wasm_module: serde_bytes::ByteBuf,
        arg: serde_bytes::ByteBuf,
    }
    let devnet = opml_devnet::Devnet::start(DevnetConfig::default()).unwrap();
    let who = ed25519_identity(8);
    let who_p = who.sender().unwrap();
    let agent = agent(devnet.url(), who).await;
    let mgmt = Principal::management_canister();
    let out = agent
        .update(&mgmt, "provisional_create_canister_with_cycles")
        .with_effective_canister_id(opml_devnet::replica::canister_id_from_u64(0))
        .with_arg(Encode!(&Create { amount: None, settings: None }).unwrap())
        .call_and_wait()
        .await
        .unwrap();
    let id = Decode!(&out, Created).unwrap().canister_id;
    let install = Install {
        mode: Mode::Install,
        canister_id: id,
        wasm_module: serde_bytes::ByteBuf::from(COUNTER_WASM.to_vec()),
        arg: serde_bytes::ByteBuf::from(Encode!(&None::<Principal>).unwrap()),
    };
    agent
        .update(&mgmt, "install_code")
        .with_effective_canister_id(id)
        .with_arg(Encode!(&install).unwrap())
        .call_and_wait()
        .await
        .unwrap();
    assert_eq!(update::<u64>(&agent, id, "inc", Encode!().unwrap()).await, 1);
    assert_eq!(agent.read_state_canister_controllers(id).await.unwrap(), vec![who_p]);
    // Someone else cannot upgrade it.
    let other = common::agent(devnet.url(), ed25519_identity(99)).await;
    let e = other
        .update(&mgmt, "install_code")
        .with_effective_canister_id(id)
        .with_arg(Encode!(&install).unwrap())
        .call_and_wait()
        .await
        .unwrap_err();
    assert_eq!(reject_of(e).2.as_deref(), Some("IC0512"));
}
