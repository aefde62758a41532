//! The ICRC-1/ICRC-2 ledger interface the canister calls (only the types it uses), and the pure classification
//! of a ledger answer into "executed", "not executed" or "unknown" that the withdrawal journal relies on.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use candid::{CandidType, Nat};
use serde::{Deserialize, Serialize};

use crate::types::{Account, LedgerOutcome};

/// `icrc1_transfer` argument.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TransferArg {
    /// Source subaccount of the canister (none).
    pub from_subaccount: Option<Vec<u8>>,
    /// Destination.
    pub to: Account,
    /// Amount.
    pub amount: Nat,
    /// Expected fee.
    pub fee: Option<Nat>,
    /// Memo (the withdrawal id).
    pub memo: Option<Vec<u8>>,
    /// For deduplication.
    pub created_at_time: Option<u64>,
}

/// `icrc2_transfer_from` argument.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TransferFromArgs {
    /// The spender's subaccount (none).
    pub spender_subaccount: Option<Vec<u8>>,
    /// The depositor's account.
    pub from: Account,
    /// The canister's account.
    pub to: Account,
    /// Amount.
    pub amount: Nat,
    /// Expected fee.
    pub fee: Option<Nat>,
    /// Memo.
    pub memo: Option<Vec<u8>>,
    /// For deduplication.
    pub created_at_time: Option<u64>,
}

/// ICRC-1 `TransferError`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Wrong fee.
    BadFee {
        /// The ledger's fee.
        expected_fee: Nat,
    },
    /// Burn below the minimum.
    BadBurn {
        /// The minimum.
        min_burn_amount: Nat,
    },
    /// Not enough funds.
    InsufficientFunds {
        /// The balance.
        balance: Nat,
    },
    /// `created_at_time` is too far in the past.
    TooOld,
    /// `created_at_time` is in the future.
    CreatedInFuture {
        /// The ledger's time.
        ledger_time: u64,
    },
    /// Already executed.
    Duplicate {
        /// Its block.
        duplicate_of: Nat,
    },
    /// Try later.
    TemporarilyUnavailable,
    /// Other.
    GenericError {
        /// Code.
        error_code: Nat,
        /// Message.
        message: String,
    },
}

/// ICRC-2 `TransferFromError`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TransferFromError {
    /// Wrong fee.
    BadFee {
        /// The ledger's fee.
        expected_fee: Nat,
    },
    /// Burn below the minimum.
    BadBurn {
        /// The minimum.
        min_burn_amount: Nat,
    },
    /// Not enough funds.
    InsufficientFunds {
        /// The balance.
        balance: Nat,
    },
    /// Not enough allowance: `icrc2_approve` the canister first.
    InsufficientAllowance {
        /// The allowance.
        allowance: Nat,
    },
    /// `created_at_time` is too far in the past.
    TooOld,
    /// `created_at_time` is in the future.
    CreatedInFuture {
        /// The ledger's time.
        ledger_time: u64,
    },
    /// Already executed.
    Duplicate {
        /// Its block.
        duplicate_of: Nat,
    },
    /// Try later.
    TemporarilyUnavailable,
    /// Other.
    GenericError {
        /// Code.
        error_code: Nat,
        /// Message.
        message: String,
    },
}

/// Classifies the ledger's reply to attempt `attempt` of a withdrawal's `icrc1_transfer` (every attempt carries
/// the same `created_at_time` and memo, so the ledger deduplicates them).
///
/// `Duplicate` means an earlier attempt was executed. `TooOld` on a retry is unknown: the first attempt may have
/// been executed before the deduplication window closed (a controller must check the ledger). Every other error
/// is checked by the ledger before executing anything, so it means "not executed" (and, within the window, that
/// no earlier attempt was executed either, or the answer would have been `Duplicate`).
pub fn classify_transfer(reply: &Result<Nat, TransferError>, attempt: u32) -> LedgerOutcome {
    match reply {
        Ok(block) => LedgerOutcome::Executed(block.clone()),
        Err(TransferError::Duplicate { duplicate_of }) => LedgerOutcome::Executed(duplicate_of.clone()),
        Err(TransferError::TooOld) if attempt > 1 => {
            LedgerOutcome::Unknown(String::from("TooOld on a retry: check the ledger and resolve_withdrawal"))
        }
        Err(e) => LedgerOutcome::NotExecuted(format!("{e:?}")),
    }
}
