//! Parties of the game: opaque principal bytes, and the two roles in a dispute.

use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::Error;

/// The longest principal the Internet Computer issues, in bytes.
pub const MAX_PARTY_LEN: usize = 29;

/// A participant: the raw bytes of an IC principal (at most 29 bytes, opaque to the rules).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Party(Vec<u8>);

impl Party {
    /// A party from principal bytes; errors if longer than [`MAX_PARTY_LEN`].
    pub fn new(bytes: &[u8]) -> Result<Party, Error> {
        if bytes.len() > MAX_PARTY_LEN {
            return Err(Error::PartyTooLong { len: bytes.len() as u32 });
        }
        Ok(Party(bytes.to_vec()))
    }

    /// The principal bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Party(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

impl Serialize for Party {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// Accepts a byte string (or byte sequence) of at most [`MAX_PARTY_LEN`] bytes.
struct PartyVisitor;

impl<'de> Visitor<'de> for PartyVisitor {
    type Value = Party;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("at most 29 bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Party, E> {
        Party::new(v).map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Party, A::Error> {
        let mut bytes = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            if bytes.len() == MAX_PARTY_LEN {
                return Err(de::Error::invalid_length(MAX_PARTY_LEN + 1, &self));
            }
            bytes.push(b);
        }
        Ok(Party(bytes))
    }
}

impl<'de> Deserialize<'de> for Party {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Party, D::Error> {
        d.deserialize_bytes(PartyVisitor)
    }
}

#[cfg(feature = "candid")]
impl candid::CandidType for Party {
    fn _ty() -> candid::types::Type {
        candid::types::TypeInner::Vec(candid::types::TypeInner::Nat8.into()).into()
    }
    fn idl_serialize<S: candid::types::Serializer>(&self, s: S) -> Result<(), S::Error> {
        s.serialize_blob(&self.0)
    }
}

/// The two sides of one dispute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum Role {
    /// The party that posted the claim and defends it.
    Worker,
    /// The party that opened the dispute and attacks the claim.
    Challenger,
}

impl Role {
    /// The other role.
    pub fn other(self) -> Role {
        match self {
            Role::Worker => Role::Challenger,
            Role::Challenger => Role::Worker,
        }
    }
}
