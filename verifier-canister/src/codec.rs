//! The compact binary encoding of the records kept in stable memory.
//!
//! Why not Candid: a Candid value carries its type table and decoding it type-checks that table against the Rust
//! type, which costs millions of instructions per record on every call (measured in docs/benchmarks.md); this
//! encoding is a plain field-by-field layout that costs about one instruction per byte.
//!
//! **Layout (version 2; version 1 lacks a claim's final status).** A stored record is one version byte ([`VERSION`]) followed by the record's fields in
//! declaration order: integers little-endian at their full width, `bool` and enum tags one byte, byte strings and
//! lists a `u32` length then the items, `Option` a tag byte (0 none, 1 some) then the value. Enum tags are the
//! variant's position in [`Codec`] impls below, never in the Rust declaration, so reordering a Rust enum does not
//! change stored bytes. Encoding is deterministic (one encoding per value) and decoding is strict: unknown tags,
//! out-of-range lengths, over-long principals, invalid UTF-8 and trailing bytes are [`DecodeError`]s.
//!
//! **Upgrades.** Never change what version 1 means: a new layout gets a new version byte and a decoder for every
//! version still in stable memory. A record that does not decode traps with the record's type and the reason
//! ([`decode_record`] callers), which rolls the message back; nothing decodes silently into a wrong value.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use candid::{Nat, Principal};
use opml_bisect::{
    Bisection, Claim, ClaimState, ClaimStatus, Clock, Dispute, FinalStatus, GameConfig, Hash, Outcome, Party, Phase,
    Reason, Resolution,
};

/// The layout version written as the first byte of every stored record. Version 2 adds a claim's final status
/// (after `segments_root`); everything else is laid out as in version 1.
pub const VERSION: u8 = 2;

/// The first layout, still decoded: its claims predate trapped claims, so each is about a halted run.
pub const VERSION_1: u8 = 1;

/// Largest principal, in bytes (the IC's limit).
const MAX_PRINCIPAL: usize = 29;
/// Largest LEB128 encoding of a ledger block index kept in a withdrawal (a `u64` needs 10 bytes; leave room).
const MAX_NAT_BYTES: usize = 32;

/// Why stored bytes do not decode as the expected record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// No bytes at all.
    Empty,
    /// A Candid value (`DIDL...`): a record written by a canister build from before the version-1 layout.
    LegacyCandid,
    /// A version byte this build does not know.
    UnknownVersion(u8),
    /// The bytes end before the value does.
    Truncated {
        /// Bytes the next field needs.
        needed: u64,
        /// Bytes left.
        remaining: u64,
    },
    /// An enum or option tag that names no variant.
    InvalidTag {
        /// The type being decoded.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A length over its bound.
    TooLong {
        /// The field being decoded.
        what: &'static str,
        /// The length found.
        len: u64,
        /// Its bound.
        max: u64,
    },
    /// A text field that is not UTF-8.
    InvalidUtf8,
    /// A natural number that is not canonical LEB128.
    InvalidNat,
    /// Bytes left after the record.
    TrailingBytes(u64),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty record"),
            DecodeError::LegacyCandid => {
                f.write_str("Candid-encoded record from a build before stable layout version 1 (no migration exists)")
            }
            DecodeError::UnknownVersion(v) => write!(f, "unknown stable layout version {v}"),
            DecodeError::Truncated { needed, remaining } => {
                write!(f, "truncated: {needed} more bytes needed, {remaining} left")
            }
            DecodeError::InvalidTag { what, tag } => write!(f, "invalid tag {tag} for {what}"),
            DecodeError::TooLong { what, len, max } => write!(f, "{what}: length {len} over the bound {max}"),
            DecodeError::InvalidUtf8 => f.write_str("text is not UTF-8"),
            DecodeError::InvalidNat => f.write_str("natural number is not canonical LEB128"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes after the end of the record"),
        }
    }
}

/// Appends fields to a record's bytes.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A record of the current [`VERSION`] (the version byte already written).
    pub fn record() -> Writer {
        let mut w = Writer { buf: Vec::with_capacity(256) };
        w.u8(VERSION);
        w
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Raw bytes, no length.
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// A length or count (`u32`; every stored list and byte string is far below 4 GiB).
    pub fn len(&mut self, n: usize) {
        let n = u32::try_from(n).expect("stored lengths fit u32 (bounded by the canister's limits)");
        self.raw(&n.to_le_bytes());
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.raw(b);
    }
}

/// Reads fields from a record's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    version: u8,
}

impl<'a> Reader<'a> {
    /// Reads from `buf`, laid out as the current [`VERSION`] (no version byte expected; see [`decode_record`]).
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, version: VERSION }
    }

    /// The layout version being read.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated { needed: n as u64, remaining: self.buf.len() as u64 });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A length or count of at most `max`.
    pub fn len(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let n = u32::from_le_bytes(self.array()?) as usize;
        if n > max {
            return Err(DecodeError::TooLong { what, len: n as u64, max: max as u64 });
        }
        Ok(n)
    }

    /// A length-prefixed byte string of at most `max` bytes (checked against what is left before allocating).
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.len(what, max)?;
        self.take(n)
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
}

/// A value with a stored layout (see the module documentation).
pub trait Codec: Sized {
    /// Appends the value's fields.
    fn encode(&self, w: &mut Writer);
    /// Reads a value written by [`Codec::encode`].
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A whole record: the version byte, then the value.
pub fn encode_record<T: Codec>(v: &T) -> Vec<u8> {
    let mut w = Writer::record();
    v.encode(&mut w);
    w.finish()
}

/// Decodes a whole record written by [`encode_record`]: checks the version byte and that nothing follows.
pub fn decode_record<T: Codec>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Empty),
        Some(&v @ (VERSION_1 | VERSION)) => {
            let mut r = Reader { buf: &bytes[1..], version: v };
            let v = T::decode(&mut r)?;
            match r.remaining() {
                0 => Ok(v),
                n => Err(DecodeError::TrailingBytes(n as u64)),
            }
        }
        Some(_) if bytes.starts_with(b"DIDL") => Err(DecodeError::LegacyCandid),
        Some(&v) => Err(DecodeError::UnknownVersion(v)),
    }
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn encode(&self, w: &mut Writer) {
                w.raw(&self.to_le_bytes());
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(r.array()?))
            }
        }
    )*};
}

int_codec!(u8, u16, u32, u64, u128);

impl Codec for bool {
    fn encode(&self, w: &mut Writer) {
        w.u8(u8::from(*self));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what: "bool", tag }),
        }
    }
}

impl Codec for Hash {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Hash(r.array()?))
    }
}

impl Codec for Principal {
    fn encode(&self, w: &mut Writer) {
        w.bytes(self.as_slice());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Principal::from_slice(r.bytes("principal", MAX_PRINCIPAL)?))
    }
}

impl Codec for Party {
    fn encode(&self, w: &mut Writer) {
        w.bytes(self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let b = r.bytes("party", opml_bisect::MAX_PARTY_LEN)?;
        // Cannot fail: the length was bounded just above.
        Party::new(b).map_err(|_| DecodeError::TooLong {
            what: "party",
            len: b.len() as u64,
            max: opml_bisect::MAX_PARTY_LEN as u64,
        })
    }
}

impl Codec for String {
    fn encode(&self, w: &mut Writer) {
        w.bytes(self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let b = r.bytes("text", u32::MAX as usize)?;
        core::str::from_utf8(b).map(String::from).map_err(|_| DecodeError::InvalidUtf8)
    }
}

impl Codec for Nat {
    fn encode(&self, w: &mut Writer) {
        let mut leb = Vec::new();
        self.encode(&mut leb).expect("writing to a Vec cannot fail");
        w.bytes(&leb);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let b = r.bytes("nat", MAX_NAT_BYTES)?;
        let mut rest = b;
        let n = Nat::decode(&mut rest).map_err(|_| DecodeError::InvalidNat)?;
        // Exactly the bytes `encode` writes for that value, or the stored bytes were not written by us.
        let mut again = Vec::new();
        n.encode(&mut again).expect("writing to a Vec cannot fail");
        if !rest.is_empty() || again != b {
            return Err(DecodeError::InvalidNat);
        }
        Ok(n)
    }
}

impl<T: Codec> Codec for Option<T> {
    fn encode(&self, w: &mut Writer) {
        match self {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                v.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(r)?)),
            tag => Err(DecodeError::InvalidTag { what: "option", tag }),
        }
    }
}

/// Byte strings (blobs): one copy, not an item loop.
impl Codec for Vec<u8> {
    fn encode(&self, w: &mut Writer) {
        w.bytes(self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.bytes("blob", u32::MAX as usize)?.to_vec())
    }
}

macro_rules! list_codec {
    ($($t:ty),*) => {$(
        impl Codec for Vec<$t> {
            fn encode(&self, w: &mut Writer) {
                w.len(self.len());
                for v in self {
                    v.encode(w);
                }
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let n = r.len(concat!("list of ", stringify!($t)), u32::MAX as usize)?;
                // Every item takes at least one byte, so what is left bounds the allocation.
                let mut v = Vec::with_capacity(n.min(r.remaining()));
                for _ in 0..n {
                    v.push(<$t>::decode(r)?);
                }
                Ok(v)
            }
        }
    )*};
}

list_codec!(u64, Hash, Principal, Dispute);

/// A struct's fields in declaration order (the order is the layout: never reorder a stored struct's list).
#[macro_export]
#[doc(hidden)]
macro_rules! struct_codec {
    ($($t:path { $($f:ident),* $(,)? })*) => {$(
        impl $crate::codec::Codec for $t {
            fn encode(&self, w: &mut $crate::codec::Writer) {
                $($crate::codec::Codec::encode(&self.$f, w);)*
            }
            fn decode(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                Ok(Self { $($f: $crate::codec::Codec::decode(r)?,)* })
            }
        }
    )*};
}

struct_codec! {
    GameConfig {
        arity, max_segments, max_segment_steps, clock_ns, challenge_window_ns, worker_stake, challenger_bond,
        burn_bps,
    }
    Clock { worker_ns, challenger_ns, since_ns }
    Bisection { lo, hi, lo_root, hi_root, posted }
    Resolution { outcome, at_ns }
    Dispute { challenger, bond, opened_at_ns, seq, clock, phase, segment_rounds, step_rounds, resolution }
    ClaimState { claim, worker, config, initial_root, submitted_at_ns, stake, status, disputes }
}

impl Codec for Claim {
    fn encode(&self, w: &mut Writer) {
        let Claim { program, input_root, output_hash, final_root, segments, segments_root, final_status } = self;
        for h in [program, input_root, output_hash, final_root] {
            h.encode(w);
        }
        segments.encode(w);
        segments_root.encode(w);
        final_status.encode(w);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (program, input_root, output_hash, final_root) =
            (Hash::decode(r)?, Hash::decode(r)?, Hash::decode(r)?, Hash::decode(r)?);
        let (segments, segments_root) = (u64::decode(r)?, Hash::decode(r)?);
        // Version 1 stored no final status: only halted runs could be claimed then.
        let final_status = if r.version() == VERSION_1 { FinalStatus::Halted } else { FinalStatus::decode(r)? };
        Ok(Claim { program, input_root, output_hash, final_root, segments, segments_root, final_status })
    }
}

impl Codec for FinalStatus {
    fn encode(&self, w: &mut Writer) {
        match self {
            FinalStatus::Halted => w.u8(0),
            FinalStatus::Trapped { code } => {
                w.u8(1);
                code.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(FinalStatus::Halted),
            1 => Ok(FinalStatus::Trapped { code: u32::decode(r)? }),
            tag => Err(DecodeError::InvalidTag { what: "FinalStatus", tag }),
        }
    }
}

impl Codec for Reason {
    fn encode(&self, w: &mut Writer) {
        w.u8(match self {
            Reason::StepProof => 0,
            Reason::Timeout => 1,
        });
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Reason::StepProof),
            1 => Ok(Reason::Timeout),
            tag => Err(DecodeError::InvalidTag { what: "Reason", tag }),
        }
    }
}

impl Codec for Outcome {
    fn encode(&self, w: &mut Writer) {
        match self {
            Outcome::WorkerWon(reason) => {
                w.u8(0);
                reason.encode(w);
            }
            Outcome::ChallengerWon(reason) => {
                w.u8(1);
                reason.encode(w);
            }
            Outcome::Cancelled => w.u8(2),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Outcome::WorkerWon(Reason::decode(r)?)),
            1 => Ok(Outcome::ChallengerWon(Reason::decode(r)?)),
            2 => Ok(Outcome::Cancelled),
            tag => Err(DecodeError::InvalidTag { what: "Outcome", tag }),
        }
    }
}

impl Codec for ClaimStatus {
    fn encode(&self, w: &mut Writer) {
        match self {
            ClaimStatus::Pending => w.u8(0),
            ClaimStatus::Final { at_ns } => {
                w.u8(1);
                at_ns.encode(w);
            }
            ClaimStatus::Invalidated { by, at_ns } => {
                w.u8(2);
                by.encode(w);
                at_ns.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(ClaimStatus::Pending),
            1 => Ok(ClaimStatus::Final { at_ns: u64::decode(r)? }),
            2 => Ok(ClaimStatus::Invalidated { by: u32::decode(r)?, at_ns: u64::decode(r)? }),
            tag => Err(DecodeError::InvalidTag { what: "ClaimStatus", tag }),
        }
    }
}

impl Codec for Phase {
    fn encode(&self, w: &mut Writer) {
        match self {
            Phase::Segments(b) => {
                w.u8(0);
                b.encode(w);
            }
            Phase::CommitSteps { segment, pre, post } => {
                w.u8(1);
                segment.encode(w);
                pre.encode(w);
                post.encode(w);
            }
            Phase::Steps { segment, steps, bisection } => {
                w.u8(2);
                segment.encode(w);
                steps.encode(w);
                bisection.encode(w);
            }
            Phase::ProveStep { segment, step, pre, post } => {
                w.u8(3);
                segment.encode(w);
                step.encode(w);
                pre.encode(w);
                post.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Phase::Segments(Bisection::decode(r)?)),
            1 => Ok(Phase::CommitSteps { segment: u64::decode(r)?, pre: Hash::decode(r)?, post: Hash::decode(r)? }),
            2 => {
                Ok(Phase::Steps { segment: u64::decode(r)?, steps: u64::decode(r)?, bisection: Bisection::decode(r)? })
            }
            3 => Ok(Phase::ProveStep {
                segment: u64::decode(r)?,
                step: u64::decode(r)?,
                pre: Hash::decode(r)?,
                post: Hash::decode(r)?,
            }),
            tag => Err(DecodeError::InvalidTag { what: "Phase", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[derive(Debug, PartialEq)]
    struct Pair {
        a: u64,
        b: Option<Hash>,
    }
    struct_codec! { Pair { a, b } }

    #[test]
    fn records_round_trip_and_reject_bad_bytes() {
        let p = Pair { a: 7, b: Some(Hash([9; 32])) };
        let bytes = encode_record(&p);
        assert_eq!(bytes.len(), 1 + 8 + 1 + 32);
        assert_eq!(decode_record::<Pair>(&bytes), Ok(p));
        assert_eq!(decode_record::<Pair>(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_record::<Pair>(b"DIDL\x00\x01\x78"), Err(DecodeError::LegacyCandid));
        assert_eq!(decode_record::<Pair>(&[3, 0]), Err(DecodeError::UnknownVersion(3)));
        assert_eq!(
            decode_record::<Pair>(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { needed: 32, remaining: 31 })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode_record::<Pair>(&long), Err(DecodeError::TrailingBytes(1)));
        let mut tag = bytes.clone();
        tag[9] = 2;
        assert_eq!(decode_record::<Pair>(&tag), Err(DecodeError::InvalidTag { what: "option", tag: 2 }));
    }

    #[test]
    fn bounded_fields_reject_oversized_lengths() {
        let mut w = Writer::record();
        w.bytes(&[1; 30]);
        assert_eq!(
            decode_record::<Principal>(&w.finish()),
            Err(DecodeError::TooLong { what: "principal", len: 30, max: 29 })
        );
        // A list count far beyond the bytes present fails on the first missing item, without a huge allocation.
        let mut w = Writer::record();
        w.len(u32::MAX as usize);
        assert!(matches!(decode_record::<Vec<Hash>>(&w.finish()), Err(DecodeError::Truncated { .. })));
        let mut w = Writer::record();
        w.bytes(&[0xff, 0xfe]);
        assert_eq!(decode_record::<String>(&w.finish()), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn nats_round_trip_and_must_be_canonical() {
        for n in [Nat::from(0u8), Nat::from(127u8), Nat::from(u64::MAX), Nat::from(u128::MAX)] {
            assert_eq!(decode_record::<Nat>(&encode_record(&n)), Ok(n));
        }
        // 0 as two LEB128 groups: same value, not our encoding.
        let mut w = Writer::record();
        w.bytes(&[0x80, 0x00]);
        assert_eq!(decode_record::<Nat>(&w.finish()), Err(DecodeError::InvalidNat));
    }

    #[test]
    fn enum_tags_are_fixed() {
        let phases = vec![
            (Phase::Segments(Bisection::new(0, 4, Hash([1; 32]), Hash([2; 32]))), 0u8),
            (Phase::CommitSteps { segment: 1, pre: Hash([1; 32]), post: Hash([2; 32]) }, 1),
            (Phase::Steps { segment: 1, steps: 9, bisection: Bisection::new(0, 9, Hash::ZERO, Hash::ZERO) }, 2),
            (Phase::ProveStep { segment: 1, step: 3, pre: Hash::ZERO, post: Hash::ZERO }, 3),
        ];
        for (p, tag) in phases {
            let bytes = encode_record(&p);
            assert_eq!(bytes[1], tag, "{p:?}");
            assert_eq!(decode_record::<Phase>(&bytes), Ok(p));
        }
        assert_eq!(decode_record::<Phase>(&[VERSION, 4]), Err(DecodeError::InvalidTag { what: "Phase", tag: 4 }));
        // A claim's final status: halted, or trapped with its code.
        assert_eq!(encode_record(&FinalStatus::Halted), [VERSION, 0]);
        let trapped = FinalStatus::Trapped { code: 7 };
        assert_eq!(encode_record(&trapped), [VERSION, 1, 7, 0, 0, 0]);
        assert_eq!(decode_record::<FinalStatus>(&encode_record(&trapped)), Ok(trapped));
        assert_eq!(
            decode_record::<FinalStatus>(&[VERSION, 2]),
            Err(DecodeError::InvalidTag { what: "FinalStatus", tag: 2 })
        );
    }
}
