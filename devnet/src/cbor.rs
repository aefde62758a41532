//! CBOR helpers and the IC's representation-independent hash (the request id).
//!
//! The request id of a request (and the hash the IC signs for delegations and query responses) is the
//! representation-independent hash of its content map, defined by the IC interface specification: every
//! field is hashed as `sha256(key) ++ hash(value)`, the pairs are sorted bytewise, concatenated and hashed.
//! A value's hash is `sha256` of its raw bytes (blobs, text), of its unsigned LEB128 encoding (naturals), of the
//! concatenated hashes of its elements (arrays) or, recursively, the hash of the map (maps). It is computed here
//! from the CBOR the client sent, so any field a client adds is covered, as on a replica.

use ciborium::value::{Integer, Value};
use sha2::{Digest, Sha256};

/// CBOR's self-describe tag, which the IC puts before every CBOR response.
pub const SELF_DESCRIBE_TAG: u64 = 55799;

/// Unsigned LEB128.
pub fn leb128(mut v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Signed LEB128 (for negative integers a client might send, and wasm's `i64.const` immediates).
pub fn sleb128(mut v: i128) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The representation-independent hash of one value.
pub fn hash_value(v: &Value) -> Result<[u8; 32], String> {
    Ok(match v {
        Value::Bytes(b) => sha256(b),
        Value::Text(t) => sha256(t.as_bytes()),
        Value::Integer(i) => {
            let i = i128::from(*i);
            if i >= 0 { sha256(&leb128(i as u64)) } else { sha256(&sleb128(i)) }
        }
        Value::Array(items) => {
            let mut h = Sha256::new();
            for item in items {
                h.update(hash_value(item)?);
            }
            h.finalize().into()
        }
        Value::Map(entries) => hash_of_map(entries)?,
        Value::Tag(_, inner) => hash_value(inner)?,
        Value::Float(_) => return Err("floats have no representation-independent hash".into()),
        Value::Bool(_) => return Err("booleans have no representation-independent hash".into()),
        Value::Null => return Err("null has no representation-independent hash".into()),
        _ => return Err("unsupported CBOR value".into()),
    })
}

/// The representation-independent hash of a map with text keys.
pub fn hash_of_map(entries: &[(Value, Value)]) -> Result<[u8; 32], String> {
    let mut pairs: Vec<[u8; 64]> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let Value::Text(key) = k else {
            return Err("map keys must be text".into());
        };
        let mut pair = [0u8; 64];
        pair[..32].copy_from_slice(&sha256(key.as_bytes()));
        pair[32..].copy_from_slice(&hash_value(v)?);
        pairs.push(pair);
    }
    pairs.sort_unstable();
    let mut h = Sha256::new();
    for p in &pairs {
        h.update(p);
    }
    Ok(h.finalize().into())
}

/// Encodes a value with the self-describe tag in front.
pub fn encode_tagged(v: Value) -> Vec<u8> {
    encode(&Value::Tag(SELF_DESCRIBE_TAG, Box::new(v)))
}

pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

/// Builds a CBOR map with text keys.
pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.to_string()), v)).collect())
}

pub fn nat(v: u64) -> Value {
    Value::Integer(Integer::from(v))
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

pub fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

/// Strips any number of leading tags.
pub fn untag(v: &Value) -> &Value {
    let mut v = v;
    while let Value::Tag(_, inner) = v {
        v = inner;
    }
    v
}

/// Looks a text key up in a CBOR map.
pub fn get<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries.iter().find(|(k, _)| matches!(k, Value::Text(t) if t == key)).map(|(_, v)| v)
}

pub fn as_u64(v: &Value) -> Option<u64> {
    match untag(v) {
        Value::Integer(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

pub fn as_bytes(v: &Value) -> Option<&[u8]> {
    match untag(v) {
        Value::Bytes(b) => Some(b),
        _ => None,
    }
}

pub fn as_text(v: &Value) -> Option<&str> {
    match untag(v) {
        Value::Text(t) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(624485), [0xe5, 0x8e, 0x26]);
        assert_eq!(sleb128(-123456), [0xc0, 0xbb, 0x78]);
    }

    /// The example request of the IC interface specification (section "Request ids").
    #[test]
    fn spec_request_id() {
        let content = map([
            ("request_type", text("call")),
            ("sender", bytes(&[0x04])),
            ("ingress_expiry", nat(1685570400000000000)),
            ("canister_id", bytes(&hex::decode("00000000000004D2").unwrap())),
            ("method_name", text("hello")),
            ("arg", bytes(b"DIDL\x00\xFD*")),
        ]);
        let Value::Map(entries) = content else { unreachable!() };
        assert_eq!(
            hex::encode(hash_of_map(&entries).unwrap()),
            "1d1091364d6bb8a6c16b203ee75467d59ead468f523eb058880ae8ec80e2b101"
        );
    }
}
