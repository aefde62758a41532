//! The real verifier canister (`opml_canister_wasm::VERIFIER_WASM`, the wasm32 build of `verifier-canister/`) on
//! the devnet, driven through the stock ic-agent over HTTP, with the devnet's built-in ICRC-1/ICRC-2 ledger as its
//! stake ledger.
//!
//! [`dispute_over_http_with_the_real_canister`] plays the whole life of a task: programs registered by chunked
//! upload (the `digits` model guest and a three-segment wat guest), deposits by `icrc2_approve` + `deposit`, tasks,
//! a lying claim on each (another input's run anchored at the true initial root), disputes played to the final
//! one-step proof by the honest challenger with moves computed by `opml_bisect::agent` over real traces, the
//! canister upgraded in the middle of the digits dispute, an honest claim finalized, withdrawals to the ledger;
//! balances are checked to the unit against the canister's totals and the ledger. On the way: an update that
//! traps (out of instructions in the middle of `finish_upload`, and an undecodable argument) leaves the canister's
//! whole state (stable memory and heap) as it was, and calls answered with a typed error leave stable memory as it
//! was.
//!
//! It prints the canister's instructions per method and per kind of move (run with `--nocapture`); the table in
//! docs/benchmarks.md ("Verifier canister") is this output.

mod common;

use opml_guests::fixtures::THREE_SEGMENTS_HASH;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Decode, Encode, Nat, Principal};
use common::{ApproveArgs, LedgerError, account, agent, ed25519_identity};
use ic_agent::agent::RejectCode;
use ic_agent::{Agent, AgentError, Identity};
use opml_bisect::agent::{self as players, Trace};
use opml_bisect::vm::VmTraceAdapter;
use opml_bisect::{ClaimState, ClaimStatus, Hash, MerkleTree, Move, Outcome, Phase, Reason, Role};
use opml_canister_wasm::VERIFIER_WASM;
use opml_devnet::{Devnet, DevnetConfig, Limits, StateDigest};
use opml_verifier_canister::Error as CanisterError;
use opml_verifier_canister::shell::UploadChunk;
use opml_verifier_canister::types::*;
use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::trace::GuestTrace;
use serde::de::DeserializeOwned;
use sha3::{Digest, Sha3_256};

type CResult<T> = Result<T, CanisterError>;

const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SECOND;
const STAKE: u64 = 50_000_000;
const BOND: u64 = 5_000_000;
const REWARD: u64 = 20_000_000;
const BURN_BPS: u16 = 2_000;
/// Upload chunk size: the digits guest (184 KB) goes up in three chunks.
const CHUNK: usize = 64 * 1024;
/// The sweep timer's period: longer than anything the test waits for, so every outcome here is reached by a
/// public call (and the timer's re-arming by `post_upgrade` can be observed).
const SWEEP_S: u64 = 86_400;

// ---------------------------------------------------------------------------------------------------------------
// Calls

fn sha3(bytes: &[u8]) -> Hash {
    Hash(Sha3_256::digest(bytes).into())
}

/// An update call answered with a reply, decoded as `R` (panics on a reject: the canister is not expected to trap).
async fn update<R: CandidType + DeserializeOwned>(
    agent: &Agent,
    id: Principal,
    method: &str,
    args: impl ArgumentEncoder,
) -> R {
    let arg = candid::encode_args(args).unwrap();
    let out = agent
        .update(&id, method)
        .with_arg(arg)
        .call_and_wait()
        .await
        .unwrap_or_else(|e| panic!("{method}: rejected: {e}"));
    Decode!(&out, R).unwrap_or_else(|e| panic!("{method}: undecodable reply: {e}"))
}

async fn query<R: CandidType + DeserializeOwned>(
    agent: &Agent,
    id: Principal,
    method: &str,
    args: impl ArgumentEncoder,
) -> R {
    let arg = candid::encode_args(args).unwrap();
    let out = agent.query(&id, method).with_arg(arg).call().await.unwrap_or_else(|e| panic!("{method}: {e}"));
    Decode!(&out, R).unwrap_or_else(|e| panic!("{method}: undecodable reply: {e}"))
}

/// The reject of a failed update.
fn reject_of(e: AgentError) -> (RejectCode, String, Option<String>) {
    match e {
        AgentError::CertifiedReject { reject, .. } | AgentError::UncertifiedReject { reject, .. } => {
            (reject.reject_code, reject.reject_message, reject.error_code)
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

/// Everything the canister's queries show about the parties, claims and money: equal snapshots mean the state
/// the interface exposes did not change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    totals: Totals,
    audit: Totals,
    config: Config,
    balances: Vec<u64>,
    tasks: Vec<u8>,
    claims: Vec<u8>,
    claim_states: Vec<Vec<u8>>,
    programs: Vec<u8>,
    uploads: Vec<Vec<u8>>,
}

struct Net {
    devnet: Devnet,
    id: Principal,
    operator: Agent,
    requester: Agent,
    worker: Agent,
    challenger: Agent,
    parties: Vec<Principal>,
    /// Instructions of each `play`, by kind of move: (instructions, Candid argument bytes).
    moves: BTreeMap<&'static str, Vec<(u64, usize)>>,
}

impl Net {
    fn digest(&self) -> StateDigest {
        self.devnet.state_digest(self.id).expect("installed")
    }

    fn last_instructions(&self, method: &str) -> u64 {
        self.devnet.instruction_counts(self.id)[method].last_instructions
    }

    async fn snapshot(&self) -> Snapshot {
        let a = &self.operator;
        let id = self.id;
        let mut balances = Vec::new();
        for p in &self.parties {
            balances.push(query::<u64>(a, id, "balance_of", (*p,)).await);
        }
        let raw = |method: &'static str, arg: Vec<u8>| async move {
            a.query(&id, method).with_arg(arg).call().await.unwrap_or_else(|e| panic!("{method}: {e}"))
        };
        let mut claim_states = Vec::new();
        for c in 0..4u64 {
            claim_states.push(raw("get_claim_state", Encode!(&c).unwrap()).await);
        }
        let mut uploads = Vec::new();
        for u in 0..3u64 {
            uploads.push(raw("get_upload", Encode!(&u).unwrap()).await);
        }
        Snapshot {
            totals: query(a, id, "totals", ()).await,
            audit: query(a, id, "audit", ()).await,
            config: query(a, id, "config", ()).await,
            balances,
            tasks: raw("list_tasks", Encode!(&0u64, &100u32).unwrap()).await,
            claims: raw("list_claims", Encode!(&0u64, &100u32).unwrap()).await,
            claim_states,
            programs: raw("list_programs", Encode!(&None::<Hash>, &100u32).unwrap()).await,
            uploads,
        }
    }

    /// Checks the canister's accounting: running totals equal the recomputed ones, and money is conserved.
    async fn check_conservation(&self) -> Totals {
        let t: Totals = query(&self.operator, self.id, "totals", ()).await;
        let a: Totals = query(&self.operator, self.id, "audit", ()).await;
        assert_eq!(t, a, "running totals differ from the maps");
        assert_eq!(
            t.balances + t.locked + t.pending_withdrawals + t.burned,
            t.deposited - t.withdrawn,
            "conservation: {t:?}"
        );
        t
    }

    async fn balance(&self, p: Principal) -> u64 {
        query(&self.operator, self.id, "balance_of", (p,)).await
    }

    async fn claim_state(&self, claim: Id) -> ClaimState {
        query::<CResult<ClaimState>>(&self.operator, self.id, "get_claim_state", (claim,)).await.unwrap()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Executions

/// A party's view of a run: a real trace, optionally claiming another `R_0` (a worker that ran other inputs but
/// anchors its commitment at the task's true initial root, so its claim passes submission: the lie is the whole
/// execution, caught at its first step).
struct View {
    t: Arc<GuestTrace>,
    r0: Option<Hash>,
}

impl Trace for View {
    fn boundary_root(&self, i: u64) -> Hash {
        match self.r0 {
            Some(r) if i == 0 => r,
            _ => VmTraceAdapter::new(self.t.clone()).boundary_root(i),
        }
    }
    fn step_count(&self, s: u64) -> u64 {
        VmTraceAdapter::new(self.t.clone()).step_count(s)
    }
    fn step_root(&self, s: u64, j: u64) -> Hash {
        match self.r0 {
            Some(r) if s == 0 && j == 0 => r,
            _ => VmTraceAdapter::new(self.t.clone()).step_root(s, j),
        }
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        VmTraceAdapter::new(self.t.clone()).step_proof(s, j)
    }
}

struct Guest {
    name: &'static str,
    wasm: Vec<u8>,
    program: GuestProgram,
    /// The task's inputs and the true run on them.
    input_root: Hash,
    truth: Arc<GuestTrace>,
    /// A run on other inputs (the lying worker's).
    other: Arc<GuestTrace>,
}

impl Guest {
    fn new(name: &'static str, wasm: Vec<u8>, inputs: Inputs, other: Inputs) -> Guest {
        let program = GuestProgram::new(&wasm).expect("valid guest");
        let trace = |inputs: Inputs| {
            let t = GuestTrace::new(program.clone(), Arc::new(inputs), opml_vm::Limits::default()).expect("runs");
            assert_eq!(t.run().status, opml_vm::Status::Halted, "{name} halts");
            Arc::new(t)
        };
        let input_root = Hash(inputs.root());
        let (truth, other) = (trace(inputs), trace(other));
        assert_ne!(truth.run().output, other.run().output, "{name}: the other input changes the output");
        Guest { name, wasm, program, input_root, truth, other }
    }

    fn digits() -> Guest {
        let inputs = |i: usize| {
            let (image, _) = opml_guests::digits::heldout().nth(i).expect("held-out image");
            Inputs::new(vec![opml_guests::digits::WEIGHTS.to_vec(), image.to_vec()])
        };
        Guest::new("digits", opml_guests::DIGITS.to_vec(), inputs(0), inputs(1))
    }

    fn wat() -> Guest {
        let wasm = wat::parse_str(THREE_SEGMENTS_HASH).unwrap();
        Guest::new(
            "wat",
            wasm,
            Inputs::new(vec![b"sixteen bytes!!!".to_vec()]),
            Inputs::new(vec![b"SIXTEEN BYTES???".to_vec()]),
        )
    }

    fn honest(&self) -> View {
        View { t: self.truth.clone(), r0: None }
    }

    fn liar(&self) -> View {
        View { t: self.other.clone(), r0: Some(Hash(self.truth.boundary_root(0))) }
    }

    /// The claim of a worker whose view is `v` (its own run's output and final opening).
    fn claim(&self, program: Hash, task: Id, v: &View) -> (SubmitClaim, MerkleTree) {
        let run = v.t.run();
        let (claim, evidence, tree) = players::make_claim(
            v,
            program,
            self.input_root,
            Hash(run.output_hash),
            opml_bisect::vm::status_of(run.status).expect("a run ends in a final state"),
            v.t.segments(),
            v.t.final_opening().unwrap(),
        );
        (SubmitClaim { task, claim, evidence, output: run.output.clone() }, tree)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The flow

fn config(ledger: Principal, fee: u64) -> Config {
    Config {
        ledger,
        ledger_fee: fee,
        operators: vec![],
        arity: 4,
        max_segments: 1 << 20,
        max_segment_steps: 1 << 30,
        min_stake: STAKE,
        challenger_bond: BOND,
        burn_bps: BURN_BPS,
        min_challenge_window_ns: SECOND,
        max_challenge_window_ns: 24 * HOUR,
        min_clock_ns: SECOND,
        max_clock_ns: 24 * HOUR,
        max_program_bytes: 4 << 20,
        max_output_bytes: 4096,
        sweep_interval_s: SWEEP_S,
    }
}

/// The faucet (`devnet_mint`, through the agent), then `icrc2_approve` and `deposit`; checks the ledger and the
/// canister balance to the unit. Returns the caller's ledger balance afterwards.
/// The ICRC-2 approval a deposit of `amount` into canister `spender` needs: the amount plus the ledger `fee` of
/// the `transfer_from` the canister makes.
fn approve_deposit(spender: Principal, amount: u64, fee: u128) -> ApproveArgs {
    ApproveArgs {
        from_subaccount: None,
        spender: account(spender),
        amount: Nat::from(u128::from(amount) + fee),
        expected_allowance: None,
        expires_at: None,
        fee: None,
        memo: None,
        created_at_time: None,
    }
}

async fn fund(net: &Net, who: &Agent, amount: u64) -> u128 {
    let me = who.get_principal().unwrap();
    let fee = net.devnet.ledger_fee();
    let ledger = net.devnet.ledger_id();
    #[derive(CandidType)]
    struct MintArgs {
        to: common::Account,
        amount: Nat,
    }
    let before = net.devnet.balance(&opml_devnet::Account::of(me));
    let minted = u128::from(amount) + 3 * fee + 1_000;
    let r: Result<Nat, LedgerError> =
        update(who, ledger, "devnet_mint", (MintArgs { to: account(me), amount: Nat::from(minted) },)).await;
    r.expect("faucet");
    let approve = approve_deposit(net.id, amount, fee);
    let r: Result<Nat, LedgerError> = update(who, ledger, "icrc2_approve", (approve,)).await;
    r.expect("approve");
    let in_canister = net.balance(me).await;
    let r: CResult<u64> = update(who, net.id, "deposit", (DepositArgs { from_subaccount: None, amount },)).await;
    assert_eq!(r, Ok(in_canister + amount), "deposit credits exactly the amount");
    let after = net.devnet.balance(&opml_devnet::Account::of(me));
    // minted, less the approval's fee, less amount + fee taken by transfer_from.
    assert_eq!(after, before + minted - fee - (u128::from(amount) + fee));
    after
}

/// Registers `g` by chunked upload; returns the program hash (checked against the agents' own computation).
/// `finish_upload` until the program is registered (a large guest's commitment takes several calls); the last
/// call's answer.
async fn finish(a: &Agent, id: Principal, upload: Id) -> CResult<Hash> {
    loop {
        let r: CResult<RegistrationStep> = update(a, id, "finish_upload", (upload,)).await;
        match r {
            Ok(RegistrationStep::Rewritten) => {}
            Ok(RegistrationStep::Committing { done, total }) => assert!(done < total, "{done} of {total}"),
            Ok(RegistrationStep::Registered { program }) => return Ok(program),
            Err(e) => return Err(e),
        }
    }
}

async fn register(net: &Net, g: &Guest) -> Hash {
    let (a, id) = (&net.operator, net.id);
    let r: CResult<Id> =
        update(a, id, "begin_upload", (BeginUpload { wasm_sha3: sha3(&g.wasm), size: g.wasm.len() as u64 },)).await;
    let upload = r.unwrap();
    let mut offset = 0u64;
    for part in g.wasm.chunks(CHUNK) {
        let r: CResult<u64> =
            update(a, id, "upload_chunk", (UploadChunk { upload, offset, bytes: part.to_vec() },)).await;
        offset = r.unwrap();
    }
    assert_eq!(offset, g.wasm.len() as u64);
    let program = finish(a, id, upload).await.unwrap();
    let agents = opml_bisect::vm::VmVerifier::new().register_guest(&g.program, opml_vm::Limits::default()).unwrap();
    assert_eq!(program, agents, "{}: the canister and the agents name the program alike", g.name);
    program
}

fn move_kind(phase: &Phase, mv: &Move) -> &'static str {
    match (phase, mv) {
        (Phase::Segments(_), Move::PostRoots { .. }) => "play: PostRoots (segment phase)",
        (_, Move::PostRoots { .. }) => "play: PostRoots (step phase)",
        (Phase::Segments(_), Move::Choose { .. }) => "play: Choose (segment phase)",
        (_, Move::Choose { .. }) => "play: Choose (step phase)",
        (_, Move::CommitSteps { .. }) => "play: CommitSteps",
        (_, Move::ProveStep { .. }) => "play: ProveStep (one-step proof)",
    }
}

/// What playing a dispute cost: moves, the canister's instructions and Candid argument bytes over all of them.
#[derive(Clone, Copy, Debug, Default)]
struct Game {
    moves: u32,
    instructions: u64,
    bytes: usize,
}

/// Plays dispute `d` of `claim` with the agents' honest strategies, the worker over `liar`, until it is resolved;
/// `between(net, moves_made)` runs before every move (the upgrade and the error checks hook in there).
async fn play_out(
    net: &mut Net,
    claim: Id,
    d: u32,
    liar: (&View, &MerkleTree),
    challenger: &View,
    mut between: impl AsyncFnMut(&mut Net, u32, &ClaimState),
) -> Game {
    let mut game = Game::default();
    loop {
        let state = net.claim_state(claim).await;
        between(net, game.moves, &state).await;
        let dispute = state.dispute(d).unwrap();
        let Some(role) = dispute.mover() else { return game };
        let mv = match role {
            Role::Worker => players::worker_move(dispute, &state.config, liar.0, liar.1),
            Role::Challenger => players::challenger_move(dispute, &state.config, challenger),
        }
        .expect("the agent has a move");
        let kind = move_kind(&dispute.phase, &mv);
        let args = PlayArgs { claim, dispute: d, seq: dispute.seq, mv };
        let bytes = Encode!(&args).unwrap().len();
        let agent = if role == Role::Worker { &net.worker } else { &net.challenger };
        let r: CResult<()> = update(agent, net.id, "play", (args,)).await;
        r.unwrap_or_else(|e| panic!("move {} ({kind}) rejected: {e:?}", game.moves));
        let n = net.last_instructions("play");
        // The move budget of the canister issue, one-step proof included.
        assert!(n < 10_000_000, "move {} ({kind}) took {n} instructions", game.moves);
        net.moves.entry(kind).or_default().push((n, bytes));
        game.moves += 1;
        game.instructions += n;
        game.bytes += bytes;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispute_over_http_with_the_real_canister() {
    let started = std::time::Instant::now();
    // The executions first (native: fast engine, stepper traces on demand).
    let digits = Guest::digits();
    let wat = Guest::wat();

    let devnet = Devnet::start(DevnetConfig::default()).expect("devnet starts");
    let url = devnet.url().to_string();
    let (operator, requester, worker, challenger) =
        (ed25519_identity(31), ed25519_identity(32), ed25519_identity(33), ed25519_identity(34));
    let parties: Vec<Principal> =
        [&operator, &requester, &worker, &challenger].iter().map(|i| i.sender().unwrap()).collect();
    let fee = devnet.ledger_fee();
    let cfg = config(devnet.ledger_id(), fee as u64);
    let id = devnet
        .install_canister(VERIFIER_WASM, Encode!(&cfg).unwrap(), vec![parties[0]])
        .unwrap_or_else(|e| panic!("the verifier canister installs: {e}"));
    // init armed the sweep timer.
    let timer = devnet.global_timer(id).unwrap();
    assert!(timer > devnet.time() && timer <= devnet.time() + SWEEP_S * SECOND, "timer {timer}");
    let mut net = Net {
        id,
        operator: agent(&url, operator).await,
        requester: agent(&url, requester).await,
        worker: agent(&url, worker).await,
        challenger: agent(&url, challenger).await,
        parties: parties.clone(),
        devnet,
        moves: BTreeMap::new(),
    };
    let [_, requester_p, worker_p, challenger_p] = parties[..] else { unreachable!() };
    assert_eq!(query::<Config>(&net.operator, id, "config", ()).await, cfg);

    // --- An update that traps changes nothing. ---
    // Out of instructions in the middle of registering the digits guest: the upload is complete, finish_upload
    // hashes it and derives the program's commitment, and the instruction limit stops it half-way.
    let (a, g) = (&net.operator, &digits);
    let r: CResult<Id> =
        update(a, id, "begin_upload", (BeginUpload { wasm_sha3: sha3(&g.wasm), size: g.wasm.len() as u64 },)).await;
    let upload = r.unwrap();
    let mut offset = 0u64;
    for part in g.wasm.chunks(CHUNK) {
        let r: CResult<u64> =
            update(a, id, "upload_chunk", (UploadChunk { upload, offset, bytes: part.to_vec() },)).await;
        offset = r.unwrap();
    }
    let limits = net.devnet.limits();
    net.devnet.set_limits(Limits { update_instructions: 20_000_000, ..limits.clone() });
    let (before, digest) = (net.snapshot().await, net.digest());
    let e = net.operator.update(&id, "finish_upload").with_arg(Encode!(&upload).unwrap()).call_and_wait().await;
    let (code, msg, err) = reject_of(e.unwrap_err());
    assert_eq!((code, err.as_deref()), (RejectCode::CanisterError, Some("IC0522")), "{msg}");
    assert_eq!(net.digest(), digest, "a trapped update changes neither stable memory nor the heap");
    assert_eq!(net.snapshot().await, before);
    net.devnet.set_limits(limits);
    // An argument the canister cannot decode: ic-cdk traps before the method body.
    let e = net.operator.update(&id, "finish_upload").with_arg(b"DIDL-not-candid".to_vec()).call_and_wait().await;
    let (code, msg, _) = reject_of(e.unwrap_err());
    assert_eq!(code, RejectCode::CanisterError, "{msg}");
    assert_eq!(net.digest(), digest);
    // With the normal limit the same call registers the program (digits is small enough for one call).
    let r: CResult<RegistrationStep> = update(&net.operator, id, "finish_upload", (upload,)).await;
    let digits_program = r.unwrap().registered().expect("the digits guest registers in one call");
    let finish_upload_digits = net.last_instructions("finish_upload");
    let agents =
        opml_bisect::vm::VmVerifier::new().register_guest(&digits.program, opml_vm::Limits::default()).unwrap();
    assert_eq!(digits_program, agents);
    // The same module again is a typed error, and changes nothing.
    let r: CResult<Id> = update(
        &net.operator,
        id,
        "begin_upload",
        (BeginUpload { wasm_sha3: sha3(&digits.wasm), size: digits.wasm.len() as u64 },),
    )
    .await;
    let dup = r.unwrap();
    let mut offset = 0u64;
    for part in digits.wasm.chunks(CHUNK) {
        let r: CResult<u64> =
            update(&net.operator, id, "upload_chunk", (UploadChunk { upload: dup, offset, bytes: part.to_vec() },))
                .await;
        offset = r.unwrap();
    }
    let (before, digest) = (net.snapshot().await, net.digest());
    let r: CResult<RegistrationStep> = update(&net.operator, id, "finish_upload", (dup,)).await;
    assert_eq!(r, Err(CanisterError::ProgramExists { program: digits_program }));
    assert_eq!(net.digest().stable, digest.stable, "a typed error leaves stable memory as it was");
    assert_eq!(net.snapshot().await, before);
    let r: CResult<()> = update(&net.operator, id, "abort_upload", (dup,)).await;
    r.unwrap();
    let wat_program = register(&net, &wat).await;
    let finish_upload_wat = net.last_instructions("finish_upload");

    // --- Deposits through the ledger. ---
    let requester_ledger = fund(&net, &net.requester, 2 * REWARD).await;
    fund(&net, &net.worker, 2 * STAKE).await;
    let challenger_ledger = fund(&net, &net.challenger, 2 * BOND).await;
    let t = net.check_conservation().await;
    assert_eq!(t.deposited, u128::from(2 * REWARD + 2 * STAKE + 2 * BOND));
    // Someone who approved nothing cannot deposit: the ledger refuses, nothing is credited.
    let digest = net.digest();
    let r: CResult<u64> =
        update(&net.operator, id, "deposit", (DepositArgs { from_subaccount: None, amount: 1 },)).await;
    assert!(matches!(r, Err(CanisterError::Ledger { .. })), "{r:?}");
    assert_eq!(net.digest().stable, digest.stable);

    // --- Tasks. ---
    let spec = |program: Hash, input_root: Hash| PostTask {
        program,
        input_root,
        reward: REWARD,
        challenge_window_ns: HOUR,
        clock_ns: HOUR,
        worker_stake: STAKE,
    };
    let r: CResult<Id> = update(&net.requester, id, "post_task", (spec(digits_program, digits.input_root),)).await;
    let digits_task = r.unwrap();
    let r: CResult<Id> = update(&net.requester, id, "post_task", (spec(wat_program, wat.input_root),)).await;
    let wat_task = r.unwrap();
    assert_eq!(net.balance(requester_p).await, 0);

    // --- The digits dispute: a lying claim, the honest challenger, the canister upgraded half-way. ---
    let (liar, honest) = (digits.liar(), digits.honest());
    let (args, tree) = digits.claim(digits_program, digits_task, &liar);
    let claim_bytes = Encode!(&args).unwrap().len();
    let r: CResult<Id> = update(&net.worker, id, "submit_claim", (args,)).await;
    let digits_claim = r.unwrap();
    let submit_claim_digits = net.last_instructions("submit_claim");
    assert_eq!(net.balance(worker_p).await, STAKE);
    let state = net.claim_state(digits_claim).await;
    assert!(players::should_challenge(&state.claim, &honest), "the watcher disagrees with the lying claim");
    let r: CResult<u32> = update(&net.challenger, id, "open_dispute", (digits_claim,)).await;
    let d = r.unwrap();
    assert_eq!(net.balance(challenger_p).await, BOND);

    let mut upgraded = false;
    let mut errors_checked = false;
    let digits_game = play_out(&mut net, digits_claim, d, (&liar, &tree), &honest, async |net, made, state| {
        let dispute = state.dispute(d).unwrap();
        if made == 2 && !errors_checked {
            errors_checked = true;
            // Typed errors change nothing: a replayed move, the wrong party's move, an unknown dispute.
            let (before, digest) = (net.snapshot().await, net.digest());
            let mover = dispute.mover().unwrap();
            let (wrong, right) =
                if mover == Role::Worker { (&net.challenger, &net.worker) } else { (&net.worker, &net.challenger) };
            let stale =
                PlayArgs { claim: digits_claim, dispute: d, seq: dispute.seq - 1, mv: Move::Choose { index: 0 } };
            let r: CResult<()> = update(right, id, "play", (stale,)).await;
            assert!(
                matches!(r, Err(CanisterError::Game(opml_bisect::Error::StaleMove { .. }))),
                "replayed move: {r:?}"
            );
            let turn = PlayArgs { claim: digits_claim, dispute: d, seq: dispute.seq, mv: Move::Choose { index: 0 } };
            let r: CResult<()> = update(wrong, id, "play", (turn,)).await;
            assert!(
                matches!(r, Err(CanisterError::Game(opml_bisect::Error::NotYourTurn { .. }))),
                "wrong party: {r:?}"
            );
            let r: CResult<()> = update(right, id, "timeout", (digits_claim, d)).await;
            assert!(matches!(r, Err(CanisterError::Game(opml_bisect::Error::NotTimedOut { .. }))), "{r:?}");
            let r: CResult<()> = update(right, id, "finalize", (digits_claim,)).await;
            assert!(matches!(r, Err(CanisterError::Game(_))), "finalize with a dispute open: {r:?}");
            assert_eq!(net.digest().stable, digest.stable, "typed errors leave stable memory as it was");
            assert_eq!(net.snapshot().await, before);
        }
        if made == 4 && !upgraded {
            upgraded = true;
            // Upgrade (same wasm, no new configuration) with the dispute in the step phase.
            assert!(matches!(dispute.phase, Phase::Steps { .. }), "{:?}", dispute.phase);
            let (before, digest) = (net.snapshot().await, net.digest());
            let hash = net.devnet.module_hash(id);
            net.devnet
                .upgrade_canister(id, VERIFIER_WASM, Encode!(&None::<Config>).unwrap())
                .unwrap_or_else(|e| panic!("upgrade: {e}"));
            assert_eq!(net.devnet.module_hash(id), hash);
            assert_eq!(net.digest().stable, digest.stable, "the upgrade keeps stable memory as it was");
            assert_eq!(net.snapshot().await, before, "every claim, dispute and balance survives the upgrade");
            // post_upgrade re-armed the sweep timer.
            let timer = net.devnet.global_timer(id).unwrap();
            assert!(timer > net.devnet.time(), "timer re-armed: {timer}");
        }
    })
    .await;
    assert!(upgraded && errors_checked, "the dispute was long enough for the checks ({digits_game:?})");
    let v: CResult<DisputeView> = query(&net.operator, id, "get_dispute", (digits_claim, d)).await;
    let v = v.unwrap();
    assert_eq!(v.resolution.unwrap().outcome, Outcome::ChallengerWon(Reason::StepProof));
    let c: CResult<ClaimView> = query(&net.operator, id, "get_claim", (digits_claim,)).await;
    assert!(matches!(c.unwrap().status, ClaimStatus::Invalidated { .. }));
    let burn = STAKE * u64::from(BURN_BPS) / 10_000;
    // The worker is slashed; the challenger gets its bond back and the stake less the burn.
    assert_eq!(net.balance(worker_p).await, STAKE);
    assert_eq!(net.balance(challenger_p).await, 2 * BOND + STAKE - burn);
    let t: CResult<Task> = query(&net.operator, id, "get_task", (digits_task,)).await;
    assert_eq!(t.unwrap().status, TaskStatus::Open, "the task is open for another claim");
    let t = net.check_conservation().await;
    assert_eq!(t.burned, u128::from(burn));

    // --- The wat dispute: three segments, so the segment phase too (roots opened against the commitment). ---
    let (liar_w, honest_w) = (wat.liar(), wat.honest());
    let (args, tree_w) = wat.claim(wat_program, wat_task, &liar_w);
    let r: CResult<Id> = update(&net.worker, id, "submit_claim", (args,)).await;
    let wat_claim = r.unwrap();
    let submit_claim_wat = net.last_instructions("submit_claim");
    let r: CResult<u32> = update(&net.challenger, id, "open_dispute", (wat_claim,)).await;
    let dw = r.unwrap();
    let open_dispute = net.last_instructions("open_dispute");
    let wat_game = play_out(&mut net, wat_claim, dw, (&liar_w, &tree_w), &honest_w, async |_, _, _| {}).await;
    let v: CResult<DisputeView> = query(&net.operator, id, "get_dispute", (wat_claim, dw)).await;
    assert_eq!(v.unwrap().resolution.unwrap().outcome, Outcome::ChallengerWon(Reason::StepProof));
    assert!(net.moves.contains_key("play: PostRoots (segment phase)"), "{:?}", net.moves.keys());
    assert_eq!(net.balance(worker_p).await, 0, "both stakes forfeited");
    assert_eq!(net.balance(challenger_p).await, 2 * BOND + 2 * (STAKE - burn));

    // --- An honest claim on the digits task finalizes after the window. ---
    fund(&net, &net.worker, STAKE).await;
    let (args, _) = digits.claim(digits_program, digits_task, &honest);
    let r: CResult<Id> = update(&net.worker, id, "submit_claim", (args,)).await;
    let honest_claim = r.unwrap();
    let state = net.claim_state(honest_claim).await;
    assert!(!players::should_challenge(&state.claim, &honest), "nothing to dispute");
    let r: CResult<()> = update(&net.worker, id, "finalize", (honest_claim,)).await;
    assert!(matches!(r, Err(CanisterError::Game(opml_bisect::Error::ChallengeWindowOpen { .. }))), "{r:?}");
    net.devnet.advance_time(Duration::from_nanos(HOUR + SECOND));
    let r: CResult<()> = update(&net.worker, id, "finalize", (honest_claim,)).await;
    r.unwrap();
    let finalize = net.last_instructions("finalize");
    assert_eq!(net.balance(worker_p).await, STAKE + REWARD, "stake back and the reward");
    let t: CResult<Task> = query(&net.operator, id, "get_task", (digits_task,)).await;
    assert_eq!(t.unwrap().status, TaskStatus::Done { claim: honest_claim });

    // --- Silent workers lose on time: once by the public `timeout`, once by the canister's sweep timer. ---
    let silent_dispute = async |net: &Net| {
        let (args, _) = wat.claim(wat_program, wat_task, &liar_w);
        let r: CResult<Id> = update(&net.worker, id, "submit_claim", (args,)).await;
        let claim = r.unwrap();
        let r: CResult<u32> = update(&net.challenger, id, "open_dispute", (claim,)).await;
        (claim, r.unwrap())
    };
    let (c2, d2) = silent_dispute(&net).await;
    assert_eq!(net.balance(worker_p).await, REWARD, "the free stake is locked again");
    net.devnet.advance_time(Duration::from_nanos(HOUR + SECOND));
    let r: CResult<()> = update(&net.requester, id, "timeout", (c2, d2)).await;
    r.expect("anyone may call timeout once the mover's clock ran out");
    let timeout = net.last_instructions("timeout");
    let v: CResult<DisputeView> = query(&net.operator, id, "get_dispute", (c2, d2)).await;
    assert_eq!(v.unwrap().resolution.unwrap().outcome, Outcome::ChallengerWon(Reason::Timeout));
    let worker_ledger = fund(&net, &net.worker, STAKE).await;
    let (c3, d3) = silent_dispute(&net).await;
    let timer = net.devnet.global_timer(id).unwrap();
    let timer_runs = |net: &Net| net.devnet.instruction_counts(id).get("global_timer").map_or(0, |s| s.calls);
    let runs = timer_runs(&net);
    net.devnet.advance_time(Duration::from_nanos(timer - net.devnet.time() + SECOND));
    assert_eq!(timer_runs(&net), runs + 1, "the sweep timer fired once");
    let v: CResult<DisputeView> = query(&net.operator, id, "get_dispute", (c3, d3)).await;
    assert_eq!(v.unwrap().resolution.unwrap().outcome, Outcome::ChallengerWon(Reason::Timeout), "applied by the sweep");
    let c: CResult<ClaimView> = query(&net.operator, id, "get_claim", (c3,)).await;
    assert!(matches!(c.unwrap().status, ClaimStatus::Invalidated { .. }));
    assert!(net.devnet.global_timer(id).unwrap() > timer, "the sweep's interval timer re-armed itself");
    assert_eq!(net.balance(worker_p).await, REWARD);
    assert_eq!(net.balance(challenger_p).await, 2 * BOND + 4 * (STAKE - burn));

    // The requester cancels the other task (every claim on it was invalidated): the reward comes back.
    let r: CResult<()> = update(&net.requester, id, "cancel_task", (wat_task,)).await;
    r.unwrap();
    assert_eq!(net.balance(requester_p).await, REWARD);
    net.check_conservation().await;

    // --- Withdrawals to the ledger, to the unit. ---
    let mut withdraw_instr = 0;
    for (who, p, ledger_before) in [
        (&net.worker, worker_p, worker_ledger),
        (&net.challenger, challenger_p, challenger_ledger),
        (&net.requester, requester_p, requester_ledger),
    ] {
        let bal = net.balance(p).await;
        let amount = bal - fee as u64;
        let r: CResult<Withdrawal> = update(who, id, "withdraw", (WithdrawArgs { to: None, amount },)).await;
        let w = r.unwrap();
        assert!(matches!(w.status, WithdrawalStatus::Completed { .. }), "{w:?}");
        withdraw_instr = withdraw_instr.max(net.last_instructions("withdraw"));
        assert_eq!(net.balance(p).await, 0);
        assert_eq!(net.devnet.balance(&opml_devnet::Account::of(p)), ledger_before + u128::from(amount));
    }
    // Nothing left to withdraw: a typed error.
    let r: CResult<Withdrawal> = update(&net.worker, id, "withdraw", (WithdrawArgs { to: None, amount: 1 },)).await;
    assert!(matches!(r, Err(CanisterError::InsufficientBalance { .. })), "{r:?}");
    let t = net.check_conservation().await;
    assert_eq!((t.balances, t.locked, t.pending_withdrawals), (0, 0, 0));
    assert_eq!(t.burned, u128::from(4 * burn));
    assert_eq!(t.deposited, u128::from(2 * REWARD + 4 * STAKE + 2 * BOND));
    assert_eq!(t.withdrawn, t.deposited - t.burned);
    // What stays in the canister's ledger account is exactly what the game burnt.
    assert_eq!(net.devnet.balance(&opml_devnet::Account::of(id)), u128::from(4 * burn));

    // --- The next sweep finds nothing to do. ---
    let before = net.snapshot().await;
    net.devnet.advance_time(Duration::from_secs(SWEEP_S + 1));
    assert_eq!(timer_runs(&net), runs + 2);
    assert_eq!(net.snapshot().await, before);

    // --- The report. ---
    let claim_record_bytes = net
        .operator
        .query(&id, "get_claim_state")
        .with_arg(Encode!(&digits_claim).unwrap())
        .call()
        .await
        .unwrap()
        .len();
    let mut out = String::new();
    let w = &mut out;
    use std::fmt::Write as _;
    writeln!(w, "\nThe verifier canister on the devnet ({} bytes of wasm), arity {}\n", VERIFIER_WASM.len(), cfg.arity)
        .unwrap();
    for (g, game, disputed) in [(&digits, digits_game, 0), (&wat, wat_game, 0)] {
        writeln!(
            w,
            "- {} ({} bytes of wasm, {} segment(s), {} steps in segment {disputed}): {} moves, {} instructions in all \
             `play` calls, {} bytes of `play` arguments",
            g.name,
            g.wasm.len(),
            g.truth.segments(),
            g.truth.step_count(disputed).unwrap(),
            game.moves,
            game.instructions,
            game.bytes
        )
        .unwrap();
    }
    writeln!(w).unwrap();
    writeln!(w, "| call | calls | instructions (mean) | max | Candid argument bytes (max) |").unwrap();
    writeln!(w, "|---|---:|---:|---:|---:|").unwrap();
    for (kind, v) in &net.moves {
        let mean = v.iter().map(|x| x.0).sum::<u64>() / v.len() as u64;
        let max = v.iter().map(|x| x.0).max().unwrap();
        let bytes = v.iter().map(|x| x.1).max().unwrap();
        writeln!(w, "| `{kind}` | {} | {mean} | {max} | {bytes} |", v.len()).unwrap();
    }
    for (what, n) in [
        ("finish_upload (digits, 184 KB guest)", finish_upload_digits),
        ("finish_upload (wat guest)", finish_upload_wat),
        ("submit_claim (digits)", submit_claim_digits),
        ("submit_claim (wat)", submit_claim_wat),
        ("open_dispute", open_dispute),
        ("finalize", finalize),
        ("timeout", timeout),
        ("withdraw (max of 3)", withdraw_instr),
    ] {
        writeln!(w, "| `{what}` | 1 | {n} | {n} | |").unwrap();
    }
    writeln!(
        w,
        "\nsubmit_claim argument (digits): {claim_bytes} bytes; get_claim_state reply (digits claim, one resolved \
         dispute): {claim_record_bytes} bytes\n\nAll entry points (devnet::instruction_counts):\n"
    )
    .unwrap();
    writeln!(w, "| entry point | calls | mean instructions | max |").unwrap();
    writeln!(w, "|---|---:|---:|---:|").unwrap();
    for (name, s) in net.devnet.instruction_counts(id) {
        writeln!(w, "| `{name}` | {} | {} | {} |", s.calls, s.mean_instructions(), s.max_instructions).unwrap();
    }
    writeln!(w, "\nwhole test: {:.1} s", started.elapsed().as_secs_f64()).unwrap();
    std::io::stderr().write_all(out.as_bytes()).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Deployment through the management canister

#[derive(CandidType)]
struct CreateArgs {
    amount: Option<Nat>,
    settings: Option<()>,
}

#[derive(CandidType, serde::Deserialize)]
struct Created {
    canister_id: Principal,
}

#[derive(CandidType, serde::Serialize)]
enum InstallMode {
    #[serde(rename = "install")]
    Install,
    #[serde(rename = "upgrade")]
    Upgrade(Option<()>),
}

#[derive(CandidType)]
struct InstallArgs {
    mode: InstallMode,
    canister_id: Principal,
    wasm_module: serde_bytes::ByteBuf,
    arg: serde_bytes::ByteBuf,
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The verifier's module is over the 2 MiB ingress limit, so it is installed gzip-compressed (as dfx and icp-cli
/// do): the devnet accepts the compressed module through `install_code`, and an upgrade through the same call keeps
/// the canister's state.
#[tokio::test]
async fn gzipped_verifier_installs_and_upgrades_through_the_management_canister() {
    let devnet = Devnet::start(DevnetConfig::default()).expect("devnet starts");
    let who = ed25519_identity(41);
    let me = who.sender().unwrap();
    let agent = agent(devnet.url(), who).await;
    let mgmt = Principal::management_canister();
    let gz = gzip(VERIFIER_WASM);
    let limit = devnet.limits().max_ingress_bytes;
    assert!(VERIFIER_WASM.len() > limit && gz.len() < limit - 4096, "{} / {} bytes", VERIFIER_WASM.len(), gz.len());

    let out = agent
        .update(&mgmt, "provisional_create_canister_with_cycles")
        .with_effective_canister_id(opml_devnet::replica::canister_id_from_u64(0))
        .with_arg(Encode!(&CreateArgs { amount: None, settings: None }).unwrap())
        .call_and_wait()
        .await
        .unwrap();
    let id = Decode!(&out, Created).unwrap().canister_id;
    let cfg = config(devnet.ledger_id(), devnet.ledger_fee() as u64);
    let install = |mode: InstallMode, wasm: &[u8], arg: Vec<u8>| InstallArgs {
        mode,
        canister_id: id,
        wasm_module: serde_bytes::ByteBuf::from(wasm.to_vec()),
        arg: serde_bytes::ByteBuf::from(arg),
    };
    let send = |agent: &Agent, args: InstallArgs| {
        let agent = agent.clone();
        async move {
            agent
                .update(&mgmt, "install_code")
                .with_effective_canister_id(id)
                .with_arg(Encode!(&args).unwrap())
                .call_and_wait()
                .await
        }
    };
    // Uncompressed, the module does not fit in an ingress message.
    let e = send(&agent, install(InstallMode::Install, VERIFIER_WASM, Encode!(&cfg).unwrap())).await;
    assert!(e.is_err(), "a 3 MB ingress message is refused");
    assert_eq!(devnet.module_hash(id), None);
    send(&agent, install(InstallMode::Install, &gz, Encode!(&cfg).unwrap())).await.expect("gzipped install");
    let hash: [u8; 32] = sha2::Sha256::digest(&gz).into();
    assert_eq!(devnet.module_hash(id), Some(hash), "the module hash is of the bytes as installed");
    assert_eq!(query::<Config>(&agent, id, "config", ()).await, cfg);
    let r: CResult<Id> = update(&agent, id, "begin_upload", (BeginUpload { wasm_sha3: sha3(b"abc"), size: 3 },)).await;
    let upload = r.expect("the controller may upload");

    // Someone else cannot upgrade it; the controller can, and the upload survives.
    let other = common::agent(devnet.url(), ed25519_identity(42)).await;
    let e = send(&other, install(InstallMode::Upgrade(None), &gz, Encode!(&None::<Config>).unwrap())).await;
    assert_eq!(reject_of(e.unwrap_err()).2.as_deref(), Some("IC0512"));
    let digest = devnet.state_digest(id).unwrap();
    send(&agent, install(InstallMode::Upgrade(None), &gz, Encode!(&None::<Config>).unwrap())).await.expect("upgrade");
    assert_eq!(devnet.state_digest(id).unwrap().stable, digest.stable);
    let u: CResult<Upload> = query(&agent, id, "get_upload", (upload,)).await;
    let u = u.unwrap();
    assert_eq!((u.owner, u.size, u.received), (me, 3, 0));
    assert_eq!(devnet.instruction_counts(id)["post_upgrade"].calls, 1);
}

/// Registering the 1.3 MB MiniLM guest: every `finish_upload` call (validate, compile, derive the program
/// commitment, spread over calls within the canister's per-call budget) must fit the 40B instruction limit of one
/// update, and its 1 MiB chunks (the canister's maximum) the 2 MiB ingress limit, through ic-agent (about 10 s; the
/// figures printed with `--nocapture` are in docs/benchmarks.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_registration_fits_the_update_limit() {
    let devnet = Devnet::start(DevnetConfig::default()).expect("devnet starts");
    let who = ed25519_identity(51);
    let operator = who.sender().unwrap();
    let agent = agent(devnet.url(), who).await;
    let id = devnet
        .install_canister(VERIFIER_WASM, Encode!(&config(devnet.ledger_id(), 10_000)).unwrap(), vec![operator])
        .unwrap();
    let wasm = opml_guests::MINILM;
    let r: CResult<Id> =
        update(&agent, id, "begin_upload", (BeginUpload { wasm_sha3: sha3(wasm), size: wasm.len() as u64 },)).await;
    let upload = r.unwrap();
    let mut offset = 0u64;
    for part in wasm.chunks(1 << 20) {
        let r: CResult<u64> =
            update(&agent, id, "upload_chunk", (UploadChunk { upload, offset, bytes: part.to_vec() },)).await;
        offset = r.unwrap();
    }
    let started = std::time::Instant::now();
    let mut calls = Vec::new();
    let program = loop {
        let r: CResult<RegistrationStep> = update(&agent, id, "finish_upload", (upload,)).await;
        calls.push(devnet.instruction_counts(id)["finish_upload"].last_instructions);
        match r.unwrap() {
            RegistrationStep::Registered { program } => break program,
            step => assert!(calls.len() < 10, "still {step:?} after {} calls", calls.len()),
        }
    };
    let counts = devnet.instruction_counts(id);
    eprintln!(
        "finish_upload of MiniLM ({} bytes): {} calls of {calls:?} instructions, {} in all ({:.1} s on the devnet); \
         upload_chunk (1 MiB): {}",
        wasm.len(),
        calls.len(),
        calls.iter().sum::<u64>(),
        started.elapsed().as_secs_f64(),
        counts["upload_chunk"].max_instructions
    );
    let agents = opml_bisect::vm::VmVerifier::new()
        .register_guest(&GuestProgram::new(wasm).unwrap(), opml_vm::Limits::default())
        .unwrap();
    assert_eq!(program, agents);
    let limit = devnet.limits().update_instructions;
    assert!(calls.iter().all(|n| *n < limit), "{calls:?}: a call over the {limit} limit");
}

/// Calls that fail at once with a typed error (unknown ids, bad sizes) change nothing, and what they cost is the
/// Candid floor of the interface: decoding the argument and encoding a `Result<_, CanisterError>` reply, whose type
/// table (the whole error enum) goes out with every reply (computed once per reply type by the canister, see
/// `verifier-canister/src/reply.rs`, so what is left is mostly the argument). Printed with `--nocapture` for
/// docs/benchmarks.md.
#[test]
fn typed_errors_change_nothing_and_show_the_interface_floor() {
    let devnet = Devnet::start(DevnetConfig { bind: None, ..DevnetConfig::default() }).expect("devnet starts");
    let op = Principal::from_slice(&[7; 29]);
    let id = devnet
        .install_canister(VERIFIER_WASM, Encode!(&config(devnet.ledger_id(), 10_000)).unwrap(), vec![op])
        .unwrap();
    let r =
        devnet.update_call(op, id, "begin_upload", Encode!(&BeginUpload { wasm_sha3: sha3(b"abc"), size: 3 }).unwrap());
    assert_eq!(Decode!(&r.unwrap(), CResult<Id>).unwrap(), Ok(0));
    let mut report = Vec::new();
    let mut check = |method: &str, arg: Vec<u8>, query: bool, expect: CanisterError| {
        let before = devnet.state_digest(id).unwrap();
        let out = if query { devnet.query_call(op, id, method, arg) } else { devnet.update_call(op, id, method, arg) };
        // The reply types differ only in their `Ok` side: try each shape these methods have.
        let out = out.unwrap_or_else(|e| panic!("{method}: {e}"));
        let err = Decode!(&out, CResult<Id>)
            .map(|r| r.err())
            .or_else(|_| Decode!(&out, CResult<()>).map(|r| r.err()))
            .or_else(|_| Decode!(&out, CResult<Upload>).map(|r| r.err()))
            .or_else(|_| Decode!(&out, CResult<ClaimState>).map(|r| r.err()))
            .unwrap_or_else(|e| panic!("{method}: undecodable reply: {e}"));
        assert_eq!(err, Some(expect), "{method}");
        assert_eq!(devnet.state_digest(id).unwrap().stable, before.stable, "{method} changed stable memory");
        let key = if query { format!("{method} (query)") } else { method.to_string() };
        report.push((key.clone(), devnet.instruction_counts(id)[&key].last_instructions));
    };
    check(
        "begin_upload",
        Encode!(&BeginUpload { wasm_sha3: sha3(b""), size: 0 }).unwrap(),
        false,
        CanisterError::ProgramSize { size: 0, max: 4 << 20 },
    );
    check("finalize", Encode!(&9u64).unwrap(), false, CanisterError::UnknownClaim { claim: 9 });
    check("timeout", Encode!(&9u64, &0u32).unwrap(), false, CanisterError::UnknownClaim { claim: 9 });
    let play = PlayArgs { claim: 9, dispute: 0, seq: 0, mv: Move::Choose { index: 0 } };
    check("play", Encode!(&play).unwrap(), false, CanisterError::UnknownClaim { claim: 9 });
    check("get_upload", Encode!(&9u64).unwrap(), true, CanisterError::UnknownUpload { upload: 9 });
    check("get_claim_state", Encode!(&9u64).unwrap(), true, CanisterError::UnknownClaim { claim: 9 });
    for (method, n) in &report {
        eprintln!("typed error from `{method}`: {n} instructions");
    }
    let balance_of = devnet.query_call(op, id, "balance_of", Encode!(&op).unwrap()).unwrap();
    assert_eq!(Decode!(&balance_of, u64).unwrap(), 0);
    eprintln!(
        "`balance_of (query)` (a u64 reply): {} instructions",
        devnet.instruction_counts(id)["balance_of (query)"].last_instructions
    );
}

/// A move's cost against the number of disputes on its claim. The claim record (kept in stable memory and loaded and
/// stored by every move) holds each dispute's current state, not its history, so a move costs a fixed amount plus
/// a small share per dispute of the claim (the output bytes are stored apart and never loaded by a move). Measured:
/// the worker's first move (PostRoots of the segment phase, with the roots' Merkle proofs) in the first dispute of a
/// claim and in its 32nd. Printed with `--nocapture` for docs/benchmarks.md.
#[test]
fn move_cost_with_many_disputes_on_one_claim() {
    const DISPUTES: u32 = 32;
    let devnet = Devnet::start(DevnetConfig { bind: None, ..DevnetConfig::default() }).expect("devnet starts");
    let op = Principal::from_slice(&[7; 29]);
    let fee = devnet.ledger_fee();
    let cfg = config(devnet.ledger_id(), fee as u64);
    let id = devnet.install_canister(VERIFIER_WASM, Encode!(&cfg).unwrap(), vec![op]).unwrap();
    let call = |who: Principal, method: &str, arg: Vec<u8>| {
        devnet.update_call(who, id, method, arg).unwrap_or_else(|e| panic!("{method}: {e:?}"))
    };
    let fund = |who: Principal, amount: u64| {
        devnet.mint(who, u128::from(amount) + 3 * fee).unwrap();
        let approve = approve_deposit(id, amount, fee);
        let r = devnet.update_call(who, devnet.ledger_id(), "icrc2_approve", Encode!(&approve).unwrap()).unwrap();
        Decode!(&r, Result<Nat, LedgerError>).unwrap().expect("approve");
        let r = call(who, "deposit", Encode!(&DepositArgs { from_subaccount: None, amount }).unwrap());
        assert_eq!(Decode!(&r, CResult<u64>).unwrap(), Ok(amount));
    };
    let wat = Guest::wat();
    let r = call(op, "begin_upload", Encode!(&BeginUpload { wasm_sha3: sha3(&wat.wasm), size: 272 }).unwrap());
    let upload = Decode!(&r, CResult<Id>).unwrap().unwrap();
    assert_eq!(wat.wasm.len(), 272);
    let chunk = UploadChunk { upload, offset: 0, bytes: wat.wasm.clone() };
    Decode!(&call(op, "upload_chunk", Encode!(&chunk).unwrap()), CResult<u64>).unwrap().unwrap();
    let step = Decode!(&call(op, "finish_upload", Encode!(&upload).unwrap()), CResult<RegistrationStep>).unwrap();
    let program = step.unwrap().registered().expect("a 272-byte guest registers in one call");

    let (requester, worker) = (Principal::from_slice(&[8; 29]), Principal::from_slice(&[9; 29]));
    let challengers: Vec<Principal> = (0..DISPUTES).map(|i| Principal::from_slice(&[100 + i as u8; 29])).collect();
    fund(requester, REWARD);
    fund(worker, STAKE);
    for c in &challengers {
        fund(*c, BOND);
    }
    let spec = PostTask {
        program,
        input_root: wat.input_root,
        reward: REWARD,
        challenge_window_ns: HOUR,
        clock_ns: HOUR,
        worker_stake: STAKE,
    };
    let task = Decode!(&call(requester, "post_task", Encode!(&spec).unwrap()), CResult<Id>).unwrap().unwrap();
    let liar = wat.liar();
    let (args, tree) = wat.claim(program, task, &liar);
    let claim = Decode!(&call(worker, "submit_claim", Encode!(&args).unwrap()), CResult<Id>).unwrap().unwrap();

    let open = |c: Principal| {
        let r = call(c, "open_dispute", Encode!(&claim).unwrap());
        let d = Decode!(&r, CResult<u32>).unwrap().unwrap();
        (d, devnet.instruction_counts(id)["open_dispute"].last_instructions)
    };
    let worker_moves = |d: u32| {
        let r = devnet.query_call(op, id, "get_claim_state", Encode!(&claim).unwrap()).unwrap();
        let state = Decode!(&r, CResult<ClaimState>).unwrap().unwrap();
        let dispute = state.dispute(d).unwrap();
        assert_eq!(dispute.mover(), Some(Role::Worker));
        let mv = players::worker_move(dispute, &state.config, &liar, &tree).unwrap();
        assert!(matches!((&dispute.phase, &mv), (Phase::Segments(_), Move::PostRoots { .. })));
        let args = PlayArgs { claim, dispute: d, seq: dispute.seq, mv };
        let r = call(worker, "play", Encode!(&args).unwrap());
        Decode!(&r, CResult<()>).unwrap().unwrap();
        devnet.instruction_counts(id)["play"].last_instructions
    };
    let (first, open_first) = open(challengers[0]);
    let move_first = worker_moves(first);
    let mut open_last = 0;
    let mut last = 0;
    for c in &challengers[1..] {
        (last, open_last) = open(*c);
    }
    assert_eq!(last, DISPUTES - 1);
    let move_last = worker_moves(last);
    eprintln!(
        "PostRoots (segment phase) in dispute 1 of 1: {move_first} instructions; in dispute {DISPUTES} of \
         {DISPUTES}: {move_last} ({} per further dispute); open_dispute: {open_first} (first), {open_last} \
         (last)",
        (move_last.saturating_sub(move_first)) / u64::from(DISPUTES - 1),
    );
    assert!(move_last < 10_000_000, "a move with {DISPUTES} disputes on the claim: {move_last} instructions");
}
