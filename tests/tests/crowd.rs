//! Scenarios 9 and 10: many challengers against one honest claim at once (the worker wins every dispute and is
//! paid once), and a worker that disputes its own claim from a second identity (griefing an honest claim costs it
//! the burn of its bond; front-running the challenge of its own lie costs it the burn of its stake, and the
//! honest challenger it raced gets its bond back).

use std::sync::Arc;

use opml_bisect::agent::Trace;
use opml_bisect::{ClaimStatus, Error as GameError, Outcome, Reason};
use opml_prover::agent::{Lie, Run, Verdict};
use opml_prover::chain::Chain;
use opml_scenarios::lies::LiesFrom;
use opml_scenarios::{Actor, BOND, Change, REWARD, STAKE, TraceChallenger, World, burn, settle};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::TaskStatus;

/// Scenario 9: an honest digits claim disputed at once by four challengers: two that ran other inputs (honest
/// but wrong: their first-step proofs are refused and they run out of clock), one that lies from step 1000 on
/// (settled by its own, true, proof for the worker) and one that opens and never moves. An honest watcher agrees
/// and stays out. The worker defends all four in parallel, wins each, takes each bond less the burn, and is paid
/// the reward and its stake back exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_challengers_against_one_honest_claim_all_lose() {
    let w = World::start().await;
    let [requester, worker, watcher, bystander] = w.chains(["requester", "worker", "watcher", "bystander"]).await;
    let names = ["wrong-input-a", "wrong-input-b", "liar", "silent"];
    let chains = w.chains(names).await;
    let start = w.snapshot().await;

    let input = w.digits_input(3);
    let (task, mut worker, claim) = w.post_and_serve(&requester, ("worker", worker), &w.digits, &input, None).await;
    let mut watcher = w.challenger("watcher", watcher, &w.digits);
    assert_eq!(watcher.check(claim, &input).await.unwrap(), Verdict::Agrees);

    let traces: [Arc<dyn Trace + Send + Sync>; 4] = [
        w.digits_run(4),
        w.digits_run(9),
        Arc::new(LiesFrom { truth: Run::new(&w.digits, &input).unwrap(), from: 1000 }),
        w.digits_run(4),
    ];
    let mut cs: Vec<TraceChallenger> =
        chains.into_iter().zip(traces).map(|(c, t)| TraceChallenger::new(c, t)).collect();
    for (i, c) in cs.iter_mut().enumerate() {
        assert_eq!(c.open(claim).await.unwrap(), i as u32);
    }
    // One dispute per challenger at a time, and never by the worker itself.
    let twice = cs[0].chain.open_dispute(claim).await.unwrap_err();
    assert!(matches!(twice.canister(), Some(CanisterError::Game(GameError::AlreadyDisputing { dispute: 0 }))));
    let own = worker.chain.open_dispute(claim).await.unwrap_err();
    assert!(matches!(own.canister(), Some(CanisterError::Game(GameError::SelfChallenge))), "{own}");
    let after_open = w.snapshot().await;
    start.assert_change(
        &after_open,
        Change {
            balances: &[
                ("requester", -(REWARD as i128)),
                ("worker", -(STAKE as i128)),
                ("wrong-input-a", -(BOND as i128)),
                ("wrong-input-b", -(BOND as i128)),
                ("liar", -(BOND as i128)),
                ("silent", -(BOND as i128)),
            ],
            locked: (REWARD + STAKE + 4 * BOND) as i128,
            ..Default::default()
        },
    );

    // Everyone but the silent one plays until nothing moves.
    let (active, silent) = cs.split_at_mut(3);
    let [a, b, liar] = active else { unreachable!() };
    settle(&mut [Actor::Worker(&mut worker), Actor::Trace(a), Actor::Trace(b), Actor::Trace(liar)]).await;
    for c in [&*a, &*b] {
        assert!(matches!(c.refused(), Some(CanisterError::Game(GameError::StepProofRejected(_)))), "{:?}", c.refused());
    }
    assert!(liar.refused().is_none());
    assert_eq!(w.outcome(claim, 2).await, Some(Outcome::WorkerWon(Reason::StepProof)), "its true proof");
    assert_eq!(silent[0].moves, 0);
    for d in [0, 1, 3] {
        assert_eq!(w.outcome(claim, d).await, None, "dispute {d} waits for its challenger");
    }

    w.run_out_clock();
    for d in [0, 1, 3] {
        bystander.timeout(claim, d).await.unwrap();
        assert_eq!(w.outcome(claim, d).await, Some(Outcome::WorkerWon(Reason::Timeout)), "dispute {d}");
        let again = bystander.timeout(claim, d).await.unwrap_err();
        assert!(matches!(again.canister(), Some(CanisterError::Game(GameError::DisputeOver))), "{again}");
    }
    w.finalize_after_window(&mut worker, claim).await;
    assert!(worker.settled());
    assert_eq!(w.task_status(task).await, TaskStatus::Done { claim });
    // No second payout: finalizing again is refused and changes nothing.
    let paid = w.snapshot().await;
    let again = bystander.finalize(claim).await.unwrap_err();
    assert!(matches!(again.canister(), Some(CanisterError::Game(GameError::ClaimNotPending))), "{again}");
    assert_eq!(w.snapshot().await, paid);

    start.assert_worker_paid(&paid, Some("requester"), "worker", &names);
}

/// Scenario 10, griefing an honest claim: the worker disputes its own claim from a second identity and stalls
/// it for a whole clock. The honest watcher re-executes, agrees and risks nothing. The dispute ends by timeout
/// for the worker; the worker's two identities together lose exactly the burn of the bond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_challenge_grief_costs_the_worker_the_burn() {
    let w = World::start().await;
    let [requester, worker, sock, watcher] = w.chains(["requester", "worker", "sockpuppet", "watcher"]).await;
    let start = w.snapshot().await;

    let input = w.digits_input(2);
    let (_, mut worker, claim) = w.post_and_serve(&requester, ("worker", worker), &w.digits, &input, None).await;
    let mut watcher = w.challenger("watcher", watcher, &w.digits);
    assert_eq!(watcher.check(claim, &input).await.unwrap(), Verdict::Agrees);
    // The sockpuppet disputes with a made-up trace and goes silent after the step commitment.
    let mut sock =
        TraceChallenger::new(sock, Arc::new(LiesFrom { truth: Run::new(&w.digits, &input).unwrap(), from: 0 }));
    let d = sock.open(claim).await.unwrap();
    settle(&mut [Actor::Worker(&mut worker)]).await;

    // The grief delays finality past the window...
    w.pass_window();
    worker.finalize_next_poll();
    worker.poll().await.unwrap();
    assert_eq!(w.claim_status(claim).await, ClaimStatus::Pending);
    let blocked = watcher.chain.finalize(claim).await.unwrap_err();
    assert!(matches!(blocked.canister(), Some(CanisterError::Game(GameError::DisputesOpen { count: 1 }))));
    // ...by at most the griefer's clock (the window already ran longer than it).
    watcher.chain.timeout(claim, d).await.unwrap();
    assert_eq!(w.outcome(claim, d).await, Some(Outcome::WorkerWon(Reason::Timeout)));
    worker.finalize_next_poll();
    worker.poll().await.unwrap();
    assert!(matches!(w.claim_status(claim).await, ClaimStatus::Final { .. }));

    let end = w.snapshot().await;
    start.assert_worker_paid(&end, Some("requester"), "worker", &["sockpuppet"]);
    let both = |s: &opml_scenarios::Snapshot| s.balances["worker"] + s.balances["sockpuppet"];
    assert_eq!(both(&end), both(&start) + REWARD - burn(BOND), "the grief cost the worker exactly the burn");
}

/// Scenario 10, front-running the challenge of a lie: a lying worker's sockpuppet disputes the lie first and wins
/// it (to take the stake back itself), racing an honest challenger. The honest challenger's dispute is cancelled
/// with its bond refunded; the lie still costs the worker's two identities the burn of the stake, and the task
/// reopens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_challenge_of_a_lie_costs_the_burn_and_refunds_the_honest_challenger() {
    let w = World::start().await;
    let [requester, liar, sock, honest] = w.chains(["requester", "liar", "sockpuppet", "challenger"]).await;
    let start = w.snapshot().await;

    let input = w.digits_input(2);
    let lying = Some(Lie::OtherInput("heldout:3".into()));
    let (task, mut liar, lie) = w.post_and_serve(&requester, ("liar", liar), &w.digits, &input, lying).await;
    let mut sock = w.challenger("sockpuppet", sock, &w.digits);
    let mut honest = w.challenger("challenger", honest, &w.digits);
    assert_eq!(sock.check(lie, &input).await.unwrap(), Verdict::Disputed(0));
    assert_eq!(honest.check(lie, &input).await.unwrap(), Verdict::Disputed(1));
    // The liar cooperates with its sockpuppet only.
    settle(&mut [Actor::Worker(&mut liar), Actor::Challenger(&mut sock)]).await;
    assert_eq!(w.outcome(lie, 0).await, Some(Outcome::ChallengerWon(Reason::StepProof)));
    assert_eq!(w.outcome(lie, 1).await, Some(Outcome::Cancelled));
    honest.poll().await.unwrap();
    assert!(honest.settled());
    assert!(matches!(w.claim_status(lie).await, ClaimStatus::Invalidated { by: 0, .. }));
    assert_eq!(w.task_status(task).await, TaskStatus::Open);

    start.assert_worker_slashed(&w.snapshot().await, Some("requester"), "liar", "sockpuppet");
}
