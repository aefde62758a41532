//! The pure core: programs, tasks, claims, disputes, balances and withdrawals over stable maps. No ic-cdk types;
//! every transition is synchronous and takes the caller and the time as arguments.
//!
//! **Atomicity.** Every method checks everything it needs (including that every `Lock` effect of a game
//! transition is covered by a free balance) before its first write, so an error leaves the state exactly as it
//! was. The writes themselves cannot fail (a trap while writing rolls the whole message back on the IC).
//!
//! **Conservation.** Internal money is in one of five places: free balances, escrow (stakes and bonds of claims,
//! rewards of tasks), pending withdrawals, burnt. [`Totals`] tracks each, and
//! `balances + locked + pending_withdrawals + burned = deposited - withdrawn` holds after every call
//! ([`Core::audit`] recomputes each term from the maps).
#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::vec::Vec;

use candid::{Nat, Principal};
use ic_stable_structures::memory_manager::{MemoryManager, VirtualMemory};
use ic_stable_structures::{Memory, StableBTreeMap, StableCell};
use opml_bisect::{ClaimState, ClaimStatus, Dispute, Effect, GameConfig, Hash, Party, Phase, Transition};
use sha3::{Digest, Sha3_256};

use crate::error::{Error, Result};
use crate::storage::{ConfigCell, Meta, ids};
use crate::types::*;
use crate::vm::{Bound, Derivation, ProgramVm};

/// Largest chunk of a module upload (well under the 2 MiB ingress limit with the Candid envelope).
pub const MAX_CHUNK: u64 = 1 << 20;
/// The work one `finish_upload` call does, in units of about the cost of hashing one op into a program's code
/// tree (two SHA3-256 permutations, ~24.3k instructions by the IC's cost table; docs/benchmarks.md): ~19.5B
/// instructions, about half the IC's 40B per update. Loading a module is charged by its size (see
/// [`crate::vm_adapter::REWRITE_UNITS_PER_KIB`]).
pub const FINISH_UPLOAD_BUDGET: u64 = 800_000;
/// Largest module any configuration may accept.
pub const PROGRAM_BYTES_LIMIT: u64 = 64 << 20;
/// Largest output any configuration may accept.
pub const OUTPUT_BYTES_LIMIT: u64 = 1 << 20;
/// Largest page of a listing.
pub const MAX_PAGE: u32 = 100;
/// Most operators in the allow-list.
pub const MAX_OPERATORS: usize = 64;

type Mem<M> = VirtualMemory<M>;

/// The canister's whole state, over a stable memory `M`, with the VM `V`.
pub struct Core<M: Memory, V> {
    vm: V,
    config: StableCell<ConfigCell, Mem<M>>,
    meta: StableCell<Meta, Mem<M>>,
    programs: StableBTreeMap<[u8; 32], Program, Mem<M>>,
    uploads: StableBTreeMap<u64, Upload, Mem<M>>,
    chunks: StableBTreeMap<(u64, u64), Vec<u8>, Mem<M>>,
    tasks: StableBTreeMap<u64, Task, Mem<M>>,
    claims: StableBTreeMap<u64, ClaimRecord, Mem<M>>,
    live: StableBTreeMap<u64, (), Mem<M>>,
    balances: StableBTreeMap<Principal, u64, Mem<M>>,
    withdrawals: StableBTreeMap<u64, Withdrawal, Mem<M>>,
    owner_withdrawals: StableBTreeMap<(Principal, u64), (), Mem<M>>,
    outputs: StableBTreeMap<u64, Vec<u8>, Mem<M>>,
    /// The one registration in progress, on the heap: (upload, its derivation). Not state: it only saves the
    /// validation on the next `finish_upload` call; an upgrade or another upload's `finish_upload` drops it, and
    /// the next call starts over.
    derivation: Option<(Id, Box<dyn Derivation>)>,
    /// Work units per `finish_upload` call ([`FINISH_UPLOAD_BUDGET`] unless a test sets it).
    finish_upload_budget: u64,
}

/// Checks a configuration.
pub fn validate_config(c: &Config) -> Result<()> {
    let bad = |reason: &str| Err(Error::InvalidConfig { reason: reason.to_string() });
    game_config(c, c.min_challenge_window_ns, c.min_clock_ns, c.min_stake).validate()?;
    if c.min_challenge_window_ns > c.max_challenge_window_ns {
        return bad("min_challenge_window_ns > max_challenge_window_ns");
    }
    if c.min_clock_ns > c.max_clock_ns {
        return bad("min_clock_ns > max_clock_ns");
    }
    if c.min_stake == 0 {
        return bad("min_stake must be positive");
    }
    if c.challenger_bond == 0 {
        return bad("challenger_bond must be positive");
    }
    if !(1..=PROGRAM_BYTES_LIMIT).contains(&c.max_program_bytes) {
        return bad("max_program_bytes must be in 1..=64 MiB");
    }
    if c.max_output_bytes > OUTPUT_BYTES_LIMIT {
        return bad("max_output_bytes must be at most 1 MiB");
    }
    if c.operators.len() > MAX_OPERATORS {
        return bad("at most 64 operators");
    }
    Ok(())
}

/// The game configuration of a claim on a task with this window, clock and stake.
fn game_config(c: &Config, window_ns: u64, clock_ns: u64, stake: u64) -> GameConfig {
    GameConfig {
        arity: c.arity,
        max_segments: c.max_segments,
        max_segment_steps: c.max_segment_steps,
        clock_ns,
        challenge_window_ns: window_ns,
        worker_stake: stake,
        challenger_bond: c.challenger_bond,
        burn_bps: c.burn_bps,
    }
}

fn party(p: &Principal) -> Party {
    Party::new(p.as_slice()).expect("principals are at most 29 bytes")
}

fn principal(p: &Party) -> Principal {
    Principal::from_slice(p.as_bytes())
}

fn check_bounds(field: &str, value: u64, min: u64, max: u64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::OutOfBounds { field: field.to_string(), value, min, max })
    }
}

fn user(caller: &Caller) -> Result<Principal> {
    if caller.id == Principal::anonymous() { Err(Error::AnonymousCaller) } else { Ok(caller.id) }
}

fn check_subaccount(s: &Option<Vec<u8>>) -> Result<()> {
    match s {
        Some(b) if b.len() != 32 => Err(Error::InvalidSubaccount),
        _ => Ok(()),
    }
}

fn page_limit(limit: u32) -> usize {
    limit.clamp(1, MAX_PAGE) as usize
}

/// Pending balance changes of one call, checked before anything is written.
#[derive(Default)]
struct Plan {
    balances: BTreeMap<Principal, u64>,
    /// Changes of the totals (signed, applied at commit).
    balances_delta: i128,
    locked_delta: i128,
    burned: u128,
}

impl Plan {
    fn balance<M: Memory, V>(&self, core: &Core<M, V>, p: &Principal) -> u64 {
        self.balances.get(p).copied().unwrap_or_else(|| core.balance(p))
    }

    fn debit<M: Memory, V>(&mut self, core: &Core<M, V>, p: &Principal, amount: u64) -> Result<()> {
        let available = self.balance(core, p);
        if available < amount {
            return Err(Error::InsufficientBalance { needed: amount, available });
        }
        self.balances.insert(*p, available - amount);
        self.balances_delta -= i128::from(amount);
        Ok(())
    }

    fn credit<M: Memory, V>(&mut self, core: &Core<M, V>, p: &Principal, amount: u64) -> Result<()> {
        let next = self.balance(core, p).checked_add(amount).ok_or(Error::InvalidAmount)?;
        self.balances.insert(*p, next);
        self.balances_delta += i128::from(amount);
        Ok(())
    }

    /// Applies a game transition's effects to `escrow` (the claim's) and the balances.
    fn effects<M: Memory, V>(&mut self, core: &Core<M, V>, escrow: &mut u64, effects: &[Effect]) -> Result<()> {
        for e in effects {
            match e {
                Effect::Lock { from, amount } => {
                    self.debit(core, &principal(from), *amount)?;
                    *escrow = escrow.checked_add(*amount).ok_or(Error::InvalidAmount)?;
                    self.locked_delta += i128::from(*amount);
                }
                Effect::Payout { to, amount } => {
                    // The rules never pay out more than was locked for the claim; checked all the same.
                    *escrow = escrow.checked_sub(*amount).ok_or(Error::InvalidAmount)?;
                    self.credit(core, &principal(to), *amount)?;
                    self.locked_delta -= i128::from(*amount);
                }
                Effect::Burn { amount } => {
                    *escrow = escrow.checked_sub(*amount).ok_or(Error::InvalidAmount)?;
                    self.burned += u128::from(*amount);
                    self.locked_delta -= i128::from(*amount);
                }
            }
        }
        Ok(())
    }
}

fn add(total: u128, delta: i128) -> u128 {
    // Totals are sums of stored non-negative amounts: a negative result is a bug, not an input error.
    u128::try_from(total as i128 + delta).expect("totals stay non-negative")
}

impl<M: Memory, V> Core<M, V> {
    /// Free balance of `p`.
    pub fn balance(&self, p: &Principal) -> u64 {
        self.balances.get(p).unwrap_or(0)
    }
}

impl<M: Memory, V: ProgramVm> Core<M, V> {
    fn open(memory: M, vm: V) -> Self {
        let mm = MemoryManager::init(memory);
        Core {
            vm,
            config: StableCell::init(mm.get(ids::CONFIG), ConfigCell::default()),
            meta: StableCell::init(mm.get(ids::META), Meta::default()),
            programs: StableBTreeMap::init(mm.get(ids::PROGRAMS)),
            uploads: StableBTreeMap::init(mm.get(ids::UPLOADS)),
            chunks: StableBTreeMap::init(mm.get(ids::CHUNKS)),
            tasks: StableBTreeMap::init(mm.get(ids::TASKS)),
            claims: StableBTreeMap::init(mm.get(ids::CLAIMS)),
            live: StableBTreeMap::init(mm.get(ids::LIVE)),
            balances: StableBTreeMap::init(mm.get(ids::BALANCES)),
            withdrawals: StableBTreeMap::init(mm.get(ids::WITHDRAWALS)),
            owner_withdrawals: StableBTreeMap::init(mm.get(ids::OWNER_WITHDRAWALS)),
            outputs: StableBTreeMap::init(mm.get(ids::OUTPUTS)),
            derivation: None,
            finish_upload_budget: FINISH_UPLOAD_BUDGET,
        }
    }

    /// A fresh state (install) with `config`.
    pub fn init(memory: M, vm: V, config: Config) -> Result<Self> {
        validate_config(&config)?;
        let mut core = Self::open(memory, vm);
        core.config.set(ConfigCell(Some(config)));
        Ok(core)
    }

    /// The state kept in `memory` (upgrade); `config`, if given, replaces the stored one.
    pub fn load(memory: M, vm: V, config: Option<Config>) -> Result<Self> {
        let mut core = Self::open(memory, vm);
        if core.config.get().0.is_none() && config.is_none() {
            return Err(Error::InvalidConfig { reason: "no stored configuration and none given".to_string() });
        }
        if let Some(c) = config {
            validate_config(&c)?;
            core.config.set(ConfigCell(Some(c)));
        }
        Ok(core)
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.config.get().0.clone().expect("configured at init")
    }

    fn meta(&self) -> Meta {
        self.meta.get().clone()
    }

    fn is_operator(&self, caller: &Caller) -> bool {
        caller.is_controller || self.config().operators.contains(&caller.id)
    }

    fn require_operator(&self, caller: &Caller) -> Result<()> {
        if self.is_operator(caller) { Ok(()) } else { Err(Error::NotOperator) }
    }

    fn commit_plan(&mut self, plan: Plan, meta: &mut Meta) {
        for (p, v) in plan.balances {
            if v == 0 {
                self.balances.remove(&p);
            } else {
                self.balances.insert(p, v);
            }
        }
        let t = &mut meta.totals;
        t.balances = add(t.balances, plan.balances_delta);
        t.locked = add(t.locked, plan.locked_delta);
        t.burned += plan.burned;
    }

    // ----------------------------------------------------------------------------------------------------------
    // Programs

    /// Operator: starts a chunked upload of a module of `size` bytes hashing to `wasm_sha3`.
    pub fn begin_upload(&mut self, caller: &Caller, args: BeginUpload, now_ns: u64) -> Result<Id> {
        self.require_operator(caller)?;
        let max = self.config().max_program_bytes;
        if args.size == 0 || args.size > max {
            return Err(Error::ProgramSize { size: args.size, max });
        }
        let mut meta = self.meta();
        let id = meta.next_upload;
        meta.next_upload += 1;
        let upload = Upload {
            id,
            owner: caller.id,
            wasm_sha3: args.wasm_sha3,
            size: args.size,
            received: 0,
            chunks: 0,
            started_at_ns: now_ns,
            status: UploadStatus::Receiving,
        };
        self.uploads.insert(id, upload);
        self.meta.set(meta);
        Ok(id)
    }

    fn own_upload(&self, caller: &Caller, id: Id) -> Result<Upload> {
        self.require_operator(caller)?;
        let u = self.uploads.get(&id).ok_or(Error::UnknownUpload { upload: id })?;
        if u.owner != caller.id && !caller.is_controller {
            return Err(Error::NotOwner);
        }
        if u.status != UploadStatus::Receiving {
            return Err(Error::UploadFinished);
        }
        Ok(u)
    }

    /// Operator (the upload's owner): appends `bytes` at `offset` (which must be what was received so far; after
    /// an interruption, `get_upload` tells where to resume). Returns the bytes received.
    pub fn upload_chunk(&mut self, caller: &Caller, id: Id, offset: u64, bytes: &[u8]) -> Result<u64> {
        let mut u = self.own_upload(caller, id)?;
        let len = bytes.len() as u64;
        if len == 0 || len > MAX_CHUNK {
            return Err(Error::ChunkSize { len, max: MAX_CHUNK });
        }
        if offset != u.received {
            return Err(Error::WrongOffset { expected: u.received, got: offset });
        }
        if u.received + len > u.size {
            return Err(Error::ChunkPastEnd { size: u.size });
        }
        self.chunks.insert((id, offset), bytes.to_vec());
        u.received += len;
        u.chunks += 1;
        let received = u.received;
        self.uploads.insert(id, u);
        Ok(received)
    }

    fn upload_bytes(&self, id: Id) -> Vec<u8> {
        let mut wasm = Vec::new();
        for entry in self.chunks.range((id, 0)..=(id, u64::MAX)) {
            wasm.extend_from_slice(&entry.value());
        }
        wasm
    }

    /// Operator (the upload's owner): registers the uploaded module, over as many calls as it takes. The first
    /// call checks the module's size and hash; then each call does at most [`FINISH_UPLOAD_BUDGET`] of the VM's
    /// work (validating and rewriting the module, compiling it, hashing its code tree: the first piece always
    /// runs) and answers `Rewritten` or `Committing` until the program is derived; the call that completes it
    /// registers the program and answers `Registered`. Work in progress is kept on the heap for one upload at a
    /// time (see `derivation`); if it is gone, the call starts over.
    pub fn finish_upload(&mut self, caller: &Caller, id: Id, now_ns: u64) -> Result<RegistrationStep> {
        let mut u = self.own_upload(caller, id)?;
        if u.received != u.size {
            return Err(Error::UploadIncomplete { received: u.received, size: u.size });
        }
        let mut derivation = match self.derivation.take_if(|(cached, _)| *cached == id) {
            Some((_, d)) => d,
            None => {
                let wasm = self.upload_bytes(id);
                let got = Hash(Sha3_256::digest(&wasm).into());
                if got != u.wasm_sha3 {
                    return Err(Error::WasmHashMismatch { got });
                }
                self.vm.start_derive(wasm)
            }
        };
        derivation.advance(self.finish_upload_budget).map_err(|reason| Error::InvalidProgram { reason })?;
        let Some(derived) = derivation.finish() else {
            let step = derivation.progress();
            // One registration in progress at a time bounds the heap this takes.
            self.derivation = Some((id, derivation));
            return Ok(step);
        };
        // (A duplicate's finished derivation is dropped: it would only fail again.)
        if self.programs.contains_key(&derived.program.0) {
            return Err(Error::ProgramExists { program: derived.program });
        }
        let program = Program {
            program: derived.program,
            commitment: derived.data,
            wasm_sha3: u.wasm_sha3,
            size: u.size,
            upload: id,
            registered_by: caller.id,
            registered_at_ns: now_ns,
        };
        self.programs.insert(derived.program.0, program);
        u.status = UploadStatus::Registered { program: derived.program };
        self.uploads.insert(id, u);
        Ok(RegistrationStep::Registered { program: derived.program })
    }

    /// Sets the work of one `finish_upload` call (default [`FINISH_UPLOAD_BUDGET`]; not kept by an upgrade): for
    /// tests of registration over several calls with small modules.
    pub fn set_finish_upload_budget(&mut self, ops: u64) {
        self.finish_upload_budget = ops.max(1);
    }

    /// Operator (the upload's owner): drops an unfinished upload and its chunks.
    pub fn abort_upload(&mut self, caller: &Caller, id: Id) -> Result<()> {
        self.own_upload(caller, id)?;
        if self.derivation.as_ref().is_some_and(|(cached, _)| *cached == id) {
            self.derivation = None;
        }
        let keys: Vec<(u64, u64)> = self.chunks.keys_range((id, 0)..=(id, u64::MAX)).collect();
        for k in keys {
            self.chunks.remove(&k);
        }
        self.uploads.remove(&id);
        Ok(())
    }

    /// An upload.
    pub fn upload(&self, id: Id) -> Result<Upload> {
        self.uploads.get(&id).ok_or(Error::UnknownUpload { upload: id })
    }

    /// A registered program.
    pub fn program(&self, program: &Hash) -> Result<Program> {
        self.programs.get(&program.0).ok_or(Error::UnknownProgram { program: *program })
    }

    /// Registered programs in hash order, starting after `after`.
    pub fn list_programs(&self, after: Option<Hash>, limit: u32) -> Vec<Program> {
        let iter = match after {
            Some(h) => self.programs.range((core::ops::Bound::Excluded(h.0), core::ops::Bound::Unbounded)),
            None => self.programs.iter(),
        };
        iter.take(page_limit(limit)).map(|e| e.value()).collect()
    }

    /// Up to `len` (at most [`MAX_CHUNK`]) bytes of a registered program's module from `offset`.
    pub fn program_wasm(&self, program: &Hash, offset: u64, len: u64) -> Result<Vec<u8>> {
        let p = self.program(program)?;
        let end = offset.saturating_add(len.min(MAX_CHUNK)).min(p.size);
        let mut out = Vec::new();
        if offset >= end {
            return Ok(out);
        }
        for entry in self.chunks.range((p.upload, 0)..=(p.upload, end - 1)) {
            let start = entry.key().1;
            let chunk = entry.value();
            let stop = start + chunk.len() as u64;
            if stop <= offset {
                continue;
            }
            let a = offset.max(start) - start;
            let b = end.min(stop) - start;
            out.extend_from_slice(&chunk[a as usize..b as usize]);
        }
        Ok(out)
    }

    // ----------------------------------------------------------------------------------------------------------
    // Tasks

    /// Posts a task; locks the reward from the requester's free balance.
    pub fn post_task(&mut self, caller: &Caller, spec: PostTask, now_ns: u64) -> Result<Id> {
        let requester = user(caller)?;
        let c = self.config();
        self.program(&spec.program)?;
        check_bounds(
            "challenge_window_ns",
            spec.challenge_window_ns,
            c.min_challenge_window_ns,
            c.max_challenge_window_ns,
        )?;
        check_bounds("clock_ns", spec.clock_ns, c.min_clock_ns, c.max_clock_ns)?;
        check_bounds("worker_stake", spec.worker_stake, c.min_stake, u64::MAX)?;
        let mut plan = Plan::default();
        plan.debit(self, &requester, spec.reward)?;
        plan.locked_delta += i128::from(spec.reward);
        let mut meta = self.meta();
        let id = meta.next_task;
        meta.next_task += 1;
        let task = Task { id, requester, spec, posted_at_ns: now_ns, status: TaskStatus::Open, claims: Vec::new() };
        self.commit_plan(plan, &mut meta);
        self.tasks.insert(id, task);
        self.meta.set(meta);
        Ok(id)
    }

    /// Requester: cancels an open task (no live claim) and gets the reward back.
    pub fn cancel_task(&mut self, caller: &Caller, id: Id) -> Result<()> {
        let mut task = self.task(id)?;
        if task.requester != caller.id {
            return Err(Error::NotOwner);
        }
        if task.status != TaskStatus::Open {
            return Err(Error::TaskNotOpen);
        }
        let mut plan = Plan::default();
        plan.credit(self, &task.requester, task.spec.reward)?;
        plan.locked_delta -= i128::from(task.spec.reward);
        task.status = TaskStatus::Cancelled;
        let mut meta = self.meta();
        self.commit_plan(plan, &mut meta);
        self.tasks.insert(id, task);
        self.meta.set(meta);
        Ok(())
    }

    /// A task.
    pub fn task(&self, id: Id) -> Result<Task> {
        self.tasks.get(&id).ok_or(Error::UnknownTask { task: id })
    }

    /// Tasks by id from `start`.
    pub fn list_tasks(&self, start: Id, limit: u32) -> TaskPage {
        let (items, next) = page(self.tasks.range(start..).map(|e| e.value()), limit, |t| t.id);
        TaskPage { items, next }
    }

    // ----------------------------------------------------------------------------------------------------------
    // Claims and disputes

    fn claim_record(&self, id: Id) -> Result<ClaimRecord> {
        self.claims.get(&id).ok_or(Error::UnknownClaim { claim: id })
    }

    /// Worker: submits a claim on an open task with its output; locks the task's stake.
    pub fn submit_claim(&mut self, caller: &Caller, args: SubmitClaim, now_ns: u64) -> Result<Id> {
        let worker = user(caller)?;
        let c = self.config();
        let mut task = self.task(args.task)?;
        if task.status != TaskStatus::Open {
            return Err(Error::TaskNotOpen);
        }
        if args.claim.program != task.spec.program || args.claim.input_root != task.spec.input_root {
            return Err(Error::ClaimDoesNotMatchTask);
        }
        check_bounds("output bytes", args.output.len() as u64, 0, c.max_output_bytes)?;
        let got = self.vm.output_hash(&args.output);
        if got != args.claim.output_hash {
            return Err(Error::OutputMismatch { got });
        }
        let program = self.program(&task.spec.program)?;
        let game = game_config(&c, task.spec.challenge_window_ns, task.spec.clock_ns, task.spec.worker_stake);
        let verifier = Bound { vm: &self.vm, program: program.program, data: &program.commitment };
        let t = ClaimState::submit(&game, party(&worker), args.claim, &args.evidence, &verifier, now_ns)?;
        let mut meta = self.meta();
        let id = meta.next_claim;
        let record = ClaimRecord { id, task: task.id, escrow: 0, state: t.state.clone() };
        let mut plan = Plan::default();
        let mut escrow = 0;
        plan.effects(self, &mut escrow, &t.effects)?;
        // Checked; now write.
        meta.next_claim += 1;
        task.status = TaskStatus::Claimed { claim: id };
        task.claims.push(id);
        self.commit_plan(plan, &mut meta);
        self.claims.insert(id, ClaimRecord { escrow, ..record });
        self.outputs.insert(id, args.output);
        self.tasks.insert(task.id, task);
        self.live.insert(id, ());
        self.meta.set(meta);
        Ok(id)
    }

    /// Applies a game transition to a stored claim: effects, the task's reward on finality, the task reopening
    /// on invalidation. Checks everything before writing.
    fn transition(&mut self, mut record: ClaimRecord, t: Transition) -> Result<()> {
        let before = record.state.status;
        let mut plan = Plan::default();
        plan.effects(self, &mut record.escrow, &t.effects)?;
        record.state = t.state;
        let mut task_update = None;
        match (before, record.state.status) {
            (ClaimStatus::Pending, ClaimStatus::Final { .. }) => {
                let mut task = self.task(record.task)?;
                plan.credit(self, &principal(&record.state.worker), task.spec.reward)?;
                plan.locked_delta -= i128::from(task.spec.reward);
                task.status = TaskStatus::Done { claim: record.id };
                task_update = Some(task);
            }
            (ClaimStatus::Pending, ClaimStatus::Invalidated { .. }) => {
                let mut task = self.task(record.task)?;
                task.status = TaskStatus::Open;
                task_update = Some(task);
            }
            _ => {}
        }
        let mut meta = self.meta();
        self.commit_plan(plan, &mut meta);
        if record.state.status != ClaimStatus::Pending {
            self.live.remove(&record.id);
        }
        if let Some(task) = task_update {
            self.tasks.insert(task.id, task);
        }
        self.claims.insert(record.id, record);
        self.meta.set(meta);
        Ok(())
    }

    /// Anyone but the worker: opens a dispute against a pending claim within its window; locks the bond.
    pub fn open_dispute(&mut self, caller: &Caller, claim: Id, now_ns: u64) -> Result<u32> {
        let challenger = user(caller)?;
        let record = self.claim_record(claim)?;
        let (t, id) = record.state.open_dispute(party(&challenger), now_ns)?;
        self.transition(record, t)?;
        Ok(id)
    }

    /// A party of the dispute: plays a move.
    pub fn play(&mut self, caller: &Caller, args: PlayArgs, now_ns: u64) -> Result<()> {
        let record = self.claim_record(args.claim)?;
        let program = self.program(&record.state.claim.program)?;
        let verifier = Bound { vm: &self.vm, program: program.program, data: &program.commitment };
        let t = record.state.play(args.dispute, &party(&caller.id), args.seq, &args.mv, &verifier, now_ns)?;
        self.transition(record, t)
    }

    /// Anyone: ends a dispute whose mover ran out of time.
    pub fn timeout(&mut self, claim: Id, dispute: u32, now_ns: u64) -> Result<()> {
        let record = self.claim_record(claim)?;
        let t = record.state.timeout(dispute, now_ns)?;
        self.transition(record, t)
    }

    /// Anyone: makes a claim final after its window with no open dispute; returns the stake and pays the reward.
    pub fn finalize(&mut self, claim: Id, now_ns: u64) -> Result<()> {
        let record = self.claim_record(claim)?;
        let t = record.state.finalize(now_ns)?;
        self.transition(record, t)
    }

    /// Applies due finalizations and timeouts to up to `max_claims` pending claims, continuing where the last
    /// sweep stopped (what the timer does; the public calls reach the same outcomes).
    pub fn sweep(&mut self, now_ns: u64, max_claims: u32) -> SweepReport {
        let mut report = SweepReport::default();
        let mut meta = self.meta();
        let mut ids: Vec<u64> = self.live.keys_range(meta.sweep_cursor..).take(max_claims as usize).collect();
        if ids.len() < max_claims as usize {
            let more = max_claims as usize - ids.len();
            ids.extend(self.live.keys_range(..meta.sweep_cursor).take(more));
        }
        for id in &ids {
            report.visited += 1;
            if self.finalize(*id, now_ns).is_ok() {
                report.finalized += 1;
                continue;
            }
            let Ok(record) = self.claim_record(*id) else { continue };
            for (d, dispute) in record.state.disputes.iter().enumerate() {
                if dispute.deadline().is_some_and(|dl| now_ns > dl) && self.timeout(*id, d as u32, now_ns).is_ok() {
                    report.timeouts += 1;
                }
            }
        }
        meta = self.meta();
        meta.sweep_cursor = ids.last().map_or(0, |l| l + 1);
        self.meta.set(meta);
        report
    }

    fn claim_view(&self, r: ClaimRecord) -> ClaimView {
        let s = &r.state;
        ClaimView {
            id: r.id,
            task: r.task,
            worker: principal(&s.worker),
            claim: s.claim.clone(),
            status: s.status,
            submitted_at_ns: s.submitted_at_ns,
            window_end_ns: s.window_end_ns(),
            stake: s.stake,
            escrow: r.escrow,
            disputes: s.disputes.len() as u32,
            open_disputes: s.open_disputes(),
            config: s.config.clone(),
            output: self.outputs.get(&r.id).unwrap_or_default(),
        }
    }

    /// A claim.
    pub fn claim(&self, id: Id) -> Result<ClaimView> {
        self.claim_record(id).map(|r| self.claim_view(r))
    }

    /// The stored claim with its game state.
    pub fn claim_state(&self, id: Id) -> Result<ClaimState> {
        self.claim_record(id).map(|r| r.state)
    }

    /// Claims by id from `start`.
    pub fn list_claims(&self, start: Id, limit: u32) -> ClaimPage {
        let (items, next) = page(self.claims.range(start..).map(|e| self.claim_view(e.value())), limit, |c| c.id);
        ClaimPage { items, next }
    }

    fn dispute_view(r: &ClaimRecord, id: u32, d: &Dispute) -> DisputeView {
        let interval = match &d.phase {
            Phase::Segments(b) | Phase::Steps { bisection: b, .. } => (b.lo, b.hi),
            Phase::CommitSteps { segment, .. } => (*segment, segment + 1),
            Phase::ProveStep { step, .. } => (*step, step + 1),
        };
        let expected = d.expected();
        DisputeView {
            claim: r.id,
            id,
            challenger: principal(&d.challenger),
            worker: principal(&r.state.worker),
            bond: d.bond,
            opened_at_ns: d.opened_at_ns,
            seq: d.seq,
            mover: expected.map(|e| e.0),
            expected: expected.map(|e| e.1),
            deadline_ns: d.deadline(),
            clock: d.clock.clone(),
            phase: d.phase.clone(),
            interval,
            points_to_post: d.points_to_post(r.state.config.arity),
            resolution: d.resolution,
        }
    }

    /// One dispute.
    pub fn dispute(&self, claim: Id, id: u32) -> Result<DisputeView> {
        let r = self.claim_record(claim)?;
        let d = r.state.dispute(id)?;
        Ok(Self::dispute_view(&r, id, d))
    }

    /// The disputes of a claim from `start`.
    pub fn list_disputes(&self, claim: Id, start: u32, limit: u32) -> Result<Vec<DisputeView>> {
        let r = self.claim_record(claim)?;
        Ok(r.state
            .disputes
            .iter()
            .enumerate()
            .skip(start as usize)
            .take(page_limit(limit))
            .map(|(i, d)| Self::dispute_view(&r, i as u32, d))
            .collect())
    }

    // ----------------------------------------------------------------------------------------------------------
    // Balances

    /// Checks a deposit before the ledger is called (so a bad one costs no ledger call).
    pub fn check_deposit(&self, caller: &Caller, args: &DepositArgs) -> Result<()> {
        let owner = user(caller)?;
        check_subaccount(&args.from_subaccount)?;
        if args.amount == 0 || self.balance(&owner).checked_add(args.amount).is_none() {
            return Err(Error::InvalidAmount);
        }
        Ok(())
    }

    /// Credits a deposit the ledger executed (`icrc2_transfer_from` returned a block).
    pub fn credit_deposit(&mut self, owner: &Principal, amount: u64) -> Result<u64> {
        let mut plan = Plan::default();
        plan.credit(self, owner, amount)?;
        let mut meta = self.meta();
        meta.totals.deposited += u128::from(amount);
        self.commit_plan(plan, &mut meta);
        self.meta.set(meta);
        Ok(self.balance(owner))
    }

    /// Starts a withdrawal: debits amount + fee and journals it as in flight (attempt 1). The caller then makes
    /// the ledger call described by [`Core::transfer_arg`] and reports with [`Core::withdrawal_outcome`].
    pub fn begin_withdrawal(&mut self, caller: &Caller, args: WithdrawArgs, now_ns: u64) -> Result<Withdrawal> {
        let owner = user(caller)?;
        let to = args.to.unwrap_or(Account { owner, subaccount: None });
        check_subaccount(&to.subaccount)?;
        if args.amount == 0 {
            return Err(Error::InvalidAmount);
        }
        let fee = self.config().ledger_fee;
        let needed = args.amount.checked_add(fee).ok_or(Error::InvalidAmount)?;
        let mut plan = Plan::default();
        plan.debit(self, &owner, needed)?;
        let mut meta = self.meta();
        let id = meta.next_withdrawal;
        meta.next_withdrawal += 1;
        meta.totals.pending_withdrawals += u128::from(needed);
        let w = Withdrawal {
            id,
            owner,
            to,
            amount: args.amount,
            fee,
            created_at_time: now_ns,
            attempts: 1,
            status: WithdrawalStatus::InFlight { attempt: 1, since_ns: now_ns },
        };
        self.commit_plan(plan, &mut meta);
        self.withdrawals.insert(id, w.clone());
        self.owner_withdrawals.insert((owner, id), ());
        self.meta.set(meta);
        Ok(w)
    }

    /// The `icrc1_transfer` argument of a withdrawal (identical for every attempt).
    pub fn transfer_arg(w: &Withdrawal) -> crate::ledger::TransferArg {
        crate::ledger::TransferArg {
            from_subaccount: None,
            to: w.to.clone(),
            amount: Nat::from(w.amount),
            fee: Some(Nat::from(w.fee)),
            memo: Some(w.memo()),
            created_at_time: Some(w.created_at_time),
        }
    }

    /// A withdrawal.
    pub fn withdrawal(&self, id: Id) -> Result<Withdrawal> {
        self.withdrawals.get(&id).ok_or(Error::UnknownWithdrawal { withdrawal: id })
    }

    fn settle_withdrawal(&mut self, mut w: Withdrawal, outcome: LedgerOutcome) -> Withdrawal {
        let needed = u128::from(w.amount) + u128::from(w.fee);
        let mut meta = self.meta();
        match outcome {
            LedgerOutcome::Executed(block) => {
                meta.totals.pending_withdrawals -= needed;
                meta.totals.withdrawn += needed;
                w.status = WithdrawalStatus::Completed { block };
            }
            LedgerOutcome::NotExecuted(reason) => {
                let mut plan = Plan::default();
                // Cannot overflow: the same amount was debited from this balance.
                plan.credit(self, &w.owner, w.amount + w.fee).expect("refund fits");
                meta.totals.pending_withdrawals -= needed;
                self.commit_plan(plan, &mut meta);
                w.status = WithdrawalStatus::Refunded { reason };
            }
            LedgerOutcome::Unknown(reason) => w.status = WithdrawalStatus::Unknown { reason },
        }
        self.withdrawals.insert(w.id, w.clone());
        self.meta.set(meta);
        w
    }

    /// Records the ledger's answer to attempt `attempt` of withdrawal `id`: completed, refunded, or unknown.
    pub fn withdrawal_outcome(&mut self, id: Id, attempt: u32, outcome: LedgerOutcome) -> Result<Withdrawal> {
        let w = self.withdrawal(id)?;
        match w.status {
            WithdrawalStatus::InFlight { attempt: a, .. } if a == attempt => Ok(self.settle_withdrawal(w, outcome)),
            _ => Err(Error::WithdrawalNotRetryable),
        }
    }

    /// Retries a withdrawal whose outcome is unknown (the owner or a controller): the same transfer again, which
    /// the ledger executes at most once. Returns the journal entry with the new attempt in flight.
    pub fn retry_withdrawal(&mut self, caller: &Caller, id: Id, now_ns: u64) -> Result<Withdrawal> {
        let mut w = self.withdrawal(id)?;
        if w.owner != caller.id && !caller.is_controller {
            return Err(Error::NotOwner);
        }
        if !matches!(w.status, WithdrawalStatus::Unknown { .. }) {
            return Err(Error::WithdrawalNotRetryable);
        }
        w.attempts += 1;
        w.status = WithdrawalStatus::InFlight { attempt: w.attempts, since_ns: now_ns };
        self.withdrawals.insert(id, w.clone());
        Ok(w)
    }

    /// Controller: settles a withdrawal whose outcome is unknown after checking the ledger (`block`: it was
    /// executed there; none: it was not and never will be, e.g. outside the deduplication window).
    pub fn resolve_withdrawal(&mut self, caller: &Caller, id: Id, block: Option<Nat>) -> Result<Withdrawal> {
        if !caller.is_controller {
            return Err(Error::NotController);
        }
        let w = self.withdrawal(id)?;
        if !matches!(w.status, WithdrawalStatus::Unknown { .. }) {
            return Err(Error::WithdrawalNotRetryable);
        }
        let outcome = match block {
            Some(b) => LedgerOutcome::Executed(b),
            None => LedgerOutcome::NotExecuted("resolved by a controller: not executed".to_string()),
        };
        Ok(self.settle_withdrawal(w, outcome))
    }

    /// Withdrawals of `owner` by id from `start`.
    pub fn list_withdrawals(&self, owner: Principal, start: Id, limit: u32) -> WithdrawalPage {
        let items = self
            .owner_withdrawals
            .keys_range((owner, start)..=(owner, u64::MAX))
            .filter_map(|(_, id)| self.withdrawals.get(&id));
        let (items, next) = page(items, limit, |w| w.id);
        WithdrawalPage { items, next }
    }

    // ----------------------------------------------------------------------------------------------------------
    // Accounting

    /// The running totals.
    pub fn totals(&self) -> Totals {
        self.meta.get().totals.clone()
    }

    /// The totals recomputed from the maps (O(everything): for tests and audits).
    pub fn audit(&self) -> Totals {
        let t = self.totals();
        let balances = self.balances.iter().map(|e| u128::from(e.value())).sum();
        let claims: u128 = self.claims.iter().map(|e| u128::from(e.value().escrow)).sum();
        let tasks: u128 = self.tasks.iter().map(|e| u128::from(e.value().reward_escrow())).sum();
        let pending = self
            .withdrawals
            .iter()
            .map(|e| e.value())
            .filter(Withdrawal::is_pending)
            .map(|w| u128::from(w.amount) + u128::from(w.fee))
            .sum();
        Totals { balances, locked: claims + tasks, pending_withdrawals: pending, ..t }
    }

    /// A digest of the whole state (for "nothing changed" checks in tests).
    #[doc(hidden)]
    pub fn digest(&self) -> Hash {
        use ic_stable_structures::Storable;
        let mut h = Sha3_256::new();
        let mut put = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        put(&self.config.get().to_bytes());
        put(&self.meta.get().to_bytes());
        for e in self.programs.iter() {
            put(e.key());
            put(&e.value().to_bytes());
        }
        for e in self.uploads.iter() {
            put(&e.value().to_bytes());
        }
        for e in self.chunks.iter() {
            put(&e.key().0.to_le_bytes());
            put(&e.key().1.to_le_bytes());
            put(&e.value());
        }
        for e in self.tasks.iter() {
            put(&e.value().to_bytes());
        }
        for e in self.claims.iter() {
            put(&e.value().to_bytes());
        }
        for e in self.live.iter() {
            put(&e.key().to_le_bytes());
        }
        for e in self.balances.iter() {
            put(e.key().as_slice());
            put(&e.value().to_le_bytes());
        }
        for e in self.withdrawals.iter() {
            put(&e.value().to_bytes());
        }
        for e in self.owner_withdrawals.iter() {
            put(e.key().0.as_slice());
            put(&e.key().1.to_le_bytes());
        }
        for e in self.outputs.iter() {
            put(&e.key().to_le_bytes());
            put(&e.value());
        }
        Hash(h.finalize().into())
    }
}

/// Collects up to `limit` items and the id after the last one if more may follow.
fn page<T>(items: impl Iterator<Item = T>, limit: u32, id: impl Fn(&T) -> Id) -> (Vec<T>, Option<Id>) {
    let n = page_limit(limit);
    let mut items: Vec<T> = items.take(n + 1).collect();
    let next = if items.len() > n { items.pop().map(|t| id(&t)) } else { None };
    (items, next)
}
