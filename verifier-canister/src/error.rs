//! The canister's typed error: every method answers bad input with one of these and changes nothing.
#![forbid(unsafe_code)]

use alloc::string::String;

use candid::CandidType;
use opml_bisect::Hash;
use serde::{Deserialize, Serialize};

use crate::types::Id;

/// Everything that can be wrong with a call (`CanisterError` in the Candid interface; `Error` there is the game's).
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CanisterError {
    /// A rule of the dispute game was violated (turn, move, proof, window, clock...).
    Game(opml_bisect::Error),
    /// The configuration is invalid.
    InvalidConfig {
        /// Why.
        reason: String,
    },
    /// Only a controller or a configured operator may do this.
    NotOperator,
    /// Only the owner (the upload's starter, the task's requester, the withdrawal's owner) may do this.
    NotOwner,
    /// Only a controller may do this.
    NotController,
    /// The anonymous principal cannot hold balances or play.
    AnonymousCaller,
    /// No such program.
    UnknownProgram {
        /// The program hash.
        program: Hash,
    },
    /// No such upload.
    UnknownUpload {
        /// Its id.
        upload: Id,
    },
    /// No such task.
    UnknownTask {
        /// Its id.
        task: Id,
    },
    /// No such claim.
    UnknownClaim {
        /// Its id.
        claim: Id,
    },
    /// No such withdrawal.
    UnknownWithdrawal {
        /// Its id.
        withdrawal: Id,
    },
    /// The module is larger than the configured maximum (or empty).
    ProgramSize {
        /// Declared size.
        size: u64,
        /// The maximum.
        max: u64,
    },
    /// A chunk is empty or larger than [`crate::core::MAX_CHUNK`].
    ChunkSize {
        /// Its length.
        len: u64,
        /// The maximum.
        max: u64,
    },
    /// Chunks must be contiguous: the next one starts at `expected`.
    WrongOffset {
        /// Where the next chunk must start.
        expected: u64,
        /// Where this one started.
        got: u64,
    },
    /// The chunk would run past the declared size.
    ChunkPastEnd {
        /// Declared size.
        size: u64,
    },
    /// Not all bytes were received.
    UploadIncomplete {
        /// Received so far.
        received: u64,
        /// Declared size.
        size: u64,
    },
    /// The upload is already registered.
    UploadFinished,
    /// The bytes do not hash to the declared SHA3-256.
    WasmHashMismatch {
        /// Hash of the received bytes.
        got: Hash,
    },
    /// The module failed the VM's validation or commitment.
    InvalidProgram {
        /// The VM's reason.
        reason: String,
    },
    /// This program is already registered.
    ProgramExists {
        /// The program hash.
        program: Hash,
    },
    /// A value is outside its configured bounds.
    OutOfBounds {
        /// Which parameter.
        field: String,
        /// The value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// The task is not open for a claim, or not cancellable.
    TaskNotOpen,
    /// The claim's program or input root is not the task's.
    ClaimDoesNotMatchTask,
    /// The output bytes do not hash to the claim's output hash.
    OutputMismatch {
        /// Hash of the given bytes.
        got: Hash,
    },
    /// The caller's free balance cannot cover this.
    InsufficientBalance {
        /// What is needed.
        needed: u64,
        /// What is there.
        available: u64,
    },
    /// Amounts must be positive (and fit the ledger's and the canister's ranges).
    InvalidAmount,
    /// A subaccount must be 32 bytes.
    InvalidSubaccount,
    /// The ledger refused or failed the transfer; nothing changed.
    Ledger {
        /// The ledger's (or the system's) answer.
        reason: String,
    },
    /// The withdrawal is not in a state this call applies to.
    WithdrawalNotRetryable,
    /// The call does not apply in this state.
    Unsupported {
        /// Why.
        reason: String,
    },
}

/// The canister's error type.
pub type Error = CanisterError;

impl From<opml_bisect::Error> for CanisterError {
    fn from(e: opml_bisect::Error) -> Self {
        Error::Game(e)
    }
}

/// Results of canister calls.
pub type Result<T> = core::result::Result<T, Error>;
