//! Scenario 7: a party goes silent mid-dispute and loses on its clock, in both directions: a lying worker that
//! stops answering, and a frivolous challenger that stops choosing. The dispute is ended by a third party's public
//! `timeout`, or (third test) by the canister's sweep timer alone.

use opml_bisect::{ClaimStatus, Error as GameError, Outcome, Reason, Role};
use opml_prover::agent::{Lie, Verdict};
use opml_prover::chain::Chain;
use opml_scenarios::{Actor, BOND, Change, REWARD, STAKE, TraceChallenger, World, WorldOptions, burn, play, settle};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::TaskStatus;

/// A lying worker answers the first moves, then goes silent; once its clock has run out a bystander ends the
/// dispute: the challenger wins by timeout, the stake is slashed, the task reopens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_worker_loses_on_clock() {
    let w = World::start().await;
    let [requester, liar, challenger, bystander] = w.chains(["requester", "liar", "challenger", "bystander"]).await;
    let start = w.snapshot().await;

    let input = w.digits_input(5);
    let lying = Some(Lie::OtherInput("heldout:6".into()));
    let (task, mut liar, claim) = w.post_and_serve(&requester, ("liar", liar), &w.digits, &input, lying).await;
    let mut challenger = w.challenger("challenger", challenger, &w.digits);
    let Verdict::Disputed(d) = challenger.check(claim, &input).await.unwrap() else { panic!("disputed") };
    // The step commitment and one bisection round, then the worker falls silent.
    play(&mut [Actor::Worker(&mut liar), Actor::Challenger(&mut challenger)], 3).await;
    assert_eq!(settle(&mut [Actor::Challenger(&mut challenger)]).await, 0, "the challenger waits for the worker");
    let view = w.operator.get_dispute(claim, d).await.unwrap();
    assert_eq!(view.mover, Some(Role::Worker));
    assert!(view.seq >= 3, "the game was under way ({} moves)", view.seq);

    // Not before the worker's clock has run out.
    let outcome = w.timeout_after_clock(&bystander, claim, d).await;
    assert_eq!(outcome, Some(Outcome::ChallengerWon(Reason::Timeout)));
    assert!(matches!(w.claim_status(claim).await, ClaimStatus::Invalidated { .. }));
    assert_eq!(w.task_status(task).await, TaskStatus::Open);
    // The worker wakes up too late: the dispute is over.
    liar.poll().await.unwrap();
    assert!(liar.settled());
    let again = bystander.timeout(claim, d).await.unwrap_err();
    assert!(matches!(again.canister(), Some(CanisterError::Game(GameError::DisputeOver))), "{again}");

    start.assert_worker_slashed(&w.snapshot().await, Some("requester"), "liar", "challenger");
}

/// A frivolous challenger (it ran another input) plays the first rounds, then goes silent; once its clock has
/// run out a bystander ends the dispute: the worker wins by timeout and takes the bond less the burn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_challenger_loses_on_clock() {
    let w = World::start().await;
    let [requester, worker, frivolous, bystander] = w.chains(["requester", "worker", "frivolous", "bystander"]).await;
    let start = w.snapshot().await;

    let input = w.digits_input(5);
    let (_, mut worker, claim) = w.post_and_serve(&requester, ("worker", worker), &w.digits, &input, None).await;
    let mut frivolous = TraceChallenger::new(frivolous, w.digits_run(6));
    let d = frivolous.open(claim).await.unwrap();
    play(&mut [Actor::Worker(&mut worker), Actor::Trace(&mut frivolous)], 3).await;
    // The worker answers what is left to answer, then waits for the challenger.
    settle(&mut [Actor::Worker(&mut worker)]).await;
    assert_eq!(w.operator.get_dispute(claim, d).await.unwrap().mover, Some(Role::Challenger));
    assert!(frivolous.refused().is_none(), "it went silent mid-bisection, not at the proof");

    assert_eq!(w.timeout_after_clock(&bystander, claim, d).await, Some(Outcome::WorkerWon(Reason::Timeout)));
    // A move after the end is refused.
    assert_eq!(frivolous.poll().await.unwrap(), 0);
    w.finalize_after_window(&mut worker, claim).await;

    start.assert_worker_paid(&w.snapshot().await, Some("requester"), "worker", &["frivolous"]);
}

/// With the sweep timer configured, nobody has to call anything: when time passes the canister's own timer
/// applies both timeouts (a silent lying worker and a silent frivolous challenger), then finalizes the honest
/// claim once its window has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_timer_ends_silent_disputes() {
    let w = World::start_with(WorldOptions { sweep_interval_s: 60, ..Default::default() }).await;
    let [requester, liar, worker, challenger, frivolous] =
        w.chains(["requester", "liar", "worker", "challenger", "frivolous"]).await;
    let start = w.snapshot().await;

    let input = w.digits_input(7);
    let lie_task = w.post_task(&requester, &w.digits, &input).await;
    let honest_task = w.post_task(&requester, &w.digits, &input).await;
    let mut liar = w.worker("liar", liar, &w.digits, Some(Lie::OtherInput("heldout:8".into())));
    let lie = liar.serve(lie_task, &input).await.unwrap();
    let mut worker = w.worker("worker", worker, &w.digits, None);
    let claim = worker.serve(honest_task, &input).await.unwrap();
    let mut challenger = w.challenger("challenger", challenger, &w.digits);
    let Verdict::Disputed(d_lie) = challenger.check(lie, &input).await.unwrap() else { panic!("disputed") };
    let mut frivolous = TraceChallenger::new(frivolous, w.digits_run(8));
    let d_honest = frivolous.open(claim).await.unwrap();
    // One round each, then the liar and the frivolous challenger fall silent.
    play(&mut [Actor::Worker(&mut liar), Actor::Challenger(&mut challenger)], 3).await;
    play(&mut [Actor::Worker(&mut worker), Actor::Trace(&mut frivolous)], 3).await;
    settle(&mut [Actor::Worker(&mut worker), Actor::Challenger(&mut challenger)]).await;
    assert_eq!(w.outcome(lie, d_lie).await, None);
    assert_eq!(w.outcome(claim, d_honest).await, None);

    w.run_out_clock();
    assert_eq!(w.outcome(lie, d_lie).await, Some(Outcome::ChallengerWon(Reason::Timeout)), "applied by the sweep");
    assert_eq!(w.outcome(claim, d_honest).await, Some(Outcome::WorkerWon(Reason::Timeout)), "applied by the sweep");
    assert_eq!(w.claim_status(claim).await, ClaimStatus::Pending, "the window is still open");
    w.pass_window();
    assert!(matches!(w.claim_status(claim).await, ClaimStatus::Final { .. }), "finalized by the sweep");
    assert_eq!(w.task_status(honest_task).await, TaskStatus::Done { claim });
    assert_eq!(w.task_status(lie_task).await, TaskStatus::Open);
    let stats = w.devnet.instruction_counts(w.canister);
    assert!(stats.get("timeout").is_none_or(|s| s.calls == 0), "nobody called timeout");
    assert!(stats.get("finalize").is_none_or(|s| s.calls == 0), "nobody called finalize");

    let end = w.snapshot().await;
    start.assert_change(
        &end,
        Change {
            balances: &[
                ("requester", -2 * REWARD as i128),
                ("liar", -(STAKE as i128)),
                ("challenger", (STAKE - burn(STAKE)) as i128),
                ("worker", (REWARD + BOND - burn(BOND)) as i128),
                ("frivolous", -(BOND as i128)),
            ],
            locked: REWARD as i128,
            burned: (burn(STAKE) + burn(BOND)) as i128,
            ..Default::default()
        },
    );
}
