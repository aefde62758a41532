//! The demo flow on the devnet with the digits model, through the real canister wasm, the ic-agent client and
//! the worker/challenger agents: the honest claim finalizes, the lie is caught by a one-step proof, and every
//! balance is exact to the unit.

use opml_prover::demo::{self, BURN_BPS, DEPOSIT, DemoOptions, REWARD, STAKE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digits_demo_slashes_the_cheater() {
    let r = demo::run(DemoOptions { model: "digits".into(), verbose: false, ..Default::default() }).await.unwrap();
    assert!(r.honest_status.starts_with("Final"), "{}", r.honest_status);
    assert!(r.cheat_claim_invalidated);
    assert!(r.challenger_won_by_proof, "{}", r.outcome);
    assert_eq!(r.cheat_task_status, "Open", "the task reopens after the lie");
    // digits is one segment: no segment round; its ~62k steps need ceil(log8) = 6 rounds at most.
    assert_eq!(r.segment_rounds, 0);
    assert_eq!(r.proved_step, Some((0, 0)), "another input differs from the first step on");
    assert!((1..=6).contains(&r.step_rounds), "{} step rounds", r.step_rounds);
    // commit + (post, choose) per round + the proof.
    assert_eq!(r.moves, 1 + 2 * r.step_rounds + 1);
    assert!(r.dispute_bytes_worker > 0 && r.dispute_bytes_challenger > 0);

    let burn = STAKE * u64::from(BURN_BPS) / 10_000;
    let expect = [
        ("requester", DEPOSIT - 2 * REWARD),
        ("honest worker", DEPOSIT + REWARD),
        ("cheater", DEPOSIT - STAKE),
        ("challenger", DEPOSIT + STAKE - burn),
    ];
    for ((name, before, after), (want_name, want)) in r.balances.iter().zip(expect) {
        assert_eq!(name, want_name);
        assert_eq!(*before, DEPOSIT, "{name} before");
        assert_eq!(*after, want, "{name} after");
    }
    assert_eq!(r.burned, u128::from(burn));
    assert_eq!(r.locked, u128::from(REWARD), "only the reopened task's reward is still locked");
    // Ledger: minted 2 * DEPOSIT, deposited DEPOSIT, paid the approve fee and the transfer_from fee.
    let fee = 10_000u128;
    for (name, l) in &r.ledger {
        assert_eq!(*l, 2 * u128::from(DEPOSIT) - u128::from(DEPOSIT) - 2 * fee, "{name} ledger");
    }
    // Canister budget: every move, the one-step proof included, under the 10M move budget.
    let (calls, _, max) = r.instructions["play"];
    assert_eq!(calls, u64::from(r.moves));
    assert!(max < 10_000_000, "a move took {max} instructions");
}

/// Bad input gives one clear line and a non-zero exit code, never a panic.
#[test]
fn cli_errors_are_one_line() {
    let bin = env!("CARGO_BIN_EXE_opml");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin).args(args).env_remove("OPML_CANISTER").output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, err) = run(&["run", "--model", "nope", "--input", "x"]);
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown model `nope`"), "{err}");
    let (code, err) = run(&["balance", "--network", "gopher://x", "--identity", "/nonexistent.pem"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("error: unknown network"), "{err}");
    let (code, err) =
        run(&["balance", "--network", "local", "--identity", "/nonexistent.pem", "--canister", "aaaaa-aa"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot read the identity /nonexistent.pem"), "{err}");
    let (code, _) = run(&["demo", "--arity", "99"]);
    assert_eq!(code, Some(2));
    let (code, _) = run(&["no-such-command"]);
    assert_eq!(code, Some(2));
    // A config file with a typo is refused in one line.
    let path = std::env::temp_dir().join(format!("opml-bad-config-{}.toml", std::process::id()));
    std::fs::write(&path, "netwrk = \"local\"\n").unwrap();
    let out = std::process::Command::new(bin).args(["balance"]).env("OPML_CONFIG", &path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad config") && err.contains("unknown field"), "{err}");
    let _ = std::fs::remove_file(&path);
}

/// The main-job demo: a wrong MiniLM sentence embedding caught through segment and step bisection (needs the
/// MiniLM wheel: scripts/setup.sh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_demo_catches_a_wrong_embedding() {
    opml_guests::minilm::locate().unwrap_or_else(|e| panic!("{e}"));
    let r = demo::run(DemoOptions { model: "minilm".into(), verbose: false, ..Default::default() }).await.unwrap();
    assert!(r.honest_status.starts_with("Final"), "{}", r.honest_status);
    assert!(r.cheat_claim_invalidated && r.challenger_won_by_proof, "{}", r.outcome);
    // The cheater corrupted the state before the last segment: 8 segments at k = 8 need one segment round to
    // find the last encoder layer (segment 6), then its ~22M steps need 9 step rounds down to its last step.
    assert_eq!(r.cheat_segments, 8);
    assert_eq!(r.segment_rounds, 1);
    assert!((8..=9).contains(&r.step_rounds), "{} step rounds", r.step_rounds);
    let (segment, step) = r.proved_step.expect("settled by a proof");
    assert_eq!(segment, 6);
    let steps = segment_steps("This is an example sentence", segment);
    assert_eq!(step, steps - 1, "the corrupted step is the segment's last (of {steps})");
    let burn = STAKE * u64::from(BURN_BPS) / 10_000;
    let after: Vec<u64> = r.balances.iter().map(|b| b.2).collect();
    assert_eq!(after, [DEPOSIT - 2 * REWARD, DEPOSIT + REWARD, DEPOSIT - STAKE, DEPOSIT + STAKE - burn]);
    let max = r.instructions["play"].2;
    assert!(max < 10_000_000, "a move took {max} instructions");
}

/// The stepper's step count of segment `segment` (0-based) of the MiniLM guest on `text`.
fn segment_steps(text: &str, segment: u64) -> u64 {
    use opml_vm::{Limits, NoHost, Status, guest::GuestProgram, io::Inputs};
    let model = opml_prover::model::find("minilm").unwrap();
    let blobs = opml_prover::model::blobs(model, text).unwrap();
    let program = GuestProgram::new(model.wasm).unwrap();
    let mut m = program.machine(std::sync::Arc::new(Inputs::new(blobs)), Limits::default()).unwrap();
    for _ in 0..segment {
        m.run(&mut NoHost, u64::MAX).unwrap();
        assert_eq!(m.status(), Status::Idle);
    }
    let start = m.steps();
    m.run(&mut NoHost, u64::MAX).unwrap();
    m.steps() - start
}
