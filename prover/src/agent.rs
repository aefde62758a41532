//! The worker and challenger agents, over any [`Chain`].
//!
//! Both run the task themselves (the fast engine for results and boundary roots, the stepper for the step roots
//! and the one-step proof of a dispute) and play the game's honest strategies (`opml_bisect::agent`). A
//! [`Lie`] makes a worker dishonest, for demos and tests.
//!
//! **Inputs are off-chain.** A task carries only its input root; the agents are given the input (a model's
//! fixed blobs plus the user's input) and refuse a task whose input root is not the root of what they were given
//! ([`AgentError::InputMismatch`]). So a challenger needs the task's input from the requester (or any source):
//! the canister does not store it, the input root makes any copy checkable.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use opml_bisect::agent::{self, Trace};
use opml_bisect::bisection::split_point;
use opml_bisect::{ClaimState, ClaimStatus, Dispute, FinalStatus, GameConfig, Hash, MerkleTree, Move, Phase, Role};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::{Id, PlayArgs, SubmitClaim, TaskStatus};
use opml_vm::Limits;
use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::trace::GuestTrace;

use crate::chain::{Chain, ChainError};
use crate::model::Model;
use crate::progress::Progress;

/// Why an agent could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("the {model} guest is invalid: {message}")]
    Program { model: String, message: String },
    #[error("running the task failed: {0}")]
    Run(String),
    #[error("task {task} is for program {want}, not the {model} model (program {have})")]
    WrongProgram { task: Id, model: String, want: Hash, have: Hash },
    #[error("task {task} commits to inputs {want}, but the given input has root {have}: not this task's input")]
    InputMismatch { task: Id, want: Hash, have: Hash },
    #[error("task {task} has no claim to check")]
    NoClaim { task: Id },
    #[error("task {task} is {status}, not open for a claim")]
    TaskNotOpen { task: Id, status: String },
    #[error("the run did not end in a final state ({0}); there is nothing to claim")]
    NotFinal(String),
    #[error("the VM failed while computing a move (a VM bug): {0}")]
    Vm(String),
}

/// A task's input prepared for a model: its blobs and their root.
#[derive(Clone)]
pub struct TaskInput {
    pub model: &'static Model,
    pub inputs: Arc<Inputs>,
}

impl TaskInput {
    /// The input of `model` from the command-line form `input` (see [`crate::model::blobs`]).
    pub fn new(model: &'static Model, input: &str) -> Result<TaskInput, String> {
        Ok(TaskInput { model, inputs: Arc::new(Inputs::new(crate::model::blobs(model, input)?)) })
    }

    /// The input root a task over this input commits to.
    pub fn root(&self) -> Hash {
        Hash(self.inputs.root())
    }
}

/// A model's guest program and its program hash (what the canister computes at registration).
pub struct ModelProgram {
    pub model: &'static Model,
    pub program: GuestProgram,
    pub hash: Hash,
}

impl ModelProgram {
    pub fn new(model: &'static Model) -> Result<ModelProgram, AgentError> {
        let bad = |e: &dyn std::fmt::Display| AgentError::Program { model: model.name.into(), message: e.to_string() };
        let program = GuestProgram::new(model.wasm).map_err(|e| bad(&e))?;
        let hash =
            opml_bisect::vm::VmVerifier::new().register_guest(&program, Limits::default()).map_err(|e| bad(&e))?;
        Ok(ModelProgram { model, program, hash })
    }

    /// The initial state root `R_0` of this program on `input_root`.
    pub fn initial_root(&self, input_root: &Hash) -> Result<Hash, AgentError> {
        let header = self
            .program
            .initial_header(Limits::default())
            .map_err(|e| AgentError::Program { model: self.model.name.into(), message: e.to_string() })?;
        Ok(Hash(opml_vm::verify::initial_root(&header, &input_root.0)))
    }
}

/// How a dishonest worker lies.
#[derive(Clone, Debug)]
pub enum Lie {
    /// Runs the model on another input (this command-line input) and claims that result for the task, anchoring
    /// its commitment at the task's true `R_0` so the claim passes submission: a wrong output (a wrong embedding)
    /// with a consistent-looking trace.
    OtherInput(String),
    /// Runs the task honestly, then corrupts one activation (an f32 the last segment reads) in the state at the
    /// boundary before the last segment and finishes from there: a wrong output whose trace agrees with the
    /// truth up to that boundary, so the bisection has to find the corrupted segment and its last instruction.
    /// Needs at least two segments (MiniLM; not digits).
    CorruptState,
}

/// One execution as a party believes it: a real trace, with `R_0` optionally replaced by the task's true one (a
/// [`Lie::OtherInput`] worker).
pub struct Run {
    pub trace: GuestTrace,
    r0: Option<Hash>,
}

impl Run {
    /// Runs `program` on `input` (fast engine; the stepper only on demand during a dispute); it may end halted or
    /// trapped.
    pub fn new(program: &ModelProgram, input: &TaskInput) -> Result<Run, AgentError> {
        Run::observed(program, input, &mut |_| {})
    }

    /// [`Run::new`], calling `on_segment(n)` after the `n`-th segment (for progress display).
    pub fn observed(
        program: &ModelProgram,
        input: &TaskInput,
        on_segment: &mut dyn FnMut(u64),
    ) -> Result<Run, AgentError> {
        let trace =
            GuestTrace::new_observed(program.program.clone(), input.inputs.clone(), Limits::default(), on_segment)
                .map_err(|e| AgentError::Run(e.to_string()))?;
        // A trap is a final state like any other: a worker claims it as it is (the claim states the trap code),
        // and a challenger re-executes a trapping task and disputes a claim that says otherwise.
        Ok(Run { trace, r0: None })
    }

    /// How this run ended, as a claim states it: halted, or trapped with the VM's trap code.
    pub fn final_status(&self) -> Result<FinalStatus, AgentError> {
        let status = self.trace.run().status;
        // The fast engine stops only at a halt or a trap; anything else would be a VM bug, not a claimable run.
        opml_bisect::vm::status_of(status).ok_or_else(|| AgentError::NotFinal(format!("{status:?}")))
    }

    /// The output bytes.
    pub fn output(&self) -> &[u8] {
        &self.trace.run().output
    }
}

impl Trace for Run {
    fn boundary_root(&self, i: u64) -> Hash {
        match self.r0 {
            Some(r) if i == 0 => r,
            _ => Hash(self.trace.boundary_root(i)),
        }
    }
    fn step_count(&self, s: u64) -> u64 {
        self.trace.step_count(s).unwrap_or_else(|e| panic!("step_count({s}): {e}"))
    }
    fn step_root(&self, s: u64, j: u64) -> Hash {
        match self.r0 {
            Some(r) if s == 0 && j == 0 => r,
            _ => Hash(self.trace.step_root(s, j).unwrap_or_else(|e| panic!("step_root({s}, {j}): {e}"))),
        }
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        self.trace.step_proof(s, j).unwrap_or_else(|e| panic!("step_proof({s}, {j}): {e}")).encode()
    }
}

/// A `Trace` behind a reference to an unsized one (the game's functions take sized traces).
struct Dyn<'a, T: ?Sized>(&'a T);

impl<T: Trace + ?Sized> Trace for Dyn<'_, T> {
    fn boundary_root(&self, i: u64) -> Hash {
        self.0.boundary_root(i)
    }
    fn step_count(&self, s: u64) -> u64 {
        self.0.step_count(s)
    }
    fn step_root(&self, s: u64, j: u64) -> Hash {
        self.0.step_root(s, j)
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        self.0.step_proof(s, j)
    }
}

/// Runs a move computation, turning a VM failure (a panic inside the trace) into an error.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, AgentError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown failure".into());
        AgentError::Vm(msg)
    })
}

/// Something an agent did, for progress output.
#[derive(Clone, Debug)]
pub enum Event {
    Ran { task: Id, model: &'static str, segments: u64, seconds: f64 },
    Claimed { task: Id, claim: Id, status: FinalStatus, output_hash: Hash, lie: bool },
    Agrees { claim: Id },
    Disagrees { claim: Id, ours: Hash, theirs: Hash },
    Opened { claim: Id, dispute: u32 },
    Moved { claim: Id, dispute: u32, role: Role, phase: String, interval: (u64, u64), detail: String, bytes: u64 },
    Resolved { claim: Id, dispute: u32, outcome: String },
    Finalized { claim: Id },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Ran { task, model, segments, seconds } => {
                write!(f, "ran task {task} ({model}): {segments} segments in {seconds:.2} s")
            }
            Event::Claimed { task, claim, status, output_hash, lie } => write!(
                f,
                "submitted claim {claim} on task {task}: {}, output hash {}{}",
                status_text(status),
                short(output_hash),
                if *lie { " (a lie)" } else { "" }
            ),
            Event::Agrees { claim } => write!(f, "claim {claim}: re-executed, same result: agrees"),
            Event::Disagrees { claim, ours, theirs } => write!(
                f,
                "claim {claim}: re-executed, final root {} != claimed {}: wrong result",
                short(ours),
                short(theirs)
            ),
            Event::Opened { claim, dispute } => write!(f, "opened dispute {dispute} on claim {claim}"),
            Event::Moved { role, phase, interval, detail, bytes, .. } => {
                let who = if *role == Role::Worker { "worker    " } else { "challenger" };
                write!(f, "{who} {phase:<9} [{}, {}] {detail} ({bytes} B)", interval.0, interval.1)
            }
            Event::Resolved { claim, dispute, outcome } => {
                write!(f, "dispute {dispute} on claim {claim} resolved: {outcome}")
            }
            Event::Finalized { claim } => write!(f, "claim {claim} finalized"),
        }
    }
}

impl Event {
    /// The event as one JSON object for scripts: `event` names its kind, the other fields its data, `text` is
    /// the human-readable line.
    pub fn to_json(&self) -> serde_json::Value {
        let hex = |h: &Hash| crate::local::hex(&h.0);
        let mut v = match self {
            Event::Ran { task, model, segments, seconds } => {
                serde_json::json!({ "event": "ran", "task": task, "model": model, "segments": segments, "seconds": seconds })
            }
            Event::Claimed { task, claim, status, output_hash, lie } => serde_json::json!({
                "event": "claimed", "task": task, "claim": claim, "final_status": status_text(status),
                "output_hash": hex(output_hash), "lie": lie
            }),
            Event::Agrees { claim } => serde_json::json!({ "event": "agrees", "claim": claim }),
            Event::Disagrees { claim, ours, theirs } => serde_json::json!({
                "event": "disagrees", "claim": claim, "our_final_root": hex(ours), "claimed_final_root": hex(theirs)
            }),
            Event::Opened { claim, dispute } => {
                serde_json::json!({ "event": "opened", "claim": claim, "dispute": dispute })
            }
            Event::Moved { claim, dispute, role, phase, interval, detail, bytes } => serde_json::json!({
                "event": "moved", "claim": claim, "dispute": dispute,
                "role": if *role == Role::Worker { "worker" } else { "challenger" },
                "phase": phase, "interval": [interval.0, interval.1], "detail": detail, "bytes": bytes
            }),
            Event::Resolved { claim, dispute, outcome } => {
                serde_json::json!({ "event": "resolved", "claim": claim, "dispute": dispute, "outcome": outcome })
            }
            Event::Finalized { claim } => serde_json::json!({ "event": "finalized", "claim": claim }),
        };
        v["text"] = serde_json::Value::String(self.to_string());
        v
    }
}

/// A claim's final status in words: `halted`, or `trapped: <the VM's trap message> (code N)`.
pub fn status_text(status: &FinalStatus) -> String {
    match (status, opml_bisect::vm::trap_of(status)) {
        (FinalStatus::Halted, _) => "halted".into(),
        (FinalStatus::Trapped { code }, Some(trap)) => format!("trapped: {trap} (code {code})"),
        // A code the VM does not have: no valid claim carries one (the canister checks the opening), but a view
        // is printed as it is.
        (FinalStatus::Trapped { code }, None) => format!("trapped (unknown code {code})"),
    }
}

/// The first 8 bytes of a hash, in hex.
pub fn short(h: &Hash) -> String {
    h.0[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A progress sink.
pub type Log = Arc<dyn Fn(&Event) + Send + Sync>;

fn phase_of(d: &Dispute) -> (String, (u64, u64)) {
    match &d.phase {
        Phase::Segments(b) => ("segments".into(), (b.lo, b.hi)),
        Phase::CommitSteps { segment, .. } => ("commit".into(), (*segment, *segment + 1)),
        Phase::Steps { segment, bisection, .. } => (format!("steps/s{segment}"), (bisection.lo, bisection.hi)),
        Phase::ProveStep { segment, step, .. } => (format!("proof/s{segment}"), (*step, *step + 1)),
    }
}

fn describe(d: &Dispute, config: &GameConfig, mv: &Move) -> String {
    match mv {
        Move::PostRoots { roots, .. } => format!("posted {} roots", roots.len()),
        Move::CommitSteps { steps, fixpoint_proof } => {
            format!("committed {steps} steps (fixpoint proof {} B)", fixpoint_proof.len())
        }
        Move::Choose { index } => {
            let b = match &d.phase {
                Phase::Segments(b) | Phase::Steps { bisection: b, .. } => b,
                _ => return format!("chose #{index}"),
            };
            let i = u64::from(*index);
            format!(
                "chose #{index} -> [{}, {}]",
                split_point(b.lo, b.hi, config.arity, i),
                split_point(b.lo, b.hi, config.arity, i + 1)
            )
        }
        Move::ProveStep { proof } => format!("one-step proof of {} B", proof.len()),
    }
}

fn outcome_text(d: &Dispute) -> String {
    match &d.resolution {
        Some(r) => format!("{:?}", r.outcome),
        None => "open".into(),
    }
}

#[allow(clippy::too_many_arguments)]
/// Plays the move of `role` in dispute `id` of `state`, if it is `role`'s turn. Returns whether a move was made.
async fn move_once<C: Chain, T: Trace + ?Sized>(
    chain: &C,
    claim: Id,
    id: u32,
    state: &ClaimState,
    role: Role,
    trace: &T,
    tree: Option<&MerkleTree>,
    log: &Log,
    progress: &Progress,
) -> Result<bool, AgentError> {
    let d = state.dispute(id).map_err(|e| AgentError::Run(e.to_string()))?;
    if d.mover() != Some(role) {
        return Ok(false);
    }
    progress.round(claim, id, d, state.claim.segments, state.config.arity);
    // The stepper's work (a segment's step count, step roots, a proof) can take a while on a large model.
    let working = crate::progress::stepper_work(d, role).map(|w| progress.working(w));
    let mv = guarded(|| match (role, tree) {
        (Role::Worker, Some(tree)) => agent::worker_move(d, &state.config, &Dyn(trace), tree),
        (Role::Challenger, _) => agent::challenger_move(d, &state.config, &Dyn(trace)),
        (Role::Worker, None) => None,
    })?;
    drop(working);
    let Some(mv) = mv else { return Ok(false) };
    let (phase, interval) = phase_of(d);
    let detail = describe(d, &state.config, &mv);
    let before = chain.stats().bytes();
    if let Err(e) = chain.play(PlayArgs { claim, dispute: id, seq: d.seq, mv }).await {
        // The game refused the move: if the dispute moved on meanwhile (the opponent called `timeout` while this
        // move was computed, or this agent was paused), that is not a failure; the next poll sees the new state.
        if matches!(e.canister(), Some(CanisterError::Game(_))) {
            let now = chain.get_claim_state(claim).await?;
            let moved_on = now.dispute(id).map(|n| !n.is_active() || n.seq != d.seq).unwrap_or(false);
            if moved_on {
                return Ok(false);
            }
        }
        return Err(e.into());
    }
    let bytes = chain.stats().bytes() - before;
    log(&Event::Moved { claim, dispute: id, role, phase, interval, detail, bytes });
    Ok(true)
}

struct Defended {
    run: Arc<dyn Trace + Send + Sync>,
    tree: MerkleTree,
    finalized: bool,
    resolved: BTreeMap<u32, String>,
    last_finalize: Option<std::time::Instant>,
}

/// A worker: runs tasks, submits claims with its stake, defends them in every dispute, finalizes them.
pub struct Worker<C> {
    pub chain: C,
    program: Arc<ModelProgram>,
    lie: Option<Lie>,
    claims: BTreeMap<Id, Defended>,
    log: Log,
    progress: Arc<Progress>,
    force_finalize: bool,
}

impl<C: Chain> Worker<C> {
    /// A worker for `program` over `chain`, honest unless `lie`, reporting what it does to `log`.
    pub fn new(chain: C, program: Arc<ModelProgram>, lie: Option<Lie>, log: Log) -> Worker<C> {
        Worker {
            chain,
            program,
            lie,
            claims: BTreeMap::new(),
            log,
            progress: Progress::hidden(),
            force_finalize: false,
        }
    }

    /// Shows its long work (runs, rounds, stepper work) on `progress`.
    pub fn with_progress(mut self, progress: Arc<Progress>) -> Worker<C> {
        self.progress = progress;
        self
    }

    /// The program hash of the model it serves.
    pub fn program_hash(&self) -> Hash {
        self.program.hash
    }

    /// The claims it submitted.
    pub fn claims(&self) -> Vec<Id> {
        self.claims.keys().copied().collect()
    }

    /// Runs task `task` on `input` (honestly or with its lie) and builds the claim.
    #[allow(clippy::type_complexity)]
    fn execute(
        &self,
        task: Id,
        input: &TaskInput,
    ) -> Result<
        (Arc<dyn Trace + Send + Sync>, Vec<u8>, opml_bisect::Claim, opml_bisect::ClaimEvidence, MerkleTree),
        AgentError,
    > {
        let start = std::time::Instant::now();
        let bar = self.progress.inference(&format!("task {task}: running {}", self.program.model.name));
        let mut on_segment = |n| bar.segment(n);
        type Ran = (Arc<dyn Trace + Send + Sync>, Vec<u8>, FinalStatus, u64, Vec<u8>);
        let (run, output, status, segments, opening): Ran = match &self.lie {
            None | Some(Lie::OtherInput(_)) => {
                let run = match &self.lie {
                    Some(Lie::OtherInput(other)) => {
                        let other = TaskInput::new(input.model, other).map_err(AgentError::Run)?;
                        let mut run = Run::observed(&self.program, &other, &mut on_segment)?;
                        run.r0 = Some(self.program.initial_root(&input.root())?);
                        run
                    }
                    _ => Run::observed(&self.program, input, &mut on_segment)?,
                };
                // Halted or trapped, the claim states how the run ended (a trap is claimed like a halt).
                let status = run.final_status()?;
                let opening = run.trace.final_opening().map_err(|e| AgentError::Run(e.to_string()))?;
                let (output, segments) = (run.output().to_vec(), run.trace.segments());
                (Arc::new(run), output, status, segments, opening)
            }
            Some(Lie::CorruptState) => {
                let run = crate::lie::CorruptRun::new(&self.program, input)?;
                // `CorruptRun` only ever picks a corruption after which the run halts.
                let (output, segments, opening) = (run.output.clone(), run.segments(), run.final_opening.clone());
                (Arc::new(run), output, FinalStatus::Halted, segments, opening)
            }
        };
        drop(bar);
        (self.log)(&Event::Ran {
            task,
            model: self.program.model.name,
            segments,
            seconds: start.elapsed().as_secs_f64(),
        });
        let output_hash = Hash(opml_vm::io::output_commitment(&output));
        let (claim, evidence, tree) =
            agent::make_claim(&Dyn(&*run), self.program.hash, input.root(), output_hash, status, segments, opening);
        Ok((run, output, claim, evidence, tree))
    }

    /// Takes over a claim this identity submitted earlier (after a restart): re-runs its task on `input`, checks
    /// the rebuilt commitment is the one on-chain, and defends it from then on.
    pub async fn resume(&mut self, claim: Id, input: &TaskInput) -> Result<(), AgentError> {
        let view = self.chain.get_claim(claim).await?;
        let (run, _, rebuilt, _, tree) = self.execute(view.task, input)?;
        if rebuilt.segments_root != view.claim.segments_root {
            return Err(AgentError::Run(format!(
                "claim {claim}: re-running task {} does not give the committed trace (other input or lie?)",
                view.task
            )));
        }
        let settled = !matches!(view.status, ClaimStatus::Pending);
        self.claims
            .insert(claim, Defended { run, tree, finalized: settled, resolved: BTreeMap::new(), last_finalize: None });
        Ok(())
    }

    /// Runs task `task` on `input` and submits a claim (locking the task's stake). Returns the claim id.
    pub async fn serve(&mut self, task: Id, input: &TaskInput) -> Result<Id, AgentError> {
        let t = self.chain.get_task(task).await?;
        if t.spec.program != self.program.hash {
            return Err(AgentError::WrongProgram {
                task,
                model: self.program.model.name.into(),
                want: t.spec.program,
                have: self.program.hash,
            });
        }
        if t.spec.input_root != input.root() {
            return Err(AgentError::InputMismatch { task, want: t.spec.input_root, have: input.root() });
        }
        if t.status != TaskStatus::Open {
            return Err(AgentError::TaskNotOpen { task, status: format!("{:?}", t.status) });
        }
        let (run, output, claim, evidence, tree) = self.execute(task, input)?;
        let (output_hash, status) = (claim.output_hash, claim.final_status);
        let args = SubmitClaim { task, claim, evidence, output };
        let id = self.chain.submit_claim(args).await?;
        (self.log)(&Event::Claimed { task, claim: id, status, output_hash, lie: self.lie.is_some() });
        self.claims
            .insert(id, Defended { run, tree, finalized: false, resolved: BTreeMap::new(), last_finalize: None });
        Ok(id)
    }

    /// One pass over its claims: a move in every dispute where it is the worker's turn, `finalize` where the
    /// window has passed with no open dispute. Returns the number of moves made.
    pub async fn poll(&mut self) -> Result<u32, AgentError> {
        let mut moves = 0;
        let ids: Vec<Id> = self.claims.keys().copied().collect();
        for id in ids {
            let state = self.chain.get_claim_state(id).await?;
            let c = self.claims.get_mut(&id).expect("known claim");
            for (d, dispute) in state.disputes.iter().enumerate() {
                let d = d as u32;
                if !dispute.is_active() {
                    if let std::collections::btree_map::Entry::Vacant(e) = c.resolved.entry(d) {
                        let text = outcome_text(dispute);
                        self.progress.resolved(id, d);
                        (self.log)(&Event::Resolved { claim: id, dispute: d, outcome: text.clone() });
                        e.insert(text);
                    }
                    continue;
                }
                let run = c.run.clone();
                if move_once(&self.chain, id, d, &state, Role::Worker, &*run, Some(&c.tree), &self.log, &self.progress)
                    .await?
                {
                    moves += 1;
                } else if dispute.mover() == Some(Role::Challenger) && dispute.deadline().is_some_and(|t| t < wall_ns())
                {
                    // The challenger's clock ran out: the worker claims the dispute (anyone may call `timeout`).
                    match self.chain.timeout(id, d).await {
                        Ok(()) => moves += 1,
                        Err(e) if matches!(e.canister(), Some(CanisterError::Game(_))) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            // `finalize` is an update call: try it once the window has passed by the local clock, and otherwise
            // at most once a minute (the chain's clock may run ahead: a devnet whose time was advanced).
            let due = wall_ns() > state.window_end_ns()
                || self.force_finalize
                || c.last_finalize.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(60));
            if matches!(state.status, ClaimStatus::Pending) && state.open_disputes() == 0 && !c.finalized && due {
                c.last_finalize = Some(std::time::Instant::now());
                match self.chain.finalize(id).await {
                    Ok(()) => {
                        c.finalized = true;
                        (self.log)(&Event::Finalized { claim: id });
                    }
                    Err(e) if matches!(e.canister(), Some(CanisterError::Game(_))) => {} // window still open
                    Err(e) => return Err(e.into()),
                }
            }
            if !matches!(state.status, ClaimStatus::Pending) {
                c.finalized = true;
            }
        }
        self.force_finalize = false;
        Ok(moves)
    }

    /// Makes the next [`Worker::poll`] try `finalize` on every claim ready for it, whatever the local clock says
    /// (after a devnet's time was advanced).
    pub fn finalize_next_poll(&mut self) {
        self.force_finalize = true;
    }

    /// Whether every claim it submitted is settled (final or invalidated).
    pub fn settled(&self) -> bool {
        self.claims.values().all(|c| c.finalized)
    }
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// What a challenger concluded about a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The claim's final root is the one re-execution gives.
    Agrees,
    /// It differs; this dispute was opened.
    Disputed(u32),
}

struct Watched {
    run: Arc<Run>,
    dispute: u32,
    resolution: Option<String>,
}

/// A challenger: re-executes claims and disputes the wrong ones to the end.
pub struct Challenger<C> {
    pub chain: C,
    program: Arc<ModelProgram>,
    disputes: BTreeMap<Id, Watched>,
    log: Log,
    progress: Arc<Progress>,
}

impl<C: Chain> Challenger<C> {
    /// A challenger for claims over `program` on `chain`, reporting what it does to `log`.
    pub fn new(chain: C, program: Arc<ModelProgram>, log: Log) -> Challenger<C> {
        Challenger { chain, program, disputes: BTreeMap::new(), log, progress: Progress::hidden() }
    }

    /// Shows its long work (re-executions, rounds, stepper work) on `progress`.
    pub fn with_progress(mut self, progress: Arc<Progress>) -> Challenger<C> {
        self.progress = progress;
        self
    }

    /// The live claim of `task` (or its last claim).
    pub async fn claim_of(&self, task: Id) -> Result<Id, AgentError> {
        let t = self.chain.get_task(task).await?;
        match t.status {
            TaskStatus::Claimed { claim } | TaskStatus::Done { claim } => Ok(claim),
            _ => t.claims.last().copied().ok_or(AgentError::NoClaim { task }),
        }
    }

    /// Re-executes `claim` on `input`; opens a dispute if the result differs.
    pub async fn check(&mut self, claim: Id, input: &TaskInput) -> Result<Verdict, AgentError> {
        let view = self.chain.get_claim(claim).await?;
        if view.claim.program != self.program.hash {
            return Err(AgentError::WrongProgram {
                task: view.task,
                model: self.program.model.name.into(),
                want: view.claim.program,
                have: self.program.hash,
            });
        }
        if view.claim.input_root != input.root() {
            return Err(AgentError::InputMismatch { task: view.task, want: view.claim.input_root, have: input.root() });
        }
        let start = std::time::Instant::now();
        let bar = self.progress.inference(&format!("claim {claim}: re-running {}", self.program.model.name));
        let run = Run::observed(&self.program, input, &mut |n| bar.segment(n))?;
        drop(bar);
        (self.log)(&Event::Ran {
            task: view.task,
            model: self.program.model.name,
            segments: run.trace.segments(),
            seconds: start.elapsed().as_secs_f64(),
        });
        if !agent::should_challenge(&view.claim, &run) {
            (self.log)(&Event::Agrees { claim });
            return Ok(Verdict::Agrees);
        }
        (self.log)(&Event::Disagrees {
            claim,
            ours: run.boundary_root(view.claim.segments),
            theirs: view.claim.final_root,
        });
        let dispute = self.chain.open_dispute(claim).await?;
        (self.log)(&Event::Opened { claim, dispute });
        self.disputes.insert(claim, Watched { run: Arc::new(run), dispute, resolution: None });
        Ok(Verdict::Disputed(dispute))
    }

    /// One pass over its disputes: a move where it is the challenger's turn, `timeout` where the worker's clock
    /// ran out. Returns the number of moves made.
    pub async fn poll(&mut self) -> Result<u32, AgentError> {
        let mut moves = 0;
        let ids: Vec<Id> = self.disputes.keys().copied().collect();
        for claim in ids {
            let w = self.disputes.get_mut(&claim).expect("known");
            if w.resolution.is_some() {
                continue;
            }
            let state = self.chain.get_claim_state(claim).await?;
            let d = state.dispute(w.dispute).map_err(|e| AgentError::Run(e.to_string()))?;
            if !d.is_active() {
                let text = outcome_text(d);
                self.progress.resolved(claim, w.dispute);
                (self.log)(&Event::Resolved { claim, dispute: w.dispute, outcome: text.clone() });
                w.resolution = Some(text);
                continue;
            }
            let run = w.run.clone();
            if move_once(
                &self.chain,
                claim,
                w.dispute,
                &state,
                Role::Challenger,
                &*run,
                None,
                &self.log,
                &self.progress,
            )
            .await?
            {
                moves += 1;
            } else if d.mover() == Some(Role::Worker) && d.deadline().is_some_and(|t| t < wall_ns()) {
                // The worker's clock ran out: anyone may end the dispute.
                match self.chain.timeout(claim, w.dispute).await {
                    Ok(()) => moves += 1,
                    Err(e) if matches!(e.canister(), Some(CanisterError::Game(_))) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(moves)
    }

    /// Whether every dispute it opened is resolved.
    pub fn settled(&self) -> bool {
        self.disputes.values().all(|w| w.resolution.is_some())
    }

    /// The resolution of its dispute on `claim`, once resolved.
    pub fn resolution(&self, claim: Id) -> Option<&str> {
        self.disputes.get(&claim).and_then(|w| w.resolution.as_deref())
    }
}
