//! Scenarios 1, 2 and 3: an honest worker unchallenged, an honest worker against a frivolous challenger, and a
//! lying worker caught by an honest challenger (the task then reopens and an honest worker is paid for it).

use opml_bisect::{ClaimStatus, Error as GameError};
use opml_prover::agent::Verdict;
use opml_prover::chain::Chain;
use opml_scenarios::{Change, DEPOSIT, REWARD, STAKE, World};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::{TaskStatus, WithdrawalStatus};

/// Scenario 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_worker_unchallenged_is_paid_after_the_window() {
    let w = World::start().await;
    let (_, requester) = w.party("requester").await;
    let (_, worker) = w.party("worker").await;
    let (_, watcher) = w.party("watcher").await;
    let start = w.snapshot().await;

    let input = w.digits_input(3);
    let task = w.post_task(&requester, &w.digits, &input).await;
    let mut worker = w.worker("worker", worker, &w.digits, None);
    let claim = worker.serve(task, &input).await.unwrap();
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

    w.pass_window();
    worker.finalize_next_poll();
    worker.poll().await.unwrap();
    assert!(worker.settled());
    assert!(matches!(w.claim_status(claim).await, ClaimStatus::Final { .. }));
    assert_eq!(w.task_status(task).await, TaskStatus::Done { claim });
    let paid = w.snapshot().await;
    start.assert_change(
        &paid,
        Change { balances: &[("requester", -(REWARD as i128)), ("worker", REWARD as i128)], ..Default::default() },
    );

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
