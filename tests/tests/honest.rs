//! Scenarios 1, 2 and 3: an honest worker unchallenged, an honest worker against a frivolous challenger, and a
//! lying worker caught by an honest challenger (the task then reopens and an honest worker is paid for it).

use opml_bisect::{ClaimStatus, Error as GameError, Outcome, Reason};
use opml_prover::agent::{Lie, Verdict};
use opml_prover::chain::Chain;
use opml_scenarios::{Actor, Change, DEPOSIT, REWARD, STAKE, TraceChallenger, World, settle};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::{TaskStatus, WithdrawalStatus};

/// Scenario 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_worker_unchallenged_is_paid_after_the_window() {
    let w = World::start().await;
    let [requester, worker, watcher] = w.chains(["requester", "worker", "watcher"]).await;
    let start = w.snapshot().await;

    let input = w.digits_input(3);
    let (task, mut worker, claim) = w.post_and_serve(&requester, ("worker", worker), &w.digits, &input, None).await;
    let mut watcher = w.challenger("watcher", watcher, &w.digits);
    assert_eq!(watcher.check(claim, &input).await.unwrap(), Verdict::Agrees);
    let pending = w.snapshot().await;
    start.assert_change(
        &pending,
        Change {
            balances: &[("requester", -(REWARD as i128)), ("worker", -(STAKE as i128))],
            locked: (REWARD + STAKE) as i128,
            ..Default::default()
        },
    );

    // Before the window ends nobody can finalize: the claim stays pending and nothing moves.
    worker.finalize_next_poll();
    worker.poll().await.unwrap();
    assert_eq!(w.claim_status(claim).await, ClaimStatus::Pending);
    assert!(!worker.settled());
    let early = w.operator.finalize(claim).await.unwrap_err();
    assert!(matches!(early.canister(), Some(CanisterError::Game(GameError::ChallengeWindowOpen { .. }))), "{early}");
    assert_eq!(w.snapshot().await, pending);

    w.finalize_after_window(&mut worker, claim).await;
    assert!(worker.settled());
    assert_eq!(w.task_status(task).await, TaskStatus::Done { claim });
    let paid = w.snapshot().await;
    start.assert_worker_paid(&paid, Some("requester"), "worker", &[]);

    // The worker takes its reward to the ledger: amount + fee leave its balance, the amount reaches its account.
    let fee = w.config.ledger_fee;
    let out = worker.chain.withdraw(REWARD).await.unwrap();
    assert!(matches!(out.status, WithdrawalStatus::Completed { .. }), "{:?}", out.status);
    let done = w.snapshot().await;
    paid.assert_change(
        &done,
        Change {
            balances: &[("worker", -((REWARD + fee) as i128))],
            ledger: &[("worker", REWARD as i128)],
            withdrawn: (REWARD + fee) as i128,
            ..Default::default()
        },
    );
    assert_eq!(done.balances["worker"], DEPOSIT - fee);
    // A final claim cannot be disputed any more.
    let late = watcher.chain.open_dispute(claim).await.unwrap_err();
    assert!(matches!(late.canister(), Some(CanisterError::Game(GameError::ClaimNotPending))), "{late}");
}

/// Scenario 2: the challenger re-ran the task on another input (a wrong trace) and disputes the honest claim with
/// the game's challenger strategy. It is led down to the first step, whose proof cannot start from the agreed
/// root, so the canister refuses it; it then runs out of clock, a third party ends the dispute, and its bond
/// goes to the worker less the burn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frivolous_challenger_loses_its_bond() {
    let w = World::start().await;
    let [requester, worker, frivolous, bystander] = w.chains(["requester", "worker", "frivolous", "bystander"]).await;
    let start = w.snapshot().await;

    let input = w.digits_input(3);
    let (task, mut worker, claim) = w.post_and_serve(&requester, ("worker", worker), &w.digits, &input, None).await;
    let mut frivolous = TraceChallenger::new(frivolous, w.digits_run(4));
    let d = frivolous.open(claim).await.unwrap();
    let moves = settle(&mut [Actor::Worker(&mut worker), Actor::Trace(&mut frivolous)]).await;
    assert!(moves >= 3, "{moves} moves: the step commitment, bisection rounds");
    assert!(
        matches!(frivolous.refused(), Some(CanisterError::Game(GameError::StepProofRejected(_)))),
        "the lying proof is refused: {:?}",
        frivolous.refused()
    );
    assert_eq!(w.outcome(claim, d).await, None, "a refused move changes nothing: the dispute waits for a valid one");

    // The open dispute blocks finality; the challenger's clock is still running, so no timeout yet.
    let blocked = w.operator.finalize(claim).await.unwrap_err();
    assert!(
        matches!(blocked.canister(), Some(CanisterError::Game(GameError::ChallengeWindowOpen { .. }))),
        "{blocked}"
    );
    assert_eq!(w.timeout_after_clock(&bystander, claim, d).await, Some(Outcome::WorkerWon(Reason::Timeout)));
    assert_eq!(w.claim_status(claim).await, ClaimStatus::Pending, "the claim still waits for its window");
    w.finalize_after_window(&mut worker, claim).await;
    assert_eq!(w.task_status(task).await, TaskStatus::Done { claim });

    start.assert_worker_paid(&w.snapshot().await, Some("requester"), "worker", &["frivolous"]);
}

/// Scenario 3: the worker claims the result of another input; the honest challenger re-executes, disputes,
/// and wins by the one-step proof. The worker's stake goes to the challenger less the burn, the task reopens
/// with its reward still locked, and an honest worker then serves it and is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_worker_is_slashed_and_the_task_reopens() {
    let w = World::start().await;
    let [requester, liar, challenger, honest] = w.chains(["requester", "liar", "challenger", "honest"]).await;
    let start = w.snapshot().await;

    let input = w.digits_input(3);
    let lying = Some(Lie::OtherInput("heldout:4".into()));
    let (task, mut liar, lie) = w.post_and_serve(&requester, ("liar", liar), &w.digits, &input, lying).await;
    let mut challenger = w.challenger("challenger", challenger, &w.digits);
    let Verdict::Disputed(d) = challenger.check(lie, &input).await.unwrap() else { panic!("the lie is disputed") };
    settle(&mut [Actor::Worker(&mut liar), Actor::Challenger(&mut challenger)]).await;
    assert!(challenger.settled() && liar.settled());
    assert_eq!(w.outcome(lie, d).await, Some(Outcome::ChallengerWon(Reason::StepProof)));
    assert!(matches!(w.claim_status(lie).await, ClaimStatus::Invalidated { by, .. } if by == d));
    assert_eq!(w.task_status(task).await, TaskStatus::Open, "the task reopens");
    let slashed = w.snapshot().await;
    start.assert_worker_slashed(&slashed, Some("requester"), "liar", "challenger");
    // An invalidated claim is over: it can be neither finalized nor disputed.
    let over = w.operator.finalize(lie).await.unwrap_err();
    assert!(matches!(over.canister(), Some(CanisterError::Game(GameError::ClaimNotPending))), "{over}");

    // The reopened task is served honestly; the same challenger checks it and agrees; it is paid after the window.
    let mut honest = w.worker("honest", honest, &w.digits, None);
    let claim = honest.serve(task, &input).await.unwrap();
    assert_eq!(challenger.check(claim, &input).await.unwrap(), Verdict::Agrees);
    w.finalize_after_window(&mut honest, claim).await;
    assert_eq!(w.task_status(task).await, TaskStatus::Done { claim });
    let end = w.snapshot().await;
    slashed.assert_worker_paid(&end, None, "honest", &[]);
    assert_eq!(end.balances["honest"], DEPOSIT + REWARD);
}
