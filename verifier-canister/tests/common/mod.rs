//! Shared helpers: a core over heap memory with the toy VM, principals, a registered toy program, agents.
#![allow(dead_code)]

use candid::{Nat, Principal};
use ic_stable_structures::DefaultMemoryImpl;
use opml_bisect::agent;
use opml_bisect::toy::{ToyRun, ToyVm};
use opml_bisect::{FinalStatus, Hash, MerkleTree, Move, Role};
use opml_verifier_canister::core::Core;
use opml_verifier_canister::types::*;
use opml_verifier_canister::vm::{ProgramVm, ToyProgramVm};
use sha3::{Digest, Sha3_256};

pub type C = Core<DefaultMemoryImpl, ToyProgramVm>;

pub const WINDOW: u64 = 1_000;
pub const CLOCK: u64 = 300;
pub const STAKE: u64 = 1_000;
pub const BOND: u64 = 100;
pub const FEE: u64 = 10;

pub fn principal(n: u8) -> Principal {
    Principal::from_slice(&[n, 0x5a, n, 0xa5])
}

pub fn user(n: u8) -> Caller {
    Caller { id: principal(n), is_controller: false }
}

pub fn controller() -> Caller {
    Caller { id: principal(200), is_controller: true }
}

pub fn operator() -> Caller {
    Caller { id: principal(201), is_controller: false }
}

pub fn config() -> Config {
    Config {
        ledger: Principal::from_slice(&[1, 2, 3]),
        ledger_fee: FEE,
        operators: vec![principal(201), principal(202)],
        arity: 4,
        max_segments: 1 << 20,
        max_segment_steps: 1 << 30,
        min_stake: STAKE,
        challenger_bond: BOND,
        burn_bps: 2_000,
        min_challenge_window_ns: 100,
        max_challenge_window_ns: 100_000,
        min_clock_ns: 50,
        max_clock_ns: 10_000,
        max_program_bytes: 1 << 20,
        max_output_bytes: 1024,
        sweep_interval_s: 60,
    }
}

pub fn core() -> C {
    Core::init(DefaultMemoryImpl::default(), ToyProgramVm, config()).unwrap()
}

pub fn sha3(bytes: &[u8]) -> Hash {
    Hash(Sha3_256::digest(bytes).into())
}

/// Registers the toy program with these segment lengths in chunks of `chunk` bytes.
pub fn register(c: &mut C, lengths: &[u64], chunk: usize) -> Hash {
    let wasm = ToyProgramVm::module(lengths);
    let op = operator();
    let id = c.begin_upload(&op, BeginUpload { wasm_sha3: sha3(&wasm), size: wasm.len() as u64 }, 0).unwrap();
    let mut offset = 0;
    for part in wasm.chunks(chunk) {
        offset = c.upload_chunk(&op, id, offset, part).unwrap();
    }
    c.finish_upload(&op, id, 0).unwrap().registered().expect("a toy registers in one call")
}

pub fn fund<V: ProgramVm>(c: &mut Core<DefaultMemoryImpl, V>, who: u8, amount: u64) {
    c.credit_deposit(&principal(who), amount).unwrap();
}

pub fn task_spec(program: Hash, reward: u64) -> PostTask {
    PostTask {
        program,
        input_root: Hash::ZERO,
        reward,
        challenge_window_ns: WINDOW,
        clock_ns: CLOCK,
        worker_stake: STAKE,
    }
}

/// A run of `program` (honest, or with a fault at segment 1, step 0).
pub fn run(lengths: &[u64], honest: bool) -> ToyRun {
    let mut vm = ToyVm::new();
    let program = vm.register(lengths);
    let truth = ToyRun::new(&vm, program, Hash::ZERO);
    if honest { truth } else { truth.with_fault(1, 0) }
}

/// The claim arguments of a worker that ran `trace`.
pub fn claim_args(task: Id, trace: &ToyRun) -> (SubmitClaim, MerkleTree) {
    let (claim, evidence, tree) = agent::make_claim(
        trace,
        trace.program,
        trace.input_root,
        trace.output(),
        FinalStatus::Halted,
        trace.segments(),
        trace.final_opening(),
    );
    (SubmitClaim { task, claim, evidence, output: trace.output().0.to_vec() }, tree)
}

/// The move the agent of `role` makes now in dispute `d` of `claim`, with its trace.
pub fn agent_move(
    c: &C,
    claim: Id,
    d: u32,
    worker: (&ToyRun, &MerkleTree),
    challenger: &ToyRun,
) -> Option<(Role, PlayArgs)> {
    let state = c.claim_state(claim).unwrap();
    let dispute = state.dispute(d).unwrap();
    let role = dispute.mover()?;
    let mv: Move = match role {
        Role::Worker => agent::worker_move(dispute, &state.config, worker.0, worker.1)?,
        Role::Challenger => agent::challenger_move(dispute, &state.config, challenger)?,
    };
    Some((role, PlayArgs { claim, dispute: d, seq: dispute.seq, mv }))
}

pub fn executed(block: u64) -> LedgerOutcome {
    LedgerOutcome::Executed(Nat::from(block))
}

/// Checks conservation: the running totals equal the recomputed ones and balance out.
pub fn check_conservation<V: ProgramVm>(c: &Core<DefaultMemoryImpl, V>) {
    let t = c.totals();
    let a = c.audit();
    assert_eq!(t, a, "running totals differ from the maps");
    assert_eq!(
        t.balances + t.locked + t.pending_withdrawals + t.burned,
        t.deposited - t.withdrawn,
        "conservation broken: {t:?}"
    );
}
