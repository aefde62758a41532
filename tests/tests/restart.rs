//! Scenarios 11 and 12: the canister upgraded in the middle of several concurrent disputes (every game finishes
//! as it would have), and an honest worker daemon killed mid-dispute that resumes from its state file and still
//! wins.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opml_bisect::{ClaimStatus, Error as GameError, Outcome, Reason, Role};
use opml_prover::agent::{Lie, Run, Verdict};
use opml_prover::chain::Chain;
use opml_prover::daemon::{self, DaemonOptions, Metrics};
use opml_scenarios::{
    Actor, BOND, CLOCK_NS, Change, REWARD, STAKE, TraceChallenger, WINDOW_NS, World, burn, log, play, settle,
};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::TaskStatus;

/// Scenario 11: three disputes under way at once — a lying digits worker against an honest challenger, an honest
/// three-segment claim against a challenger that ran another input (a segment bisection first), an honest digits
/// claim against another wrong-input challenger. The operator upgrades the canister (same wasm, through the
/// management canister) half-way: every claim, dispute and balance reads the same after it, and every game then
/// ends as the honest side's: the lie slashed, both honest claims final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_mid_disputes_keeps_every_game() {
    let w = World::start().await;
    let names = ["requester", "liar", "challenger", "fixture-worker", "fixture-wrong", "digits-worker", "digits-wrong"];
    let [requester, liar, challenger, fx_worker, fx_wrong, dg_worker, dg_wrong] = w.chains(names).await;
    let start = w.snapshot().await;

    let digits_in = w.digits_input(1);
    let fixture_in = w.fixture_input(&(0..9000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
    let lie_task = w.post_task(&requester, &w.digits, &digits_in).await;
    let fx_task = w.post_task(&requester, &w.fixture, &fixture_in).await;
    let dg_task = w.post_task(&requester, &w.digits, &digits_in).await;

    let mut liar = w.worker("liar", liar, &w.digits, Some(Lie::OtherInput("heldout:2".into())));
    let lie = liar.serve(lie_task, &digits_in).await.unwrap();
    let mut challenger = w.challenger("challenger", challenger, &w.digits);
    let Verdict::Disputed(d_lie) = challenger.check(lie, &digits_in).await.unwrap() else { panic!("disputed") };

    let mut fx_worker = w.worker("fixture-worker", fx_worker, &w.fixture, None);
    let fx_claim = fx_worker.serve(fx_task, &fixture_in).await.unwrap();
    assert_eq!(w.operator.get_claim(fx_claim).await.unwrap().claim.segments, 3);
    let other = w.fixture_input(b"another input altogether");
    let mut fx_wrong = TraceChallenger::new(fx_wrong, Arc::new(Run::new(&w.fixture, &other).unwrap()));
    let d_fx = fx_wrong.open(fx_claim).await.unwrap();

    let mut dg_worker = w.worker("digits-worker", dg_worker, &w.digits, None);
    let dg_claim = dg_worker.serve(dg_task, &digits_in).await.unwrap();
    let mut dg_wrong = TraceChallenger::new(dg_wrong, w.digits_run(0));
    let d_dg = dg_wrong.open(dg_claim).await.unwrap();

    // A few moves in every game, then the upgrade.
    play(&mut [Actor::Worker(&mut liar), Actor::Challenger(&mut challenger)], 4).await;
    play(&mut [Actor::Worker(&mut fx_worker), Actor::Trace(&mut fx_wrong)], 3).await;
    play(&mut [Actor::Worker(&mut dg_worker), Actor::Trace(&mut dg_wrong)], 3).await;
    let claims = [lie, fx_claim, dg_claim];
    let mut states = Vec::new();
    for c in claims {
        let s = w.operator.get_claim_state(c).await.unwrap();
        assert_eq!(s.open_disputes(), 1, "claim {c} is mid-dispute");
        assert!(s.disputes[0].seq >= 2, "claim {c}: the game is under way");
        states.push(s);
    }
    let before = w.snapshot().await;
    let upgrades = w.devnet.instruction_counts(w.canister).get("post_upgrade").map_or(0, |s| s.calls);
    w.upgrade().await;
    assert_eq!(w.devnet.instruction_counts(w.canister)["post_upgrade"].calls, upgrades + 1, "it was upgraded");
    assert_eq!(w.snapshot().await, before, "every balance survives the upgrade");
    for (c, s) in claims.iter().zip(&states) {
        assert_eq!(&w.operator.get_claim_state(*c).await.unwrap(), s, "claim {c} survives the upgrade");
    }

    // Every game goes on where it stopped.
    settle(&mut [
        Actor::Worker(&mut liar),
        Actor::Challenger(&mut challenger),
        Actor::Worker(&mut fx_worker),
        Actor::Trace(&mut fx_wrong),
        Actor::Worker(&mut dg_worker),
        Actor::Trace(&mut dg_wrong),
    ])
    .await;
    assert_eq!(w.outcome(lie, d_lie).await, Some(Outcome::ChallengerWon(Reason::StepProof)));
    for c in [&fx_wrong, &dg_wrong] {
        assert!(matches!(c.refused(), Some(CanisterError::Game(GameError::StepProofRejected(_)))), "{:?}", c.refused());
    }
    let fx_state = w.operator.get_claim_state(fx_claim).await.unwrap();
    assert!(fx_state.disputes[d_fx as usize].segment_rounds >= 1, "the fixture game bisected segments");
    w.run_out_clock();
    w.operator.timeout(fx_claim, d_fx).await.unwrap();
    w.operator.timeout(dg_claim, d_dg).await.unwrap();
    assert_eq!(w.outcome(fx_claim, d_fx).await, Some(Outcome::WorkerWon(Reason::Timeout)));
    assert_eq!(w.outcome(dg_claim, d_dg).await, Some(Outcome::WorkerWon(Reason::Timeout)));
    w.pass_window();
    for wk in [&mut fx_worker, &mut dg_worker] {
        wk.finalize_next_poll();
        wk.poll().await.unwrap();
        assert!(wk.settled());
    }
    assert_eq!(w.task_status(lie_task).await, TaskStatus::Open);
    assert_eq!(w.task_status(fx_task).await, TaskStatus::Done { claim: fx_claim });
    assert_eq!(w.task_status(dg_task).await, TaskStatus::Done { claim: dg_claim });

    let end = w.snapshot().await;
    start.assert_change(
        &end,
        Change {
            balances: &[
                ("requester", -3 * REWARD as i128),
                ("liar", -(STAKE as i128)),
                ("challenger", (STAKE - burn(STAKE)) as i128),
                ("fixture-worker", (REWARD + BOND - burn(BOND)) as i128),
                ("fixture-wrong", -(BOND as i128)),
                ("digits-worker", (REWARD + BOND - burn(BOND)) as i128),
                ("digits-wrong", -(BOND as i128)),
            ],
            locked: REWARD as i128,
            burned: (burn(STAKE) + 2 * burn(BOND)) as i128,
            ..Default::default()
        },
    );
}

/// How long a real-time wait for the daemon may take before the test gives up (it polls every 50 ms; a digits
/// move takes well under a second).
const PATIENCE: Duration = Duration::from_secs(120);

/// Scenario 12: the honest worker runs as the `opml worker` daemon (the library entry point the binary calls)
/// with a state file. A challenger that ran another input disputes its claim; mid-bisection the daemon is killed,
/// and the challenger makes its move while the worker is down. A new daemon with a fresh client, the same
/// identity and only the state file (no input given) resumes the claim, answers every move, and wins: the
/// challenger's proof is refused, it runs out of clock, and the worker takes its bond and the reward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_restart_resumes_from_disk_and_wins() {
    let w = World::start().await;
    let (_, requester) = w.party("requester").await;
    let (worker, first_chain) = w.party("worker").await;
    let (_, wrong) = w.party("wrong-input").await;
    let start = w.snapshot().await;

    let input = w.digits_input(3);
    let task = w.post_task(&requester, &w.digits, &input).await;
    let dir = std::env::temp_dir().join(format!("opml-scenario-restart-{}-{task}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("worker-state.json");
    let _ = std::fs::remove_file(&state);
    let opts = DaemonOptions {
        task: Some(task),
        exit_when_settled: true,
        state: Some(state.clone()),
        poll: Duration::from_millis(50),
        listen: None,
        reward: REWARD,
        stake: STAKE,
        window_ns: WINDOW_NS,
        clock_ns: CLOCK_NS,
        // Text lines on stdout (captured by the test harness); no bars, stderr is not a terminal here.
        output: opml_prover::progress::Output::new(false, false),
    };
    let model = w.digits.model;
    let first = tokio::spawn(daemon::run(
        w.worker("daemon-1", first_chain, &w.digits, None),
        model,
        Some("heldout:3".into()),
        opts.clone(),
        Arc::new(Metrics::default()),
    ));
    let until = |what: &'static str| {
        let t = Instant::now();
        move || assert!(t.elapsed() < PATIENCE, "timed out waiting for {what}")
    };
    // The claim, and the daemon's state file recording it (written right after the claim is submitted).
    let wait = until("the claim and the state file");
    let claim = loop {
        if let TaskStatus::Claimed { claim } = w.task_status(task).await {
            let saved = std::fs::read_to_string(&state).unwrap_or_default();
            if saved.contains(&format!("\"claim\":{claim}")) {
                assert!(saved.contains("heldout:3"), "the state file records the input: {saved}");
                break claim;
            }
        }
        wait();
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let mut wrong = TraceChallenger::new(wrong, w.digits_run(4));
    let d = wrong.open(claim).await.unwrap();
    // Play until the daemon has answered the first choice (commit, post, choose, post: 4 moves).
    let wait = until("the first rounds");
    loop {
        // Move only on an observed challenger turn (nobody else can move then), so the game stops exactly at the
        // first challenger turn after four moves.
        let v = w.operator.get_dispute(claim, d).await.unwrap();
        if v.mover == Some(Role::Challenger) {
            if v.seq >= 4 {
                assert_eq!(v.seq, 4, "stopped at the first chance");
                break;
            }
            assert_eq!(wrong.poll().await.unwrap(), 1);
        }
        wait();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The crash: the daemon is stopped wherever it was; the challenger moves while the worker is down.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert_eq!(wrong.poll().await.unwrap(), 1);
    let down = w.operator.get_dispute(claim, d).await.unwrap();
    assert_eq!(down.mover, Some(Role::Worker), "the dispute waits for the worker");

    // The restart: a new client of the same identity, the state file, no input.
    let second_chain = w.connect(&worker).await;
    let second = tokio::spawn(daemon::run(
        opml_prover::agent::Worker::new(second_chain, w.digits.clone(), None, log("daemon-2")),
        model,
        None,
        opts,
        Arc::new(Metrics::default()),
    ));
    let wait = until("the game to reach the proof");
    while wrong.refused().is_none() {
        wrong.poll().await.unwrap();
        assert!(!second.is_finished(), "the daemon stopped early");
        wait();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        matches!(wrong.refused(), Some(CanisterError::Game(GameError::StepProofRejected(_)))),
        "{:?}",
        wrong.refused()
    );
    let v = w.operator.get_dispute(claim, d).await.unwrap();
    assert!(v.seq >= down.seq + 3, "the resumed worker answered several rounds ({} -> {} moves)", down.seq, v.seq);
    assert_eq!(v.mover, Some(Role::Challenger));

    w.run_out_clock();
    w.operator.timeout(claim, d).await.unwrap();
    assert_eq!(w.outcome(claim, d).await, Some(Outcome::WorkerWon(Reason::Timeout)));
    w.pass_window();
    // Finality by whoever comes first: the daemon (it retries `finalize` on its own schedule) or a bystander.
    match w.operator.finalize(claim).await {
        Ok(()) => {}
        Err(e) => assert!(matches!(e.canister(), Some(CanisterError::Game(GameError::ClaimNotPending))), "{e}"),
    }
    assert!(matches!(w.claim_status(claim).await, ClaimStatus::Final { .. }));
    // The daemon sees its claim settled and exits by itself.
    tokio::time::timeout(PATIENCE, second).await.expect("the daemon exits once settled").unwrap().unwrap();

    start.assert_worker_paid(&w.snapshot().await, Some("requester"), "worker", &["wrong-input"]);
    let _ = std::fs::remove_dir_all(&dir);
}
