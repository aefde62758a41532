//! The 32-byte hash type and the domain-separated SHA3-256 helper used by every commitment in the game.

use core::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha3::{Digest, Sha3_256};

/// A 32-byte SHA3-256 digest: a VM state root, a commitment root or an output hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash (a placeholder value; never the hash of anything in practice).
    pub const ZERO: Hash = Hash([0; 32]);

    /// SHA3-256 over a domain tag followed by the given parts, concatenated.
    pub fn tagged(tag: &[u8], parts: &[&[u8]]) -> Hash {
        let mut h = Sha3_256::new();
        h.update(tag);
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for Hash {
    fn from(b: [u8; 32]) -> Self {
        Hash(b)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short hex form: enough to tell roots apart in test output.
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..")
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// Accepts a byte string (or a sequence of bytes) of exactly 32 bytes.
struct HashVisitor;

impl<'de> Visitor<'de> for HashVisitor {
    type Value = Hash;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("32 bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Hash, E> {
        let arr: [u8; 32] = v.try_into().map_err(|_| E::invalid_length(v.len(), &self))?;
        Ok(Hash(arr))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hash, A::Error> {
        let mut arr = [0u8; 32];
        for (i, slot) in arr.iter_mut().enumerate() {
            *slot = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(de::Error::invalid_length(33, &self));
        }
        Ok(Hash(arr))
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        d.deserialize_bytes(HashVisitor)
    }
}

#[cfg(feature = "candid")]
impl candid::CandidType for Hash {
    fn _ty() -> candid::types::Type {
        candid::types::TypeInner::Vec(candid::types::TypeInner::Nat8.into()).into()
    }
    fn idl_serialize<S: candid::types::Serializer>(&self, s: S) -> Result<(), S::Error> {
        s.serialize_blob(&self.0)
    }
}
