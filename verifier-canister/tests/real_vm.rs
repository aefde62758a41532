//! The canister core with the real VM: a guest module registered through the chunked upload, a task, claims and
//! whole disputes played by the game's agents over real traces (fast engine boundaries, stepper steps and
//! one-step proofs), every move verified by `opml-vm`'s `no_std` verifier exactly as in the canister.

mod common;

use opml_guests::fixtures::THREE_SEGMENTS_HASH;
use std::sync::Arc;

use common::{BOND, STAKE, check_conservation, fund, principal, sha3, user};
use ic_stable_structures::DefaultMemoryImpl;
use opml_bisect::agent::{self, Trace};
use opml_bisect::{ClaimStatus, Hash, MerkleTree, Outcome, Reason, Role};
use opml_verifier_canister::core::Core;
use opml_verifier_canister::types::*;
use opml_verifier_canister::vm_adapter::{OpmlVm, program_hash};
use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::trace::GuestTrace;
use opml_vm::{Limits, Status};

type Real = Core<DefaultMemoryImpl, OpmlVm>;

/// A party's view of a run: a real trace, optionally claiming another `R_0` (a worker that ran other inputs but
/// anchors its commitment at the task's true initial root, so its claim passes submission).
struct View {
    t: GuestTrace,
    r0: Option<Hash>,
}

impl Trace for View {
    fn boundary_root(&self, i: u64) -> Hash {
        match self.r0 {
            Some(r) if i == 0 => r,
            _ => Hash(self.t.boundary_root(i)),
        }
    }
    fn step_count(&self, s: u64) -> u64 {
        self.t.step_count(s).unwrap()
    }
    fn step_root(&self, s: u64, j: u64) -> Hash {
        match self.r0 {
            Some(r) if s == 0 && j == 0 => r,
            _ => Hash(self.t.step_root(s, j).unwrap()),
        }
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        self.t.step_proof(s, j).unwrap().encode()
    }
}

fn trace(wasm: &[u8], input: &[u8]) -> (GuestTrace, Hash) {
    let inputs = Arc::new(Inputs::new(vec![input.to_vec()]));
    let root = Hash(inputs.root());
    let t = GuestTrace::new(GuestProgram::new(wasm).unwrap(), inputs, Limits::default()).unwrap();
    assert_eq!(t.run().status, Status::Halted);
    (t, root)
}

struct Setup {
    c: Real,
    program: Hash,
    task: Id,
    input_root: Hash,
    truth: View,
    wasm: Vec<u8>,
}

fn setup() -> Setup {
    let mut config = common::config();
    config.arity = 3;
    let mut c = Real::init(DefaultMemoryImpl::default(), OpmlVm, config).unwrap();
    let wasm = wat::parse_str(THREE_SEGMENTS_HASH).unwrap();
    let op = common::operator();
    let up = c.begin_upload(&op, BeginUpload { wasm_sha3: sha3(&wasm), size: wasm.len() as u64 }, 0).unwrap();
    let mut offset = 0;
    for part in wasm.chunks(100) {
        offset = c.upload_chunk(&op, up, offset, part).unwrap();
    }
    let program = c.finish_upload(&op, up, 0).unwrap().registered().unwrap();
    // The canister's program hash is the one agents compute from the same module (`opml_bisect::vm`).
    let g = GuestProgram::new(&wasm).unwrap();
    let header = g.initial_header(Limits::default()).unwrap();
    assert_eq!(program, program_hash(&g.commitment(Limits::default()).unwrap(), &header));
    let agents = opml_bisect::vm::VmVerifier::new().register_guest(&g, Limits::default()).unwrap();
    assert_eq!(program, agents);
    // Registered over several calls (a few ops each), it is the same program.
    let mut staged = Real::init(DefaultMemoryImpl::default(), OpmlVm, common::config()).unwrap();
    staged.set_finish_upload_budget(7);
    let up = staged.begin_upload(&op, BeginUpload { wasm_sha3: sha3(&wasm), size: wasm.len() as u64 }, 0).unwrap();
    staged.upload_chunk(&op, up, 0, &wasm).unwrap();
    let mut steps = Vec::new();
    let again = loop {
        match staged.finish_upload(&op, up, 0).unwrap() {
            RegistrationStep::Registered { program } => break program,
            step => steps.push(step),
        }
    };
    assert_eq!(again, program);
    // One call validates and rewrites the module, the next compiles it, then 7 ops per call.
    let RegistrationStep::Committing { total, .. } = steps[1] else { panic!("{steps:?}") };
    let mut want = vec![RegistrationStep::Rewritten];
    want.extend((0..total).step_by(7).map(|done| RegistrationStep::Committing { done, total }));
    assert_eq!(steps, want);
    let (t, input_root) = trace(&wasm, b"sixteen bytes!!!");
    fund(&mut c, 1, 500);
    let spec = PostTask { input_root, ..common::task_spec(program, 500) };
    let task = c.post_task(&user(1), spec, 0).unwrap();
    Setup { c, program, task, input_root, truth: View { t, r0: None }, wasm }
}

fn submit(s: &mut Setup, who: u8, v: &View, now: u64) -> (Id, MerkleTree) {
    let run = v.t.run();
    let (claim, evidence, tree) = agent::make_claim(
        v,
        s.program,
        s.input_root,
        Hash(run.output_hash),
        opml_bisect::vm::status_of(run.status).expect("a run ends in a final state"),
        run.segments(),
        v.t.final_opening().unwrap(),
    );
    let args = SubmitClaim { task: s.task, claim, evidence, output: run.output.clone() };
    (s.c.submit_claim(&user(who), args, now).unwrap(), tree)
}

/// Plays dispute `d` to its end (or until the mover's agent has no valid move); returns the moves made.
fn play(c: &mut Real, claim: Id, d: u32, worker: (&View, &MerkleTree), challenger: &View, now: &mut u64) -> u32 {
    let mut moves = 0;
    loop {
        let state = c.claim_state(claim).unwrap();
        let dispute = state.dispute(d).unwrap();
        let Some(role) = dispute.mover() else { return moves };
        let mv = match role {
            Role::Worker => agent::worker_move(dispute, &state.config, worker.0, worker.1),
            Role::Challenger => agent::challenger_move(dispute, &state.config, challenger),
        }
        .unwrap();
        let who = if role == Role::Worker { user(2) } else { user(3) };
        *now += 1;
        if c.play(&who, PlayArgs { claim, dispute: d, seq: dispute.seq, mv }, *now).is_err() {
            return moves;
        }
        moves += 1;
        check_conservation(c);
    }
}

#[test]
fn honest_real_claim_finalizes() {
    let mut s = setup();
    fund(&mut s.c, 2, STAKE);
    let truth = View { t: trace(&s.wasm, b"sixteen bytes!!!").0, r0: None };
    let (claim, _) = submit(&mut s, 2, &truth, 10);
    let view = s.c.claim(claim).unwrap();
    assert_eq!(view.output, s.truth.t.run().output);
    assert_eq!(view.claim.segments, 3);
    s.c.finalize(claim, 11 + common::WINDOW).unwrap();
    assert_eq!(s.c.balance(&principal(2)), STAKE + 500);
    check_conservation(&s.c);
}

#[test]
fn wrong_real_result_is_caught_by_a_one_step_proof() {
    let mut s = setup();
    fund(&mut s.c, 2, STAKE);
    fund(&mut s.c, 3, BOND);
    // The worker ran other inputs but anchors its commitment at the task's true R_0.
    let (other, _) = trace(&s.wasm, b"SIXTEEN BYTES???");
    let liar = View { t: other, r0: Some(Hash(s.truth.t.boundary_root(0))) };
    assert_ne!(liar.t.run().output, s.truth.t.run().output);
    let (claim, tree) = submit(&mut s, 2, &liar, 10);
    let state = s.c.claim_state(claim).unwrap();
    assert!(agent::should_challenge(&state.claim, &s.truth));
    let d = s.c.open_dispute(&user(3), claim, 20).unwrap();
    let mut now = 20;
    let moves = play(&mut s.c, claim, d, (&liar, &tree), &s.truth, &mut now);
    let v = s.c.dispute(claim, d).unwrap();
    assert_eq!(v.resolution.unwrap().outcome, Outcome::ChallengerWon(Reason::StepProof), "after {moves} moves");
    assert!(matches!(s.c.claim(claim).unwrap().status, ClaimStatus::Invalidated { .. }));
    assert_eq!(s.c.balance(&principal(3)), BOND + STAKE - STAKE / 5);
    assert_eq!(s.c.task(s.task).unwrap().status, TaskStatus::Open);
    check_conservation(&s.c);
}

#[test]
fn lying_challenger_against_a_real_honest_claim_loses() {
    let mut s = setup();
    fund(&mut s.c, 2, STAKE);
    fund(&mut s.c, 3, BOND);
    let honest = View { t: trace(&s.wasm, b"sixteen bytes!!!").0, r0: None };
    let (claim, tree) = submit(&mut s, 2, &honest, 10);
    // The challenger believes a run on other inputs; its final proof cannot open the agreed root, so it runs
    // out of moves (every rejected proof leaves the state unchanged) and then out of time.
    let believer = View { t: trace(&s.wasm, b"SIXTEEN BYTES???").0, r0: None };
    let d = s.c.open_dispute(&user(3), claim, 20).unwrap();
    let mut now = 20;
    play(&mut s.c, claim, d, (&honest, &tree), &believer, &mut now);
    let v = s.c.dispute(claim, d).unwrap();
    assert_eq!(v.mover, Some(Role::Challenger));
    let deadline = v.deadline_ns.unwrap();
    s.c.timeout(claim, d, deadline + 1).unwrap();
    let v = s.c.dispute(claim, d).unwrap();
    assert_eq!(v.resolution.unwrap().outcome, Outcome::WorkerWon(Reason::Timeout));
    s.c.finalize(claim, (deadline + 2).max(11 + common::WINDOW)).unwrap();
    assert_eq!(s.c.balance(&principal(2)), STAKE + 500 + BOND - BOND / 5);
    check_conservation(&s.c);
}
