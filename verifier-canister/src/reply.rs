//! Candid replies with their type part computed once per reply type instead of once per call.
//!
//! A Candid message is `DIDL`, a type table, the argument types, then the values. For a Rust type the first three
//! are fixed, yet `candid::encode_one` rebuilds them on every call: it constructs the whole Candid type (with
//! every doc comment of every variant: candid's derive attaches them) and serializes the table. For the
//! `Result<_, CanisterError>` replies (the error enum nests the game's) that is ~2.8M instructions per call, more
//! than everything else a move does (docs/benchmarks.md). [`encode`] keeps the fixed prefix per Rust type and
//! appends only the value's bytes; the output is byte-identical to `candid::encode_one` (tested below).
//!
//! The cache lives in the heap: filled by [`warm`] in `init`/`post_upgrade` for every method's reply type (so a call
//! pays only for its value; queries must find it there, since a query's heap changes are discarded), and filled
//! lazily for any other type. Its content depends only on the Rust types, never on the calls, so it cannot make two
//! replicas or two calls differ.

use core::any::TypeId;
use std::cell::RefCell;
use std::collections::BTreeMap;

use candid::CandidType;
use candid::ser::{TypeSerialize, ValueSerializer};

thread_local! {
    static PREFIXES: RefCell<BTreeMap<TypeId, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
}

/// `DIDL`, the type table and the argument type of a one-value message of type `T`, exactly as
/// `candid::encode_one` writes them.
fn prefix<T: CandidType>() -> Vec<u8> {
    // What `IDLBuilder::new` does first: types are numbered afresh for every message.
    candid::types::internal::env_clear();
    let mut types = TypeSerialize::new();
    types.push_type(&T::ty()).expect("a Rust reply type has a Candid type table");
    types.serialize().expect("a Rust reply type has a Candid type table");
    let mut out = b"DIDL".to_vec();
    out.extend_from_slice(types.get_result());
    out
}

/// Fills the cache for `T` (see the module docs).
pub fn warm<T: CandidType + 'static>() {
    PREFIXES.with_borrow_mut(|m| {
        m.entry(TypeId::of::<T>()).or_insert_with(prefix::<T>);
    });
}

/// The Candid encoding of `value` as a one-value message, as `candid::encode_one` would write it.
pub fn encode<T: CandidType + 'static>(value: &T) -> Vec<u8> {
    let mut out = PREFIXES.with_borrow_mut(|m| m.entry(TypeId::of::<T>()).or_insert_with(prefix::<T>).clone());
    let mut values = ValueSerializer::new();
    value.idl_serialize(&mut values).expect("Candid serialization of a reply value");
    out.extend_from_slice(values.get_result());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use crate::types::{Id, Upload, UploadStatus};
    use opml_bisect::{Hash, MoveKind, Role};

    fn same<T: CandidType + 'static>(v: T) {
        let expected = candid::encode_one(&v).unwrap();
        // Cold, then warm: both byte-identical to Candid's own encoding.
        assert_eq!(encode(&v), expected);
        assert_eq!(encode(&v), expected);
    }

    #[test]
    fn replies_are_byte_identical_to_encode_one() {
        same::<Result<()>>(Ok(()));
        same::<Result<()>>(Err(Error::UnknownClaim { claim: 9 }));
        same::<Result<()>>(Err(Error::Game(opml_bisect::Error::NotYourTurn { mover: Role::Worker })));
        same::<Result<()>>(Err(Error::Game(opml_bisect::Error::WrongMove {
            got: MoveKind::Choose,
            expected: MoveKind::PostRoots,
        })));
        same::<Result<Id>>(Ok(u64::MAX));
        same::<Result<Hash>>(Ok(Hash([5; 32])));
        same::<Result<Upload>>(Ok(Upload {
            id: 1,
            owner: candid::Principal::from_slice(&[3; 29]),
            wasm_sha3: Hash([1; 32]),
            size: 10,
            received: 4,
            chunks: 1,
            started_at_ns: 77,
            status: UploadStatus::Registered { program: Hash([2; 32]) },
        }));
        same::<u64>(42);
        // Another type's encoding in between (which clears candid's type environment) changes nothing.
        let _ = candid::encode_one(Ok::<u32, Error>(3)).unwrap();
        same::<Result<()>>(Err(Error::InvalidAmount));
        warm::<Result<u32>>();
        same::<Result<u32>>(Ok(3));
    }

    #[test]
    fn replies_decode_as_their_type() {
        let bytes = encode::<Result<Id>>(&Err(Error::UnknownTask { task: 4 }));
        assert_eq!(candid::decode_one::<Result<Id>>(&bytes).unwrap(), Err(Error::UnknownTask { task: 4 }));
    }
}
