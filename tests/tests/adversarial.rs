//! Scenarios 4, 5, 6, 8 and 14 of issue 9: dishonest workers and challengers against the real agents, through the
//! real verifier canister wasm on the devnet, balances checked to the unit at the end of each.
//!
//! The lies are real executions gone wrong ([`opml_scenarios::lies`]); the guest is the three-segment fixture
//! (or, for 14, two tiny guests written here), so every dispute is a few dozen moves.

use std::sync::Arc;

use opml_bisect::agent::Trace;
use opml_bisect::vm::VmTraceAdapter;
use opml_bisect::{ClaimStatus, Error, FinalStatus, Hash, Move, Outcome, Phase, Reason};
use opml_prover::agent::{Challenger, ModelProgram, TaskInput, Verdict, Worker};
use opml_prover::chain::{Chain, ChainError, IcChain};
use opml_prover::model::Model;
use opml_scenarios::lies::{Dishonest, Forgery, LyingWorker, TwoFaced, WrongBoundary, WrongStore, truth};
use opml_scenarios::{Actor, Snapshot, TraceChallenger, World, fixture_data, settle};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::{Id, PlayArgs, TaskStatus};
use opml_vm::io::Inputs;
use opml_vm::{Status, TrapCode};

/// The canister's game error in `r`, or a panic saying what came instead.
fn game_error<T: std::fmt::Debug>(r: Result<T, ChainError>) -> Error {
    match r {
        Err(ChainError::Canister { error: CanisterError::Game(e), .. }) => e,
        other => panic!("expected a typed game error, got {other:?}"),
    }
}

/// Polls a lying worker and an honest challenger agent until neither moves; returns the moves made.
async fn duel(liar: &mut dyn Dishonest, challenger: &mut Challenger<IcChain>) -> u32 {
    settle(&mut [Actor::Liar(liar), Actor::Challenger(challenger)]).await
}

/// Where dispute `d` on `claim` ended: asserts it was resolved as `outcome` at its one-step proof; returns the
/// proven step's segment and index and the worker's root after it.
async fn proven_step(w: &World, claim: Id, d: u32, outcome: Outcome) -> (u64, u64, Hash) {
    let view = w.operator.get_dispute(claim, d).await.unwrap();
    assert_eq!(view.resolution.map(|r| r.outcome), Some(outcome), "dispute {d} on claim {claim}");
    match view.phase {
        Phase::ProveStep { segment, step, post, .. } => (segment, step, post),
        other => panic!("dispute {d} on claim {claim} ended in {other:?}"),
    }
}

/// The parties of a one-claim scenario and its task, posted by "requester" on `input`.
struct Stage {
    liar: IcChain,
    challenger: IcChain,
    task: Id,
}

async fn stage(w: &World, program: &ModelProgram, input: &TaskInput) -> Stage {
    let [requester, liar, challenger] = w.chains(["requester", "liar", "challenger"]).await;
    let task = w.post_task(&requester, program, input).await;
    Stage { liar, challenger, task }
}

/// Submits `lie` (its segments, output and final opening) as the liar's claim on the stage's task.
async fn submit<T: Trace>(
    s: Stage,
    program: &ModelProgram,
    input: &TaskInput,
    lie: T,
    (segments, output, opening): (u64, Vec<u8>, Vec<u8>),
) -> (LyingWorker<T>, IcChain) {
    // Every lie submitted this way is a halted run (the trapped-run scenarios submit their own).
    let (liar, r) = LyingWorker::submit(
        s.liar,
        lie,
        s.task,
        program.hash,
        input.root(),
        segments,
        FinalStatus::Halted,
        output,
        opening,
    )
    .await;
    r.expect("the lying claim passes submission");
    (liar, s.challenger)
}

/// A fixture task on `input` staged, `lie` submitted as the liar's claim and disputed by the honest "challenger"
/// agent (dispute 0). Returns the snapshot taken before the claim, the task, the liar and the challenger.
async fn disputed<T: Trace>(
    w: &World,
    input: &TaskInput,
    lie: T,
    claimed: (u64, Vec<u8>, Vec<u8>),
) -> (Snapshot, Id, LyingWorker<T>, Challenger<IcChain>) {
    let st = stage(w, &w.fixture, input).await;
    let task = st.task;
    let before = w.snapshot().await;
    let (liar, chain) = submit(st, &w.fixture, input, lie, claimed).await;
    let mut challenger = w.challenger("challenger", chain, &w.fixture);
    assert_eq!(challenger.check(liar.claim(), input).await.unwrap(), Verdict::Disputed(0));
    (before, task, liar, challenger)
}

/// Scenario 5: the worker writes one wrong value to memory (an `i64.store` of the last segment). The bisection
/// comes down to exactly that instruction and the honest challenger's one-step proof wins.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_store_is_found_at_its_instruction_and_the_proof_wins() {
    let w = World::start().await;
    let input = w.fixture_input(&fixture_data());
    let truth = truth(&w.fixture, &input);
    let lie = WrongStore::new(truth.clone(), &w.fixture.program, &input.inputs, 2, 0, 0x40);
    assert_eq!(lie.status, Status::Halted);
    assert_ne!(lie.output, truth.run().output, "the wrong store reaches the output");
    let (segment, step) = (lie.segment, lie.step);
    let claimed = lie.claimed();
    let (before, task, mut liar, mut challenger) = disputed(&w, &input, lie, claimed).await;
    let claim = liar.claim();
    let moves = duel(&mut liar, &mut challenger).await;
    let (s, j, _) = proven_step(&w, claim, 0, Outcome::ChallengerWon(Reason::StepProof)).await;
    assert_eq!((s, j), (segment, step), "the bisection ends at the wrong store (after {moves} moves)");
    assert!(liar.refused().is_none(), "every move of the liar was a legal one");
    assert_eq!(w.claim_status(claim).await, ClaimStatus::Invalidated { by: 0, at_ns: resolved_at(&w, claim).await });
    assert_eq!(w.task_status(task).await, TaskStatus::Open, "the task reopens");
    before.assert_worker_slashed(&w.snapshot().await, None, "liar", "challenger");
}

async fn resolved_at(w: &World, claim: Id) -> u64 {
    w.operator.get_dispute(claim, 0).await.unwrap().resolution.expect("resolved").at_ns
}

/// Scenario 4: the worker commits one wrong segment-boundary root (a real state, one memory byte off) but the
/// true output and final root. The honest challenger agent leaves it alone (the result is right: nothing to
/// dispute, and the requester gets the true output); a watcher who disputes it anyway with the true trace wins,
/// because the wrong root is posted and cannot be reached from the root before it.
#[tokio::test(flavor = "multi_thread")]
async fn inconsistent_trace_with_the_right_output_is_left_alone_and_loses_if_disputed() {
    let w = World::start().await;
    let input = w.fixture_input(&fixture_data());
    let truth = truth(&w.fixture, &input);
    // Byte 512 is never read by the fixture: the lie is invisible in the output.
    let lie = WrongBoundary::new(truth.clone(), &w.fixture.program, &input.inputs, 2, 512, 0x01);
    let fake = lie.fake_root();
    let claimed = (truth.segments(), truth.run().output.clone(), truth.final_opening().unwrap());
    let st = stage(&w, &w.fixture, &input).await;
    let (_, watcher) = w.party("watcher").await;
    let before = w.snapshot().await;
    let (mut liar, chain) = submit(st, &w.fixture, &input, lie, claimed).await;
    let claim = liar.claim();
    assert_eq!(w.operator.get_claim(claim).await.unwrap().claim.final_root.0, truth.run().final_root());
    let mut challenger = w.challenger("challenger", chain, &w.fixture);
    assert_eq!(challenger.check(claim, &input).await.unwrap(), Verdict::Agrees, "the honest agent sees a right result");

    let mut watcher = TraceChallenger::new(watcher, Arc::new(VmTraceAdapter::new(truth.clone())));
    assert_eq!(watcher.open(claim).await.unwrap(), 0);
    settle(&mut [Actor::Liar(&mut liar), Actor::Trace(&mut watcher)]).await;
    let (segment, _, post) = proven_step(&w, claim, 0, Outcome::ChallengerWon(Reason::StepProof)).await;
    assert_eq!(segment, 1, "the dispute is over the segment that ends at the wrong boundary");
    assert_eq!(post, fake, "and its last step, which the liar says reaches the wrong root");
    before.assert_worker_slashed(&w.snapshot().await, None, "liar", "watcher");
}

/// Scenario 6, claim-time equivocation: in the segment phase the liar posts a root that is not the one it
/// committed (the true one, with the committed root's Merkle proof). The canister refuses it with a typed
/// error and changes nothing; the liar, unable to post anything else, loses on its clock.
#[tokio::test(flavor = "multi_thread")]
async fn root_contradicting_the_commitment_is_refused_and_the_liar_times_out() {
    let w = World::start().await;
    let input = w.fixture_input(&fixture_data());
    let truth = truth(&w.fixture, &input);
    let lie = WrongStore::new(truth.clone(), &w.fixture.program, &input.inputs, 1, 0, 0x10);
    let claimed = lie.claimed();
    let (before, _, liar, mut challenger) = disputed(&w, &input, lie, claimed).await;
    let claim = liar.claim();

    let (seq, mv) = liar.next_move(0).await.unwrap().expect("the liar posts first");
    let Move::PostRoots { mut roots, proofs } = mv else { panic!("a PostRoots first") };
    // Boundary 2 is the first the wrong store (in segment 1) changed: post the true root there instead.
    let points = w.operator.get_dispute(claim, 0).await.unwrap().points_to_post;
    let i = points.iter().position(|&p| p == 2).expect("boundary 2 is posted in the first round (arity 8)");
    assert_ne!(roots[i].0, truth.boundary_root(2));
    roots[i] = Hash(truth.boundary_root(2));
    let digest = w.devnet.state_digest(w.canister).unwrap();
    let view = w.operator.get_dispute(claim, 0).await.unwrap();
    let mv = Move::PostRoots { roots, proofs };
    let r = liar.chain.play(PlayArgs { claim, dispute: 0, seq, mv }).await;
    assert_eq!(game_error(r), Error::BoundaryProofInvalid { index: 2 });
    assert_eq!(w.devnet.state_digest(w.canister).unwrap().stable, digest.stable, "a refused move changes nothing");
    assert_eq!(w.operator.get_dispute(claim, 0).await.unwrap(), view);

    // The liar has nothing else to post; its clock runs out and the challenger ends the game publicly.
    w.run_out_clock();
    assert_eq!(challenger.poll().await.unwrap(), 0, "nothing to play while the worker is to move");
    challenger.chain.timeout(claim, 0).await.expect("timeout");
    assert_eq!(w.outcome(claim, 0).await, Some(Outcome::ChallengerWon(Reason::Timeout)));
    before.assert_worker_slashed(&w.snapshot().await, None, "liar", "challenger");
}

/// Scenario 6, step-phase equivocation: the liar commits a wrong segment but, once the bisection is inside it,
/// posts the true step roots, contradicting the wrong boundary it committed (and the interval ends the earlier
/// rounds fixed). The honest challenger agrees with every posted root, is led to the segment's last step, and
/// its proof of that step shows the committed boundary is not reached.
#[tokio::test(flavor = "multi_thread")]
async fn step_roots_contradicting_the_committed_boundary_lose_at_the_last_step() {
    let w = World::start().await;
    let input = w.fixture_input(&fixture_data());
    let truth = truth(&w.fixture, &input);
    let committed = WrongStore::new(truth.clone(), &w.fixture.program, &input.inputs, 2, 0, 0x40);
    let claimed = committed.claimed();
    let (segment, wrong_step, steps) = (committed.segment, committed.step, committed.step_count(2));
    assert_eq!(steps, truth.step_count(2).unwrap(), "the wrong value does not change the control flow");
    let lie = TwoFaced { committed, posted: VmTraceAdapter::new(truth.clone()) };
    let (before, _, mut liar, mut challenger) = disputed(&w, &input, lie, claimed).await;
    let claim = liar.claim();
    duel(&mut liar, &mut challenger).await;
    let (s, step, _) = proven_step(&w, claim, 0, Outcome::ChallengerWon(Reason::StepProof)).await;
    assert_eq!((s, step), (segment, steps - 1), "led to the last step, not to the wrong store at {wrong_step}");
    before.assert_worker_slashed(&w.snapshot().await, None, "liar", "challenger");
}

/// Scenario 8: forged one-step proofs. An honest worker agent's claim is disputed by five challengers who each
/// believe a run with one wrong store; each plays the bisection down to that store and then submits the true
/// proof forged one way ([`Forgery`]). The canister refuses every forgery with a typed error and no state
/// change; every forger then loses on its clock, and the claim finalizes with the worker paid.
#[tokio::test(flavor = "multi_thread")]
async fn forged_step_proofs_are_refused_and_every_forger_loses() {
    let w = World::start().await;
    let input = w.fixture_input(&fixture_data());
    let truth = truth(&w.fixture, &input);
    let belief = Arc::new(WrongStore::new(truth.clone(), &w.fixture.program, &input.inputs, 2, 0, 0x40));
    let (segment, step) = (belief.segment, belief.step);
    let honest = truth.step_proof(segment, step).unwrap().encode();
    let next = truth.step_proof(segment, step + 1).unwrap().encode();
    let [requester, chain] = w.chains(["requester", "worker"]).await;
    let names = ["forger-leaf", "forger-sibling", "forger-stack", "forger-instr", "forger-step"];
    let forgers = w.chains(names).await;
    let task = w.post_task(&requester, &w.fixture, &input).await;
    let before = w.snapshot().await;
    let mut worker: Worker<IcChain> = w.worker("worker", chain, &w.fixture, None);
    let claim = worker.serve(task, &input).await.unwrap();

    for ((name, kind), chain) in names.into_iter().zip(Forgery::ALL).zip(forgers) {
        let mut forger = TraceChallenger::new(chain, belief.clone());
        let d = forger.open(claim).await.unwrap();
        // Play the bisection (the worker defending, the forger choosing) until the forger must prove a step.
        loop {
            let view = w.operator.get_dispute(claim, d).await.unwrap();
            if let Phase::ProveStep { segment: s, step: j, .. } = view.phase {
                assert_eq!((s, j), (segment, step), "{name}: the bisection reaches the store it believes wrong");
                break;
            }
            let made = worker.poll().await.unwrap() + forger.poll().await.unwrap();
            assert!(made > 0, "{name}: the game stalled in {:?}", view.phase);
        }
        let view = w.operator.get_dispute(claim, d).await.unwrap();
        let digest = w.devnet.state_digest(w.canister).unwrap();
        let proof = kind.forge(&honest, &next);
        let mv = Move::ProveStep { proof };
        let r = forger.chain.play(PlayArgs { claim, dispute: d, seq: view.seq, mv }).await;
        // Each forgery is caught by the check it breaks, not by some other one.
        let why = match kind {
            Forgery::MemoryLeaf | Forgery::MerkleSibling => "invalid opening: page",
            Forgery::StackValue => "invalid opening: operands",
            Forgery::Instruction => "invalid opening: instruction",
            Forgery::OtherStep => "does not match the pre-state root",
        };
        match game_error(r) {
            Error::StepProofRejected(e) => assert!(e.reason.contains(why), "{name} ({kind:?}): refused as {e:?}"),
            other => panic!("{name} ({kind:?}): expected StepProofRejected, got {other:?}"),
        }
        assert_eq!(w.devnet.state_digest(w.canister).unwrap().stable, digest.stable, "{name}: nothing changed");
        assert_eq!(w.operator.get_dispute(claim, d).await.unwrap(), view, "{name}: the dispute is as it was");
    }

    // The forgers have nothing valid that helps them; their clocks run out and anyone ends their disputes.
    w.run_out_clock();
    for d in 0..names.len() as u32 {
        worker.chain.timeout(claim, d).await.expect("timeout");
        assert_eq!(w.outcome(claim, d).await, Some(Outcome::WorkerWon(Reason::Timeout)), "dispute {d}");
    }
    w.finalize_after_window(&mut worker, claim).await;
    before.assert_worker_paid(&w.snapshot().await, None, "worker", &names);
}

/// A two-segment guest that traps: segment 0 copies blob 0's first byte into a divisor at address 16 (an
/// `i32.store8` over the data segment's 0xff); segment 1 divides 1000 by it and writes the quotient. Blob `[0]`:
/// segment 1 traps with an integer division by zero.
const DIVIDE_WAT: &str = r#"(module
  (import "opml" "input_read" (func $read (param i32 i64 i32 i32) (result i32)))
  (import "opml" "output_write" (func $write (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 16) "\ff")
  (global $seg (mut i32) (i32.const 0))
  (func (export "opml_step") (result i32)
    (global.set $seg (i32.add (global.get $seg) (i32.const 1)))
    (if (i32.eq (global.get $seg) (i32.const 1)) (then
      (drop (call $read (i32.const 0) (i64.const 0) (i32.const 32) (i32.const 1)))
      (i32.store8 (i32.const 16) (i32.load8_u (i32.const 32)))
      (return (i32.const 1))))
    (i32.store (i32.const 0) (i32.div_u (i32.const 1000) (i32.load8_u (i32.const 16))))
    (call $write (i32.const 0) (i32.const 4))
    (i32.const 0)))"#;

/// A two-segment guest that exhausts the call-depth limit: segment 0 stores blob 0's first byte at address 16
/// (as above); segment 1 recurses 1000 times that byte deep and writes the depth reached. Blob `[100]`: 100 000
/// frames, past the stack meter's limit (2^19 slots, at least 64 a frame: at most 8192 frames), so segment 1
/// traps.
const RECURSE_WAT: &str = r#"(module
  (import "opml" "input_read" (func $read (param i32 i64 i32 i32) (result i32)))
  (import "opml" "output_write" (func $write (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 16) "\ff")
  (global $seg (mut i32) (i32.const 0))
  (func $rec (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $rec (i32.sub (local.get $n) (i32.const 1)))))))
  (func (export "opml_step") (result i32)
    (global.set $seg (i32.add (global.get $seg) (i32.const 1)))
    (if (i32.eq (global.get $seg) (i32.const 1)) (then
      (drop (call $read (i32.const 0) (i64.const 0) (i32.const 32) (i32.const 1)))
      (i32.store8 (i32.const 16) (i32.load8_u (i32.const 32)))
      (return (i32.const 1))))
    (i32.store (i32.const 0) (call $rec (i32.mul (i32.load8_u (i32.const 16)) (i32.const 1000))))
    (call $write (i32.const 0) (i32.const 4))
    (i32.const 0)))"#;

/// `wat` as a model the agents can serve, registered on the canister.
async fn register(w: &World, name: &'static str, wat: &str) -> Arc<ModelProgram> {
    let wasm: &'static [u8] = Box::leak(wat::parse_str(wat).expect("valid text").into_boxed_slice());
    let model: &'static Model = Box::leak(Box::new(Model { name, wasm }));
    let program = Arc::new(ModelProgram::new(model).expect("a valid guest"));
    assert_eq!(w.operator.register_program(wasm).await.unwrap(), program.hash);
    program
}

/// Scenario 14, the liar's side: for each of a trapping guest and a limit-exhausting one, the worker claims the
/// guest halted with an output: its run writes a wrong byte (the divisor, or the recursion depth) so the trap is
/// avoided. The honest challenger agent re-executes (its run ends in the trap), disputes, and wins by proof at
/// that store.
#[tokio::test(flavor = "multi_thread")]
async fn lying_about_a_trapping_guest_loses() {
    let w = World::start().await;
    // The wrong write is the first memory write that changes a byte: for `divide` the `i32.store8` of the divisor
    // (the input read writes a 0 over a 0), for `recurse` the input read itself (`input_read` writing 100 ^ 0x60
    // = 4 at address 32, which the store then copies).
    for (name, wat, blob, mask, trap, address) in [
        ("divide", DIVIDE_WAT, 0u8, 0x07u8, TrapCode::IntegerDivideByZero, 16),
        // Stack exhaustion is raised by the metering the loader compiles into every guest (`opml_vm::meter`): an
        // `unreachable` in the prologue of the frame past the limit, the same in both engines.
        ("recurse", RECURSE_WAT, 100, 0x60, TrapCode::Unreachable, 32),
    ] {
        let program = register(&w, name, wat).await;
        let input = TaskInput { model: program.model, inputs: Arc::new(Inputs::new(vec![vec![blob]])) };
        let truth = truth(&program, &input);
        assert_eq!(truth.run().status, Status::Trapped(trap), "{name}: the true run traps");
        let lie = WrongStore::new(truth.clone(), &program.program, &input.inputs, 0, 0, mask);
        assert_eq!((lie.status, lie.address), (Status::Halted, address), "{name}: the wrong write avoids the trap");
        let claimed = lie.claimed();
        let step = lie.step;
        let (l, c) = (format!("{name}-liar"), format!("{name}-challenger"));
        let [requester, liar, chain] = w.chains([&format!("{name}-requester"), &l, &c]).await;
        let task = w.post_task(&requester, &program, &input).await;
        let before = w.snapshot().await;
        let status = lie.final_status();
        assert_eq!(status, FinalStatus::Halted, "{name}: the lie claims a halt");
        let (mut liar, r) =
            LyingWorker::submit(liar, lie, task, program.hash, input.root(), claimed.0, status, claimed.1, claimed.2)
                .await;
        let claim = r.expect("the lie passes submission");
        let mut challenger = w.challenger("challenger", chain, &program);
        assert_eq!(challenger.check(claim, &input).await.unwrap(), Verdict::Disputed(0), "{name}");
        duel(&mut liar, &mut challenger).await;
        let (s, j, _) = proven_step(&w, claim, 0, Outcome::ChallengerWon(Reason::StepProof)).await;
        assert_eq!((s, j), (0, step), "{name}");
        before.assert_worker_slashed(&w.snapshot().await, None, &l, &c);
    }
}

/// Scenario 14, the honest worker's side: a worker claims a trapping run as it is. A trap is an ordinary final
/// state with its own root: the claim states it (status and trap code, checked against the final root's opening
/// at submission), an honest challenger agrees, and the claim finalizes with the worker paid.
#[tokio::test(flavor = "multi_thread")]
async fn honest_claim_of_a_trapping_run_is_accepted() {
    let w = World::start().await;
    let program = register(&w, "divide", DIVIDE_WAT).await;
    let input = TaskInput { model: program.model, inputs: Arc::new(Inputs::new(vec![vec![0]])) };
    let [requester, chain, watcher] = w.chains(["requester", "worker", "challenger"]).await;
    let task = w.post_task(&requester, &program, &input).await;
    let before = w.snapshot().await;
    let mut worker = w.worker("worker", chain, &program, None);
    let claim = worker.serve(task, &input).await.expect("an honest claim about a trapped run is accepted");
    let view = w.operator.get_claim(claim).await.unwrap();
    let code = u32::from(TrapCode::IntegerDivideByZero as u8);
    assert_eq!(view.claim.final_status, FinalStatus::Trapped { code }, "the claim view shows the trap");
    assert_eq!(view.output, Vec::<u8>::new(), "the guest wrote nothing before its trap");
    let text = opml_prover::status::claim_text(&w.operator, claim).await.unwrap();
    assert!(text.contains("run trapped: integer divide by zero (code 7)"), "{text}");
    let mut challenger = w.challenger("challenger", watcher, &program);
    assert_eq!(challenger.check(claim, &input).await.unwrap(), Verdict::Agrees, "re-execution reaches the same trap");
    w.finalize_after_window(&mut worker, claim).await;
    assert!(matches!(w.task_status(task).await, TaskStatus::Done { claim: c } if c == claim));
    before.assert_worker_paid(&w.snapshot().await, None, "worker", &[]);
}

/// A two-segment guest with three endings: segment 0 copies blob 0's first byte into a divisor at address 16 (as
/// `divide`); segment 1 writes "pre!" to the output, then traps on `unreachable` if the divisor is 2, else divides
/// 1000 by it (trapping on 0) and writes the quotient. Blob `[0]`: an integer division by zero after "pre!";
/// `[5]`: halts with "pre!" and 200.
const ENDINGS_WAT: &str = r#"(module
  (import "opml" "input_read" (func $read (param i32 i64 i32 i32) (result i32)))
  (import "opml" "output_write" (func $write (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "pre!")
  (data (i32.const 16) "\ff")
  (global $seg (mut i32) (i32.const 0))
  (func (export "opml_step") (result i32)
    (global.set $seg (i32.add (global.get $seg) (i32.const 1)))
    (if (i32.eq (global.get $seg) (i32.const 1)) (then
      (drop (call $read (i32.const 0) (i64.const 0) (i32.const 32) (i32.const 1)))
      (i32.store8 (i32.const 16) (i32.load8_u (i32.const 32)))
      (return (i32.const 1))))
    (call $write (i32.const 0) (i32.const 4))
    (if (i32.eq (i32.load8_u (i32.const 16)) (i32.const 2)) (then unreachable))
    (i32.store (i32.const 0) (i32.div_u (i32.const 1000) (i32.load8_u (i32.const 16))))
    (call $write (i32.const 0) (i32.const 4))
    (i32.const 0)))"#;

/// Scenario 14, a trap claim disputed: an honest worker agent claims a run that traps (division by zero, after
/// writing "pre!"); two lying challengers dispute it, one believing the run halts with an output, the other that
/// it traps another way (`unreachable`). Each belief is a real run with one wrong write (the divisor); each
/// bisection comes down to that write, the challenger's own proof of it shows the worker's root, and the worker
/// wins both disputes by proof, then finalizes: each challenger loses its bond.
#[tokio::test(flavor = "multi_thread")]
async fn challengers_disputing_a_true_trap_claim_lose_their_bonds() {
    let w = World::start().await;
    let program = register(&w, "endings", ENDINGS_WAT).await;
    let input = TaskInput { model: program.model, inputs: Arc::new(Inputs::new(vec![vec![0]])) };
    let truth = truth(&program, &input);
    assert_eq!(truth.run().status, Status::Trapped(TrapCode::IntegerDivideByZero));
    assert_eq!(truth.run().output, b"pre!", "the trapped run's output is what it wrote before the trap");
    // The divisor's store (0 over 0xff at address 16) is the first write that changes a byte.
    let halts = Arc::new(WrongStore::new(truth.clone(), &program.program, &input.inputs, 0, 0, 0x05));
    assert_eq!((halts.status, halts.address), (Status::Halted, 16));
    assert_eq!(halts.output, [b"pre!".as_slice(), &200u32.to_le_bytes()].concat());
    let other_trap = Arc::new(WrongStore::new(truth.clone(), &program.program, &input.inputs, 0, 0, 0x02));
    assert_eq!(other_trap.status, Status::Trapped(TrapCode::Unreachable));
    assert_eq!(other_trap.output, b"pre!", "the same output, another trap");
    assert_ne!(other_trap.boundary_root(2), Hash(truth.run().final_root()));
    let step = halts.step;

    let losers = ["believes-halt", "believes-unreachable"];
    let [requester, chain, c_halts, c_trap] = w.chains(["requester", "worker", losers[0], losers[1]]).await;
    let task = w.post_task(&requester, &program, &input).await;
    let before = w.snapshot().await;
    let mut worker = w.worker("worker", chain, &program, None);
    let claim = worker.serve(task, &input).await.expect("the trap claim is accepted");
    let code = u32::from(TrapCode::IntegerDivideByZero as u8);
    assert_eq!(w.operator.get_claim(claim).await.unwrap().claim.final_status, FinalStatus::Trapped { code });
    let mut challengers = [TraceChallenger::new(c_halts, halts), TraceChallenger::new(c_trap, other_trap)];
    for (i, c) in challengers.iter_mut().enumerate() {
        assert_eq!(c.open(claim).await.unwrap(), i as u32);
    }
    let [halt, trap] = &mut challengers;
    settle(&mut [Actor::Worker(&mut worker), Actor::Trace(halt), Actor::Trace(trap)]).await;
    for d in 0..2u32 {
        let (s, j, _) = proven_step(&w, claim, d, Outcome::WorkerWon(Reason::StepProof)).await;
        assert_eq!((s, j), (0, step), "dispute {d}");
    }
    assert!(challengers.iter().all(|c| c.refused().is_none()), "every challenger move was legal");
    w.finalize_after_window(&mut worker, claim).await;
    before.assert_worker_paid(&w.snapshot().await, None, "worker", &losers);
}

/// Scenario 14, a false trap claim: the task's run halts (blob `[5]`), but the liar claims it traps. Its run
/// writes a wrong input byte (5 ^ 5 = 0, the divisor), so it really reaches a division by zero. Claiming
/// "halted" over that trapped final root is refused at submission with a typed error; claiming the trap
/// passes, the honest challenger agent's re-execution halts, it disputes and wins by proof at the wrong write.
#[tokio::test(flavor = "multi_thread")]
async fn claiming_a_trap_for_a_run_that_halts_loses() {
    let w = World::start().await;
    let program = register(&w, "endings", ENDINGS_WAT).await;
    let input = TaskInput { model: program.model, inputs: Arc::new(Inputs::new(vec![vec![5]])) };
    let truth = truth(&program, &input);
    assert_eq!(truth.run().status, Status::Halted);
    // The input read (5 over 0 at address 32) is the first write that changes a byte.
    let lie = || WrongStore::new(truth.clone(), &program.program, &input.inputs, 0, 0, 0x05);
    let l = lie();
    assert_eq!((l.status, l.address), (Status::Trapped(TrapCode::IntegerDivideByZero), 32));
    let code = u32::from(TrapCode::IntegerDivideByZero as u8);
    assert_eq!(l.final_status(), FinalStatus::Trapped { code });
    let (step, segments, output, opening) = (l.step, l.segments(), l.output.clone(), l.final_opening.clone());
    assert_eq!(output, b"pre!");

    let [requester, liar, chain] = w.chains(["requester", "liar", "challenger"]).await;
    let task = w.post_task(&requester, &program, &input).await;
    let before = w.snapshot().await;
    // The trapped final root, claimed as a halt: its opening says otherwise.
    let digest = w.devnet.state_digest(w.canister).unwrap();
    let (liar, r) = LyingWorker::submit(
        liar,
        lie(),
        task,
        program.hash,
        input.root(),
        segments,
        FinalStatus::Halted,
        output.clone(),
        opening.clone(),
    )
    .await;
    let opened = FinalStatus::Trapped { code };
    assert_eq!(game_error(r), Error::FinalStatusMismatch { claimed: FinalStatus::Halted, opened });
    assert_eq!(w.devnet.state_digest(w.canister).unwrap().stable, digest.stable, "a refused claim changes nothing");
    // The same lie, stating its trap.
    let (mut liar, r) = LyingWorker::submit(
        liar.chain,
        l,
        task,
        program.hash,
        input.root(),
        segments,
        FinalStatus::Trapped { code },
        output,
        opening,
    )
    .await;
    let claim = r.expect("a trap claim with a matching opening passes submission");
    let text = opml_prover::status::claim_text(&w.operator, claim).await.unwrap();
    assert!(text.contains("run trapped: integer divide by zero (code 7)"), "{text}");
    let mut challenger = w.challenger("challenger", chain, &program);
    assert_eq!(challenger.check(claim, &input).await.unwrap(), Verdict::Disputed(0), "the true run halts");
    duel(&mut liar, &mut challenger).await;
    let (s, j, _) = proven_step(&w, claim, 0, Outcome::ChallengerWon(Reason::StepProof)).await;
    assert_eq!((s, j), (0, step));
    assert_eq!(w.task_status(task).await, TaskStatus::Open, "the task reopens");
    before.assert_worker_slashed(&w.snapshot().await, None, "liar", "challenger");
}
