//! Stable storage: the memory layout (one virtual memory per map) and the stored records' encoding
//! ([`crate::codec`], version 1).
#![forbid(unsafe_code)]

use alloc::borrow::Cow;
use alloc::vec::Vec;

use ic_stable_structures::Storable;
use ic_stable_structures::memory_manager::MemoryId;
use ic_stable_structures::storable::Bound;

use alloc::string::String;

use candid::Nat;
use opml_bisect::Hash;

use crate::codec::{Codec, DecodeError, Reader, Writer, decode_record, encode_record};
use crate::types::{
    Account, ClaimRecord, Config, PostTask, Program, Task, TaskStatus, Totals, Upload, UploadStatus, Withdrawal,
    WithdrawalStatus,
};

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
    /// Output bytes of claims by claim id (apart from the claim record, so a move never copies them).
    pub const OUTPUTS: MemoryId = MemoryId::new(11);
}

/// Counters and running totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigCell(pub Option<Config>);

impl Codec for ConfigCell {
    fn encode(&self, w: &mut Writer) {
        self.0.encode(w);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConfigCell(Option::decode(r)?))
    }
}

crate::struct_codec! {
    Meta { next_upload, next_task, next_claim, next_withdrawal, sweep_cursor, totals }
    Totals { deposited, withdrawn, burned, balances, locked, pending_withdrawals }
    Config {
        ledger, ledger_fee, operators, arity, max_segments, max_segment_steps, min_stake, challenger_bond, burn_bps,
        min_challenge_window_ns, max_challenge_window_ns, min_clock_ns, max_clock_ns, max_program_bytes,
        max_output_bytes, sweep_interval_s,
    }
    Program { program, commitment, wasm_sha3, size, upload, registered_by, registered_at_ns }
    Upload { id, owner, wasm_sha3, size, received, chunks, started_at_ns, status }
    PostTask { program, input_root, reward, challenge_window_ns, clock_ns, worker_stake }
    Task { id, requester, spec, posted_at_ns, status, claims }
    ClaimRecord { id, task, escrow, state }
    Account { owner, subaccount }
    Withdrawal { id, owner, to, amount, fee, created_at_time, attempts, status }
}

impl Codec for UploadStatus {
    fn encode(&self, w: &mut Writer) {
        match self {
            UploadStatus::Receiving => w.u8(0),
            UploadStatus::Registered { program } => {
                w.u8(1);
                program.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(UploadStatus::Receiving),
            1 => Ok(UploadStatus::Registered { program: Hash::decode(r)? }),
            tag => Err(DecodeError::InvalidTag { what: "UploadStatus", tag }),
        }
    }
}

impl Codec for TaskStatus {
    fn encode(&self, w: &mut Writer) {
        match self {
            TaskStatus::Open => w.u8(0),
            TaskStatus::Claimed { claim } => {
                w.u8(1);
                claim.encode(w);
            }
            TaskStatus::Done { claim } => {
                w.u8(2);
                claim.encode(w);
            }
            TaskStatus::Cancelled => w.u8(3),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(TaskStatus::Open),
            1 => Ok(TaskStatus::Claimed { claim: u64::decode(r)? }),
            2 => Ok(TaskStatus::Done { claim: u64::decode(r)? }),
            3 => Ok(TaskStatus::Cancelled),
            tag => Err(DecodeError::InvalidTag { what: "TaskStatus", tag }),
        }
    }
}

impl Codec for WithdrawalStatus {
    fn encode(&self, w: &mut Writer) {
        match self {
            WithdrawalStatus::InFlight { attempt, since_ns } => {
                w.u8(0);
                attempt.encode(w);
                since_ns.encode(w);
            }
            WithdrawalStatus::Unknown { reason } => {
                w.u8(1);
                reason.encode(w);
            }
            WithdrawalStatus::Completed { block } => {
                w.u8(2);
                Codec::encode(block, w);
            }
            WithdrawalStatus::Refunded { reason } => {
                w.u8(3);
                reason.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(WithdrawalStatus::InFlight { attempt: u32::decode(r)?, since_ns: u64::decode(r)? }),
            1 => Ok(WithdrawalStatus::Unknown { reason: String::decode(r)? }),
            2 => Ok(WithdrawalStatus::Completed { block: <Nat as Codec>::decode(r)? }),
            3 => Ok(WithdrawalStatus::Refunded { reason: String::decode(r)? }),
            tag => Err(DecodeError::InvalidTag { what: "WithdrawalStatus", tag }),
        }
    }
}

/// Stored values are [`crate::codec`] records; one that does not decode traps (rolling the message back) with
/// its type and the reason, never decodes into a wrong value.
macro_rules! stored {
    ($($t:ty),* $(,)?) => {$(
        impl Storable for $t {
            fn to_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(encode_record(self))
            }
            fn into_bytes(self) -> Vec<u8> {
                encode_record(&self)
            }
            fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
                decode_record(&bytes)
                    .unwrap_or_else(|e| panic!("stable record {} does not decode: {e}", stringify!($t)))
            }
            const BOUND: Bound = Bound::Unbounded;
        }
    )*};
}

stored!(Meta, ConfigCell, Program, Upload, Task, ClaimRecord, Withdrawal);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use candid::Principal;
    use opml_bisect::{
        Bisection, Claim, ClaimState, ClaimStatus, Clock, Dispute, GameConfig, Outcome, Party, Phase, Reason,
        Resolution,
    };
    use sha3::{Digest, Sha3_256};

    fn p(b: u8) -> Principal {
        Principal::from_slice(&[b; 29])
    }

    fn dispute(phase: Phase, resolution: Option<Resolution>) -> Dispute {
        Dispute {
            challenger: Party::new(&[2; 29]).unwrap(),
            bond: 5_000_000,
            opened_at_ns: 11,
            seq: 7,
            clock: Clock { worker_ns: 100, challenger_ns: 200, since_ns: 300 },
            phase,
            segment_rounds: 1,
            step_rounds: 3,
            resolution,
        }
    }

    fn claim_record() -> ClaimRecord {
        let h = |b: u8| Hash([b; 32]);
        let posted = Bisection { lo: 1, hi: 9, lo_root: h(1), hi_root: h(2), posted: Some(vec![h(3), h(4), h(5)]) };
        ClaimRecord {
            id: 3,
            task: 2,
            escrow: 55_000_000,
            state: ClaimState {
                claim: Claim {
                    program: h(6),
                    input_root: h(7),
                    output_hash: h(8),
                    final_root: h(9),
                    segments: 3,
                    segments_root: h(10),
                    final_status: opml_bisect::FinalStatus::Trapped { code: 7 },
                },
                worker: Party::new(&[1; 29]).unwrap(),
                config: GameConfig {
                    arity: 4,
                    max_segments: 1 << 20,
                    max_segment_steps: 1 << 30,
                    clock_ns: 3600,
                    challenge_window_ns: 7200,
                    worker_stake: 50_000_000,
                    challenger_bond: 5_000_000,
                    burn_bps: 2_000,
                },
                initial_root: h(11),
                submitted_at_ns: 99,
                stake: 50_000_000,
                status: ClaimStatus::Invalidated { by: 1, at_ns: 500 },
                disputes: vec![
                    dispute(Phase::Segments(posted.clone()), None),
                    dispute(
                        Phase::ProveStep { segment: 2, step: 6, pre: h(12), post: h(13) },
                        Some(Resolution { outcome: Outcome::ChallengerWon(Reason::StepProof), at_ns: 500 }),
                    ),
                    dispute(
                        Phase::Steps { segment: 2, steps: 65_649, bisection: posted },
                        Some(Resolution { outcome: Outcome::Cancelled, at_ns: 500 }),
                    ),
                    dispute(
                        Phase::CommitSteps { segment: 0, pre: h(14), post: h(15) },
                        Some(Resolution { outcome: Outcome::WorkerWon(Reason::Timeout), at_ns: 400 }),
                    ),
                ],
            },
        }
    }

    fn config() -> Config {
        Config {
            ledger: p(9),
            ledger_fee: 10_000,
            operators: vec![p(4), Principal::anonymous()],
            arity: 4,
            max_segments: 1 << 20,
            max_segment_steps: 1 << 30,
            min_stake: 1,
            challenger_bond: 2,
            burn_bps: 3,
            min_challenge_window_ns: 4,
            max_challenge_window_ns: 5,
            min_clock_ns: 6,
            max_clock_ns: 7,
            max_program_bytes: 8,
            max_output_bytes: 9,
            sweep_interval_s: 10,
        }
    }

    fn withdrawal(status: WithdrawalStatus) -> Withdrawal {
        Withdrawal {
            id: 4,
            owner: p(5),
            to: Account { owner: p(6), subaccount: Some(vec![7; 32]) },
            amount: 1_000,
            fee: 10,
            created_at_time: 123,
            attempts: 2,
            status,
        }
    }

    /// Every stored record, with every enum variant somewhere.
    fn records() -> Vec<Vec<u8>> {
        fn bytes<T: Storable + PartialEq + core::fmt::Debug + Clone>(v: T) -> Vec<u8> {
            let b = v.to_bytes().into_owned();
            assert_eq!(T::from_bytes(Cow::Borrowed(&b)), v, "round trip");
            assert_eq!(v.clone().into_bytes(), b);
            b
        }
        let h = Hash([3; 32]);
        let task = |status| Task {
            id: 1,
            requester: p(2),
            spec: PostTask {
                program: h,
                input_root: h,
                reward: 20,
                challenge_window_ns: 30,
                clock_ns: 40,
                worker_stake: 50,
            },
            posted_at_ns: 60,
            status,
            claims: vec![0, 3, u64::MAX],
        };
        let upload = |status| Upload {
            id: 1,
            owner: p(3),
            wasm_sha3: h,
            size: 100,
            received: 50,
            chunks: 2,
            started_at_ns: 9,
            status,
        };
        vec![
            bytes(Meta {
                next_upload: 1,
                next_task: 2,
                next_claim: 3,
                next_withdrawal: 4,
                sweep_cursor: 5,
                totals: Totals {
                    deposited: u128::MAX,
                    withdrawn: 1,
                    burned: 2,
                    balances: 3,
                    locked: 4,
                    pending_withdrawals: 5,
                },
            }),
            bytes(ConfigCell(None)),
            bytes(ConfigCell(Some(config()))),
            bytes(Program {
                program: h,
                commitment: vec![1, 2, 3],
                wasm_sha3: h,
                size: 272,
                upload: 0,
                registered_by: p(1),
                registered_at_ns: 77,
            }),
            bytes(upload(UploadStatus::Receiving)),
            bytes(upload(UploadStatus::Registered { program: h })),
            bytes(task(TaskStatus::Open)),
            bytes(task(TaskStatus::Claimed { claim: 3 })),
            bytes(task(TaskStatus::Done { claim: 3 })),
            bytes(task(TaskStatus::Cancelled)),
            bytes(claim_record()),
            bytes(withdrawal(WithdrawalStatus::InFlight { attempt: 2, since_ns: 8 })),
            bytes(withdrawal(WithdrawalStatus::Unknown { reason: "timeout ⏱".into() })),
            bytes(withdrawal(WithdrawalStatus::Completed { block: Nat::from(u128::MAX) })),
            bytes(withdrawal(WithdrawalStatus::Refunded { reason: String::new() })),
        ]
    }

    /// The version-2 layout is frozen: records written by any earlier build of this layout must keep decoding.
    /// If this digest changes, a stored type or its field order changed: keep the old layout decodable under
    /// version 2, give the new one a new version byte, and only then update the digest.
    #[test]
    fn version_2_layout_is_frozen() {
        let mut h = Sha3_256::new();
        for r in records() {
            assert_eq!(r[0], crate::codec::VERSION);
            h.update((r.len() as u64).to_le_bytes());
            h.update(&r);
        }
        let digest: [u8; 32] = h.finalize().into();
        assert_eq!(Hash(digest).to_string(), "f0334b5c9fcbdf8eaa3bb130bae478807a4e9df8f009846ea9c9c8856d5a56fd");
    }

    #[test]
    #[should_panic(expected = "stable record ClaimRecord does not decode: invalid tag 9 for ClaimStatus")]
    fn a_corrupt_record_traps_with_its_type_and_reason() {
        let mut b = claim_record().to_bytes().into_owned();
        // The claim status tag: after the version byte, id, task, escrow, claim (4 + 1 hashes, segments, final
        // status: trapped tag and code), worker
        // (length + 29 bytes), config (1 + 6 x 8 + 2), initial root, submitted_at_ns and stake.
        let at = 1 + 24 + (5 * 32 + 8 + 5) + (4 + 29) + (1 + 6 * 8 + 2) + 32 + 16;
        assert_eq!(b[at], 2, "the Invalidated tag");
        b[at] = 9;
        ClaimRecord::from_bytes(Cow::Owned(b));
    }

    /// A version-1 claim record (no final status) still decodes: as a claim about a halted run.
    #[test]
    fn version_1_claims_decode_as_halted() {
        let mut want = claim_record();
        let v2 = want.to_bytes().into_owned();
        // The final status sits after the version byte, id, task, escrow and the claim's other fields.
        let at = 1 + 24 + 5 * 32 + 8;
        assert_eq!(&v2[at..at + 5], &[1, 7, 0, 0, 0], "trapped, code 7");
        let mut v1 = [&[crate::codec::VERSION_1], &v2[1..at], &v2[at + 5..]].concat();
        want.state.claim.final_status = opml_bisect::FinalStatus::Halted;
        assert_eq!(ClaimRecord::from_bytes(Cow::Owned(v1.clone())), want);
        // The same bytes labelled version 2 lack the field: refused, not misread.
        v1[0] = crate::codec::VERSION;
        assert!(decode_record::<ClaimRecord>(&v1).is_err());
    }

    #[test]
    fn candid_records_from_older_builds_are_named() {
        let candid = candid::encode_one(7u64).unwrap();
        assert_eq!(decode_record::<Meta>(&candid), Err(DecodeError::LegacyCandid));
    }
}
