//! Instruction and size limits, instruction counts, and the library API without HTTP.

use candid::{Decode, Encode, Principal};
use opml_devnet::test_canisters::COUNTER_WASM;
use opml_devnet::{Devnet, DevnetConfig, Limits, TimeMode};

fn devnet(limits: Limits) -> (Devnet, Principal) {
    let config = DevnetConfig {
        bind: None,
        seed: Some([1; 32]),
        time: TimeMode::Manual { start_nanos: 1_700_000_000_000_000_000 },
        limits,
        ..DevnetConfig::default()
    };
    let devnet = Devnet::start(config).unwrap();
    let ledger = devnet.ledger_id();
    let id = devnet.install_canister(COUNTER_WASM, Encode!(&Some(ledger)).unwrap(), vec![]).unwrap();
    (devnet, id)
}

#[test]
fn instruction_limits_are_enforced_and_roll_back() {
    let limits = Limits { update_instructions: 20_000_000, query_instructions: 10_000_000, ..Limits::default() };
    let (devnet, id) = devnet(limits);
    let anon = Principal::anonymous();
    let n = Decode!(&devnet.update_call(anon, id, "burn_update", Encode!(&1000u64).unwrap()).unwrap(), u64).unwrap();
    assert_eq!(n, 1);
    let e = devnet.update_call(anon, id, "burn_update", Encode!(&100_000_000u64).unwrap()).unwrap_err();
    assert_eq!(e.error_code, "IC0522", "{e}");
    assert!(e.message.contains("20000000 instructions"), "{e}");
    let e = devnet.query_call(anon, id, "burn", Encode!(&100_000_000u64).unwrap()).unwrap_err();
    assert_eq!(e.error_code, "IC0522", "{e}");
    // The update that ran out of instructions changed nothing.
    let n = Decode!(&devnet.query_call(anon, id, "get", Encode!().unwrap()).unwrap(), u64).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn reply_size_limit_and_performance_counter() {
    let (devnet, id) = devnet(Limits::default());
    let anon = Principal::anonymous();
    let ok = devnet.query_call(anon, id, "blob", Encode!(&(1024u64 * 1024)).unwrap()).unwrap();
    assert!(ok.len() > 1024 * 1024);
    let e = devnet.query_call(anon, id, "blob", Encode!(&(3u64 * 1024 * 1024)).unwrap()).unwrap_err();
    assert_eq!(e.error_code, "IC0504", "{e}");
    let e = devnet.update_call(anon, id, "inc", vec![0; 3 * 1024 * 1024]).unwrap_err();
    assert!(e.message.contains("ingress limit"), "{e}");

    // performance_counter(0) grows with the work done, and matches the recorded count.
    let small = Decode!(&devnet.query_call(anon, id, "burn", Encode!(&1000u64).unwrap()).unwrap(), u64).unwrap();
    let big = Decode!(&devnet.query_call(anon, id, "burn", Encode!(&1_000_000u64).unwrap()).unwrap(), u64).unwrap();
    assert!(big > small + 1_000_000, "{small} {big}");
    let stats = devnet.instruction_counts(id);
    let burn = &stats["burn (query)"];
    assert_eq!(burn.calls, 2);
    assert!(burn.last_instructions >= big);
}

#[test]
fn manual_time_and_timers_without_http() {
    let (devnet, id) = devnet(Limits::default());
    let anon = Principal::anonymous();
    let t0 = Decode!(&devnet.query_call(anon, id, "now", Encode!().unwrap()).unwrap(), u64).unwrap();
    assert!((1_700_000_000_000_000_000..1_700_000_000_000_000_000 + 1_000_000_000).contains(&t0));
    devnet.update_call(anon, id, "set_timer", Encode!(&60u64).unwrap()).unwrap();
    assert!(devnet.global_timer(id).unwrap() > 0);
    devnet.advance_time(std::time::Duration::from_secs(59));
    let fired = Decode!(&devnet.query_call(anon, id, "timer_fired", Encode!().unwrap()).unwrap(), u64).unwrap();
    assert_eq!(fired, 0);
    devnet.advance_time(std::time::Duration::from_secs(2));
    let fired = Decode!(&devnet.query_call(anon, id, "timer_fired", Encode!().unwrap()).unwrap(), u64).unwrap();
    assert_eq!(fired, 1, "log: {:?}\nstats: {:?}", devnet.debug_log(id), devnet.instruction_counts(id));
}

/// Prints the instruction counts of the counter canister's methods (`cargo test -p opml-devnet --test limits
/// -- --nocapture instruction_report`), the numbers recorded in docs/benchmarks.md.
#[test]
fn instruction_report() {
    let (devnet, id) = devnet(Limits::default());
    let anon = Principal::anonymous();
    devnet.mint(id, 1_000_000).unwrap();
    let e = |a: Vec<u8>| a;
    for _ in 0..3 {
        devnet.update_call(anon, id, "inc", e(Encode!().unwrap())).unwrap();
        devnet.query_call(anon, id, "get", e(Encode!().unwrap())).unwrap();
        devnet.query_call(anon, id, "whoami", e(Encode!().unwrap())).unwrap();
        devnet
            .update_call(
                anon,
                id,
                "stable_write",
                Encode!(&0u64, &serde_bytes::ByteBuf::from(vec![1u8; 1024])).unwrap(),
            )
            .unwrap();
        devnet.update_call(anon, id, "pay", Encode!(&anon, &candid::Nat::from(10u64)).unwrap()).unwrap();
        devnet.update_call(anon, id, "set_timer", Encode!(&1u64).unwrap()).unwrap();
        devnet.advance_time(std::time::Duration::from_secs(2));
    }
    devnet.upgrade_canister(id, COUNTER_WASM, Encode!(&None::<Principal>).unwrap()).unwrap();
    let stats = devnet.instruction_counts(id);
    assert!(stats["inc"].mean_instructions() > 0);
    println!("| entry point | calls | mean instructions | max |");
    println!("|---|---:|---:|---:|");
    for (k, s) in &stats {
        println!("| `{k}` | {} | {} | {} |", s.calls, s.mean_instructions(), s.max_instructions);
    }
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_compressed_modules() {
    use sha2::Digest;
    let devnet = Devnet::start(DevnetConfig { bind: None, ..DevnetConfig::default() }).unwrap();
    let anon = Principal::anonymous();
    let arg = Encode!(&None::<Principal>).unwrap();
    let gz = gzip(COUNTER_WASM, 9);
    let id = devnet.install_canister(&gz, arg.clone(), vec![]).unwrap();
    let hash: [u8; 32] = sha2::Sha256::digest(&gz).into();
    assert_eq!(devnet.module_hash(id), Some(hash), "the hash of the module as installed");
    let n = Decode!(&devnet.update_call(anon, id, "inc", Encode!().unwrap()).unwrap(), u64).unwrap();
    assert_eq!(n, 1);
    // Truncated: refused with the reason, the canister keeps its code and state.
    let e = devnet.upgrade_canister(id, &gz[..gz.len() / 2], arg.clone()).unwrap_err();
    assert!(e.message.contains("cannot decompress"), "{e}");
    assert_eq!(devnet.module_hash(id), Some(hash));
    let n = Decode!(&devnet.query_call(anon, id, "get", Encode!().unwrap()).unwrap(), u64).unwrap();
    assert_eq!(n, 1);
    // A module that expands past the IC's 100 MiB limit is refused without being expanded further.
    let bomb = gzip(&vec![0u8; (opml_devnet::exec::MAX_WASM_MODULE_BYTES + 1) as usize], 1);
    let e = devnet.upgrade_canister(id, &bomb, arg).unwrap_err();
    assert!(e.message.contains("decompresses to more than"), "{e}");
}
