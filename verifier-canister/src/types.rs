//! The canister's data types: configuration, programs, tasks, claims, balances, withdrawals and the views the
//! queries return. The interface's are Candid types; stable memory holds them in [`crate::codec`]'s layout.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use candid::{CandidType, Nat, Principal};
use opml_bisect::{Claim, ClaimEvidence, ClaimStatus, Clock, DisputeId, Hash, Move, MoveKind, Phase, Resolution, Role};
use serde::{Deserialize, Serialize};

/// Task ids, claim ids, upload ids and withdrawal ids are sequential from 0.
pub type Id = u64;

/// Everything set at install (and optionally replaced at upgrade); visible through `config()`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The ICRC-1/ICRC-2 ledger of the stake token.
    pub ledger: Principal,
    /// The ledger's transfer fee, charged to the withdrawing user on top of the amount.
    pub ledger_fee: u64,
    /// Principals allowed to register programs besides the canister's controllers.
    pub operators: Vec<Principal>,
    /// Bisection arity `k` (2..=64).
    pub arity: u8,
    /// Largest segment count of a claim.
    pub max_segments: u64,
    /// Largest step count of one segment.
    pub max_segment_steps: u64,
    /// Smallest worker stake a task may ask for.
    pub min_stake: u64,
    /// The bond each challenger locks per dispute.
    pub challenger_bond: u64,
    /// Share of a forfeited stake or bond that is burnt, in basis points.
    pub burn_bps: u16,
    /// Bounds of a task's challenge window, in nanoseconds.
    pub min_challenge_window_ns: u64,
    /// Upper bound of a task's challenge window.
    pub max_challenge_window_ns: u64,
    /// Bounds of a task's per-party dispute clock, in nanoseconds.
    pub min_clock_ns: u64,
    /// Upper bound of a task's per-party dispute clock.
    pub max_clock_ns: u64,
    /// Largest guest module accepted for registration, in bytes.
    pub max_program_bytes: u64,
    /// Largest output bytes stored with a claim.
    pub max_output_bytes: u64,
    /// Period of the timer that applies due timeouts and finalizations (0: no timer; the public calls always work).
    pub sweep_interval_s: u64,
}

/// A caller as the core sees it: its principal and whether it controls the canister.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// `msg_caller()`.
    pub id: Principal,
    /// `is_controller(msg_caller())`.
    pub is_controller: bool,
}

/// An ICRC-1 account.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The owner.
    pub owner: Principal,
    /// A 32-byte subaccount (none: the default one).
    pub subaccount: Option<Vec<u8>>,
}

/// `begin_upload` arguments: what the whole module will be.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BeginUpload {
    /// SHA3-256 of the whole module, checked at `finish_upload`.
    pub wasm_sha3: Hash,
    /// Its size in bytes.
    pub size: u64,
}

/// Where an upload stands.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum UploadStatus {
    /// Receiving chunks; the next one must start at `received`.
    Receiving,
    /// Registered as this program.
    Registered {
        /// The program hash.
        program: Hash,
    },
}

/// What one `finish_upload` call achieved. A large module's commitment takes more instructions than one update
/// message may use, so registration is spread over calls: keep calling until `Registered`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RegistrationStep {
    /// The program is registered under this hash.
    Registered {
        /// The program hash.
        program: Hash,
    },
    /// The module passed its first checks and was rewritten (stack metering); the next call compiles and checks
    /// the result.
    Rewritten,
    /// The module is valid and its commitment in progress: `done` of `total` code ops hashed; call
    /// `finish_upload` again.
    Committing {
        /// Ops hashed so far.
        done: u64,
        /// Ops in all.
        total: u64,
    },
}

impl RegistrationStep {
    /// The program hash, once registered.
    pub fn registered(&self) -> Option<Hash> {
        match self {
            RegistrationStep::Registered { program } => Some(*program),
            RegistrationStep::Rewritten | RegistrationStep::Committing { .. } => None,
        }
    }
}

/// A chunked upload of a guest module.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Upload id.
    pub id: Id,
    /// Who started it (only they can continue it).
    pub owner: Principal,
    /// Declared SHA3-256 of the module.
    pub wasm_sha3: Hash,
    /// Declared size.
    pub size: u64,
    /// Bytes received so far (chunks are contiguous from 0).
    pub received: u64,
    /// Number of chunks stored.
    pub chunks: u32,
    /// When it started.
    pub started_at_ns: u64,
    /// Status.
    pub status: UploadStatus,
}

/// A registered program.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Program hash (the hash of its commitment; `Claim::program`).
    pub program: Hash,
    /// What the verifier keeps (the encoded program commitment).
    pub commitment: Vec<u8>,
    /// SHA3-256 of the module bytes.
    pub wasm_sha3: Hash,
    /// Module size.
    pub size: u64,
    /// The upload holding the module's bytes (readable with `program_wasm`).
    pub upload: Id,
    /// Who registered it.
    pub registered_by: Principal,
    /// When.
    pub registered_at_ns: u64,
}

/// `post_task` arguments.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PostTask {
    /// A registered program hash.
    pub program: Hash,
    /// Commitment to the inputs.
    pub input_root: Hash,
    /// Paid to the worker whose claim becomes final; locked from the requester's balance now.
    pub reward: u64,
    /// Challenge window of claims on this task (within the configured bounds).
    pub challenge_window_ns: u64,
    /// Per-party clock of disputes on this task (within the configured bounds).
    pub clock_ns: u64,
    /// Stake a worker locks with a claim (at least the configured minimum).
    pub worker_stake: u64,
}

/// Where a task stands.
#[derive(CandidType, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Waiting for a claim (again, after an invalidated one).
    Open,
    /// One live (pending) claim.
    Claimed {
        /// The live claim.
        claim: Id,
    },
    /// A claim became final; the reward was paid.
    Done {
        /// The final claim.
        claim: Id,
    },
    /// Cancelled by the requester; the reward was refunded.
    Cancelled,
}

/// A task.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Task id.
    pub id: Id,
    /// Who posted it and funds the reward.
    pub requester: Principal,
    /// Its parameters.
    pub spec: PostTask,
    /// When it was posted.
    pub posted_at_ns: u64,
    /// Status.
    pub status: TaskStatus,
    /// Every claim submitted on it, in order.
    pub claims: Vec<Id>,
}

impl Task {
    /// Reward still held for this task (zero once paid or refunded).
    pub fn reward_escrow(&self) -> u64 {
        match self.status {
            TaskStatus::Open | TaskStatus::Claimed { .. } => self.spec.reward,
            TaskStatus::Done { .. } | TaskStatus::Cancelled => 0,
        }
    }
}

/// `submit_claim` arguments.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SubmitClaim {
    /// The task.
    pub task: Id,
    /// The claim (its program and input root must be the task's).
    pub claim: Claim,
    /// Its evidence (see the game rules).
    pub evidence: ClaimEvidence,
    /// The output bytes; their hash must be `claim.output_hash`.
    pub output: Vec<u8>,
}

/// A stored claim: the game state plus the canister's bookkeeping. The output bytes are stored apart (they never
/// change, and every move loads and stores this record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRecord {
    /// Claim id.
    pub id: Id,
    /// Its task.
    pub task: Id,
    /// Stake and bonds locked for this claim and not yet paid out or burnt.
    pub escrow: u64,
    /// The game state (claim, worker, configuration, disputes).
    pub state: opml_bisect::ClaimState,
}

/// A claim as the queries show it (disputes are listed separately).
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ClaimView {
    /// Claim id.
    pub id: Id,
    /// Its task.
    pub task: Id,
    /// The worker.
    pub worker: Principal,
    /// The claim; its `final_status` says how the run ended: halted, or trapped with the VM's trap code.
    pub claim: Claim,
    /// Status.
    pub status: ClaimStatus,
    /// Submission time.
    pub submitted_at_ns: u64,
    /// Last instant a dispute can be opened.
    pub window_end_ns: u64,
    /// The worker's stake.
    pub stake: u64,
    /// What is still locked for it.
    pub escrow: u64,
    /// Disputes ever opened.
    pub disputes: u32,
    /// Disputes being played.
    pub open_disputes: u32,
    /// The game configuration it is played under.
    pub config: opml_bisect::GameConfig,
    /// The output bytes.
    pub output: Vec<u8>,
}

/// One dispute, with what its players need to know.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DisputeView {
    /// The claim.
    pub claim: Id,
    /// Dispute id within the claim.
    pub id: DisputeId,
    /// The challenger.
    pub challenger: Principal,
    /// The worker.
    pub worker: Principal,
    /// The challenger's bond.
    pub bond: u64,
    /// Opened at.
    pub opened_at_ns: u64,
    /// The sequence number the next move must carry.
    pub seq: u64,
    /// Whose turn and what kind of move (none once resolved).
    pub mover: Option<Role>,
    /// The kind of move expected.
    pub expected: Option<MoveKind>,
    /// When the mover's clock runs out (after it, anyone may call `timeout`).
    pub deadline_ns: Option<u64>,
    /// Both clocks.
    pub clock: Clock,
    /// The phase, with the current interval and posted roots.
    pub phase: Phase,
    /// The interval `[lo, hi]` being bisected (segment or step indices; equal ends in the proof phase).
    pub interval: (u64, u64),
    /// Indices whose roots the worker must post now.
    pub points_to_post: Vec<u64>,
    /// How it ended.
    pub resolution: Option<Resolution>,
}

/// `play` arguments.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PlayArgs {
    /// The claim.
    pub claim: Id,
    /// The dispute.
    pub dispute: DisputeId,
    /// The dispute's `seq` the move answers.
    pub seq: u64,
    /// The move.
    pub mv: Move,
}

/// Where a withdrawal stands.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum WithdrawalStatus {
    /// A ledger call (attempt `attempt`) has been made and its answer not processed.
    InFlight {
        /// Attempt number (1 = first).
        attempt: u32,
        /// When it was made.
        since_ns: u64,
    },
    /// The last attempt's outcome is unknown; `retry_withdrawal` re-sends the same transfer (the ledger
    /// deduplicates it), or a controller resolves it with `resolve_withdrawal` after checking the ledger.
    Unknown {
        /// What happened.
        reason: String,
    },
    /// The ledger executed the transfer.
    Completed {
        /// Its block index.
        block: Nat,
    },
    /// The ledger definitely did not execute it; amount and fee were credited back.
    Refunded {
        /// The ledger's answer.
        reason: String,
    },
}

/// A withdrawal journal entry. Amount and fee leave the internal balance when it is created and come back only
/// on a definite failure, so no ledger outcome can lose or double funds.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    /// Withdrawal id (also the transfer memo, 8 bytes LE).
    pub id: Id,
    /// Whose balance was debited.
    pub owner: Principal,
    /// Destination.
    pub to: Account,
    /// Amount received by `to`.
    pub amount: u64,
    /// Ledger fee paid on top.
    pub fee: u64,
    /// The transfer's `created_at_time` (the same for every attempt, for the ledger's deduplication).
    pub created_at_time: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Status.
    pub status: WithdrawalStatus,
}

impl Withdrawal {
    /// The memo of its transfer.
    pub fn memo(&self) -> Vec<u8> {
        self.id.to_le_bytes().to_vec()
    }

    /// Whether its amount and fee are still held (neither completed nor refunded).
    pub fn is_pending(&self) -> bool {
        matches!(self.status, WithdrawalStatus::InFlight { .. } | WithdrawalStatus::Unknown { .. })
    }
}

/// What a ledger call answered, as the core classifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerOutcome {
    /// Executed (or a duplicate of an executed transfer) in this block.
    Executed(Nat),
    /// Definitely not executed.
    NotExecuted(String),
    /// Unknown.
    Unknown(String),
}

/// `withdraw` arguments.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WithdrawArgs {
    /// Amount to receive (the fee is debited on top).
    pub amount: u64,
    /// Destination (default: the caller's default account).
    pub to: Option<Account>,
}

/// `deposit` arguments: the caller must first `icrc2_approve` the canister for `amount + fee`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DepositArgs {
    /// Amount credited.
    pub amount: u64,
    /// The caller's subaccount the tokens come from.
    pub from_subaccount: Option<Vec<u8>>,
}

/// Accounting totals (the invariant: `balances + locked + pending_withdrawals + burned = deposited - withdrawn`).
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum of all deposits credited.
    pub deposited: u128,
    /// Sum of completed withdrawals (amount + fee).
    pub withdrawn: u128,
    /// Sum burnt by the game.
    pub burned: u128,
    /// Sum of free internal balances.
    pub balances: u128,
    /// Stakes, bonds and rewards held for claims and tasks.
    pub locked: u128,
    /// Withdrawals debited but not settled (in flight or unknown).
    pub pending_withdrawals: u128,
}

/// What one sweep (the timer's work) did.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Claims looked at.
    pub visited: u32,
    /// Claims finalized.
    pub finalized: u32,
    /// Disputes timed out.
    pub timeouts: u32,
}

macro_rules! page {
    ($(#[$doc:meta] $name:ident($t:ty)),* $(,)?) => {$(
        #[$doc]
        #[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// The items.
            pub items: Vec<$t>,
            /// Pass as `start` to get the next page (none: this is the last one).
            pub next: Option<Id>,
        }
    )*};
}

page!(
    /// A page of tasks.
    TaskPage(Task),
    /// A page of claims.
    ClaimPage(ClaimView),
    /// A page of withdrawals.
    WithdrawalPage(Withdrawal),
);
