//! Scenario 13 of issue 9: malformed input at every game method — unknown ids, wrong caller, wrong turn,
//! wrong root count, oversized proof and output, replayed (stale `seq`) and late moves, early `timeout` and
//! `finalize` — each answered with its typed error and no state change (the canister's stable memory digest on
//! the devnet and the claim's full game state compared before and after). The dispute then ends as it must:
//! the lying worker loses on its clock, balances exact to the unit.

use std::future::Future;

use opml_bisect::agent::Trace;
use opml_bisect::{Error, Move, MoveKind, Outcome, Reason, Role};
use opml_prover::agent::Verdict;
use opml_prover::chain::{Chain, ChainError};
use opml_scenarios::lies::{LyingWorker, WrongStore, truth};
use opml_scenarios::{World, fixture_data};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::{Id, PlayArgs, SubmitClaim};

/// Runs `call` and checks that the canister refused it and that nothing changed: its stable memory and the
/// game state of `claim`. Returns the typed error.
async fn refused<T: std::fmt::Debug>(
    w: &World,
    claim: Id,
    what: &str,
    call: impl Future<Output = Result<T, ChainError>>,
) -> CanisterError {
    let digest = w.devnet.state_digest(w.canister).expect("installed").stable;
    let state = w.operator.get_claim_state(claim).await.expect("claim state");
    let error = match call.await {
        Err(ChainError::Canister { error, .. }) => error,
        other => panic!("{what}: expected a typed refusal, got {other:?}"),
    };
    println!("{what}: {error:?}");
    assert_eq!(w.devnet.state_digest(w.canister).unwrap().stable, digest, "{what}: stable memory changed");
    assert_eq!(w.operator.get_claim_state(claim).await.unwrap(), state, "{what}: the game state changed");
    error
}

fn game(e: CanisterError) -> Error {
    match e {
        CanisterError::Game(g) => g,
        other => panic!("expected a game error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_calls_are_refused_with_typed_errors_and_change_nothing() {
    let w = World::start().await;
    let input = w.fixture_input(&fixture_data());
    let lie = WrongStore::new(truth(&w.fixture, &input), &w.fixture.program, &input.inputs, 2, 0, 0x40);
    let (segments, output, opening) = lie.claimed();
    let [requester, liar, chain, stranger] = w.chains(["requester", "liar", "challenger", "stranger"]).await;
    let task = w.post_task(&requester, &w.fixture, &input).await;
    // A second open task on the same input, for a claim refused at submission (the first will have a claim).
    let open_task = w.post_task(&requester, &w.fixture, &input).await;
    let before = w.snapshot().await;
    let status = lie.final_status();
    let (liar, r) =
        LyingWorker::submit(liar, lie, task, w.fixture.hash, input.root(), segments, status, output.clone(), opening)
            .await;
    let claim = r.expect("the claim passes submission");
    let mut challenger = w.challenger("challenger", chain, &w.fixture);
    assert_eq!(challenger.check(claim, &input).await.unwrap(), Verdict::Disputed(0));
    let (seq, post) = liar.next_move(0).await.unwrap().expect("the worker posts first");
    let play = |claim: Id, dispute: u32, seq: u64, mv: &Move| PlayArgs { claim, dispute, seq, mv: mv.clone() };

    // Unknown ids.
    let e = refused(&w, claim, "play on an unknown claim", stranger.play(play(999, 0, 0, &post))).await;
    assert_eq!(e, CanisterError::UnknownClaim { claim: 999 });
    let e = refused(&w, claim, "play in an unknown dispute", liar.chain.play(play(claim, 7, seq, &post))).await;
    assert_eq!(game(e), Error::UnknownDispute { dispute: 7 });
    let e = refused(&w, claim, "dispute an unknown claim", stranger.open_dispute(999)).await;
    assert_eq!(e, CanisterError::UnknownClaim { claim: 999 });
    let e = refused(&w, claim, "timeout in an unknown dispute", stranger.timeout(claim, 3)).await;
    assert_eq!(game(e), Error::UnknownDispute { dispute: 3 });
    let claim_args = |task: Id, output: Vec<u8>| SubmitClaim {
        task,
        claim: opml_bisect::Claim {
            program: w.fixture.hash,
            input_root: input.root(),
            output_hash: opml_bisect::Hash(opml_vm::io::output_commitment(&output)),
            final_status: status,
            final_root: liar.trace.boundary_root(segments),
            segments,
            segments_root: liar.tree().root(),
        },
        evidence: opml_bisect::ClaimEvidence {
            initial_proof: liar.tree().proof(0).unwrap(),
            final_proof: liar.tree().proof(segments).unwrap(),
            final_opening: liar.trace.final_opening.clone(),
        },
        output,
    };
    let e =
        refused(&w, claim, "claim on an unknown task", stranger.submit_claim(claim_args(999, output.clone()))).await;
    assert_eq!(e, CanisterError::UnknownTask { task: 999 });

    // Wrong caller, wrong turn.
    let e = refused(&w, claim, "a stranger moves", stranger.play(play(claim, 0, seq, &post))).await;
    assert_eq!(game(e), Error::NotAParty);
    let choose = Move::Choose { index: 0 };
    let e = refused(
        &w,
        claim,
        "the challenger moves on the worker's turn",
        challenger.chain.play(play(claim, 0, seq, &choose)),
    )
    .await;
    assert_eq!(game(e), Error::NotYourTurn { mover: Role::Worker });
    let e = refused(&w, claim, "the worker challenges itself", liar.chain.open_dispute(claim)).await;
    assert_eq!(game(e), Error::SelfChallenge);
    let e = refused(&w, claim, "a second dispute by one challenger", challenger.chain.open_dispute(claim)).await;
    assert_eq!(game(e), Error::AlreadyDisputing { dispute: 0 });

    // Wrong shapes: root count, move kind, oversized output.
    let Move::PostRoots { roots, proofs } = &post else { panic!("a PostRoots first") };
    let short = Move::PostRoots { roots: roots[1..].to_vec(), proofs: proofs[1..].to_vec() };
    let e = refused(&w, claim, "one root short", liar.chain.play(play(claim, 0, seq, &short))).await;
    assert_eq!(game(e), Error::WrongRootCount { expected: roots.len() as u32, got: roots.len() as u32 - 1 });
    let unproven = Move::PostRoots { roots: roots.clone(), proofs: Vec::new() };
    let e = refused(&w, claim, "roots without their proofs", liar.chain.play(play(claim, 0, seq, &unproven))).await;
    assert_eq!(game(e), Error::WrongProofCount { expected: roots.len() as u32, got: 0 });
    let proof_now = Move::ProveStep { proof: vec![1; 64] };
    let e = refused(&w, claim, "a proof out of turn", liar.chain.play(play(claim, 0, seq, &proof_now))).await;
    assert_eq!(game(e), Error::WrongMove { expected: MoveKind::PostRoots, got: MoveKind::ProveStep });
    let max = w.config.max_output_bytes;
    let e = refused(
        &w,
        claim,
        "an oversized output",
        stranger.submit_claim(claim_args(open_task, vec![0; max as usize + 1])),
    )
    .await;
    assert!(matches!(&e, CanisterError::OutOfBounds { value, .. } if *value == max + 1), "{e:?}");

    // A legal move, then its replay (the challenger's stale `seq`) and the worker's replay (now out of turn).
    liar.chain.play(play(claim, 0, seq, &post)).await.expect("the worker's post");
    let e = refused(&w, claim, "a stale seq", challenger.chain.play(play(claim, 0, seq, &choose))).await;
    assert_eq!(game(e), Error::StaleMove { expected: seq + 1, got: seq });
    let e = refused(&w, claim, "the post replayed", liar.chain.play(play(claim, 0, seq, &post))).await;
    assert_eq!(game(e), Error::NotYourTurn { mover: Role::Challenger });
    assert_eq!(challenger.poll().await.unwrap(), 1, "the challenger chooses");

    // The worker must now commit its step count: an oversized fixpoint proof, then a step count of 0.
    let (seq, commit) = liar.next_move(0).await.unwrap().expect("the worker's turn");
    let Move::CommitSteps { steps, .. } = &commit else { panic!("CommitSteps expected, got {commit:?}") };
    let huge = Move::CommitSteps { steps: *steps, fixpoint_proof: vec![1; 300 * 1024] };
    let e = refused(&w, claim, "an oversized proof", liar.chain.play(play(claim, 0, seq, &huge))).await;
    assert!(matches!(game(e), Error::StepProofRejected(ref v) if v.reason.contains("exceeds the maximum")));
    let zero = Move::CommitSteps { steps: 0, fixpoint_proof: Vec::new() };
    let e = refused(&w, claim, "zero steps", liar.chain.play(play(claim, 0, seq, &zero))).await;
    assert!(matches!(game(e), Error::StepCountOutOfRange { steps: 0, .. }));

    // Too early: timeout and finalize.
    let e = refused(&w, claim, "an early timeout", stranger.timeout(claim, 0)).await;
    assert!(matches!(game(e), Error::NotTimedOut { .. }));
    let e = refused(&w, claim, "an early finalize", stranger.finalize(claim)).await;
    assert!(matches!(game(e), Error::ChallengeWindowOpen { .. }));

    // Too late: the worker's clock runs out; its (otherwise valid) move is refused, and anyone ends the game.
    w.run_out_clock();
    let e = refused(&w, claim, "a late move", liar.chain.play(play(claim, 0, seq, &commit))).await;
    assert!(matches!(game(e), Error::MoveTooLate { .. }));
    stranger.timeout(claim, 0).await.expect("a public timeout");
    assert_eq!(w.outcome(claim, 0).await, Some(Outcome::ChallengerWon(Reason::Timeout)));
    let e = refused(&w, claim, "a move after the end", liar.chain.play(play(claim, 0, seq, &commit))).await;
    assert_eq!(game(e), Error::DisputeOver);
    let e = refused(&w, claim, "a second timeout", stranger.timeout(claim, 0)).await;
    assert_eq!(game(e), Error::DisputeOver);
    w.pass_window();
    let e = refused(&w, claim, "a dispute after the window", stranger.open_dispute(claim)).await;
    assert_eq!(game(e), Error::ClaimNotPending, "the claim was invalidated");

    before.assert_worker_slashed(&w.snapshot().await, None, "liar", "challenger");
}
