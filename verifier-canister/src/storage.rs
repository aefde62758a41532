//! Stable storage: the memory layout (one virtual memory per map) and Candid encoding of stored values.
#![forbid(unsafe_code)]

use alloc::borrow::Cow;
use alloc::vec::Vec;

use ic_stable_structures::Storable;
use ic_stable_structures::memory_manager::MemoryId;
use ic_stable_structures::storable::Bound;

use crate::types::{ClaimRecord, Config, Program, Task, Totals, Upload, Withdrawal};

/// Virtual memory ids. Never reuse or renumber one: upgrades find their data by these ids.
pub mod ids {
    use super::MemoryId;
    /// The configuration cell.
    pub const CONFIG: MemoryId = MemoryId::new(0);
    /// Counters and totals.
    pub const META: MemoryId = MemoryId::new(1);
    /// Programs by hash.
    pub const PROGRAMS: MemoryId = MemoryId::new(2);
    /// Uploads by id.
    pub const UPLOADS: MemoryId = MemoryId::new(3);
    /// Module chunks by (upload, offset).
    pub const CHUNKS: MemoryId = MemoryId::new(4);
    /// Tasks by id.
    pub const TASKS: MemoryId = MemoryId::new(5);
    /// Claims by id.
    pub const CLAIMS: MemoryId = MemoryId::new(6);
    /// Ids of pending claims (what the sweep visits).
    pub const LIVE: MemoryId = MemoryId::new(7);
    /// Free balances by principal.
    pub const BALANCES: MemoryId = MemoryId::new(8);
    /// Withdrawals by id.
    pub const WITHDRAWALS: MemoryId = MemoryId::new(9);
    /// Withdrawal ids by owner.
    pub const OWNER_WITHDRAWALS: MemoryId = MemoryId::new(10);
}

/// Counters and running totals.
#[derive(candid::CandidType, serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Next upload id.
    pub next_upload: u64,
    /// Next task id.
    pub next_task: u64,
    /// Next claim id.
    pub next_claim: u64,
    /// Next withdrawal id.
    pub next_withdrawal: u64,
    /// Where the next sweep starts.
    pub sweep_cursor: u64,
    /// Running totals.
    pub totals: Totals,
}

/// The configuration cell's content (empty only before `init`).
#[derive(candid::CandidType, serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigCell(pub Option<Config>);

macro_rules! candid_storable {
    ($($t:ty),* $(,)?) => {$(
        impl Storable for $t {
            fn to_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(candid::encode_one(self).expect("Candid encoding of a stored value"))
            }
            fn into_bytes(self) -> Vec<u8> {
                candid::encode_one(&self).expect("Candid encoding of a stored value")
            }
            fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
                candid::decode_one(&bytes).expect("Candid decoding of a stored value")
            }
            const BOUND: Bound = Bound::Unbounded;
        }
    )*};
}

candid_storable!(Meta, ConfigCell, Program, Upload, Task, ClaimRecord, Withdrawal);
