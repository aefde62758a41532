//! Keys and signatures: the devnet's BLS12-381 root key (certificates), its node's Ed25519 key (query response
//! signatures), and the verification of the clients' request signatures (Ed25519, ECDSA on secp256k1 and P-256,
//! with delegation chains).

use candid::Principal;
use ed25519_dalek::{Signer, Verifier};
use ic_bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use ic_bls12_381::{G1Affine, G1Projective, G2Affine, Scalar};
use sha2::{Digest, Sha512};

/// DER prefix of a BLS12-381 G2 public key (the IC's root key format; OIDs 1.3.6.1.4.1.44668.5.3.1.2.1 and
/// 1.3.6.1.4.1.44668.5.3.2.1).
pub const BLS_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03, 0x01, 0x02,
    0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03, 0x02, 0x01, 0x03, 0x61, 0x00,
];

/// DER prefix of an Ed25519 public key (OID 1.3.101.112).
pub const ED25519_DER_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The domain separator of BLS signatures (min-sig: signatures in G1, keys in G2), as the IC uses it.
const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

pub const DOMAIN_STATE_ROOT: &[u8] = b"\x0Dic-state-root";
pub const DOMAIN_REQUEST: &[u8] = b"\x0Aic-request";
pub const DOMAIN_DELEGATION: &[u8] = b"\x1Aic-request-auth-delegation";
pub const DOMAIN_RESPONSE: &[u8] = b"\x0Bic-response";

/// The devnet's threshold-key stand-in: one BLS12-381 secret key.
pub struct BlsKey {
    sk: Scalar,
    pk_der: Vec<u8>,
}

impl BlsKey {
    /// Derives the key from 32 seed bytes.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut wide = [0u8; 64];
        let digest = Sha512::new().chain_update(b"opml-devnet root key").chain_update(seed).finalize();
        wide.copy_from_slice(&digest);
        let sk = Scalar::from_bytes_wide(&wide);
        let pk = G2Affine::from(G2Affine::generator() * sk);
        let mut pk_der = BLS_DER_PREFIX.to_vec();
        pk_der.extend_from_slice(&pk.to_compressed());
        BlsKey { sk, pk_der }
    }

    /// The DER-encoded public key (the root key clients fetch with `fetch_root_key`).
    pub fn public_key_der(&self) -> &[u8] {
        &self.pk_der
    }

    /// Signs `message` (48-byte compressed G1 point).
    pub fn sign(&self, message: &[u8]) -> [u8; 48] {
        let h = <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve(message, BLS_DST);
        G1Affine::from(h * self.sk).to_compressed()
    }

    /// Signs a state root: `sign("\x0Dic-state-root" ++ root)`.
    pub fn sign_root(&self, root: &[u8; 32]) -> [u8; 48] {
        let mut msg = DOMAIN_STATE_ROOT.to_vec();
        msg.extend_from_slice(root);
        self.sign(&msg)
    }
}

/// The devnet's single node: an Ed25519 key that signs query responses.
pub struct NodeKey {
    key: ed25519_dalek::SigningKey,
    der: Vec<u8>,
    id: Principal,
}

impl NodeKey {
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let digest = Sha512::new().chain_update(b"opml-devnet node key").chain_update(seed).finalize();
        let mut sk = [0u8; 32];
        sk.copy_from_slice(&digest[..32]);
        let key = ed25519_dalek::SigningKey::from_bytes(&sk);
        let mut der = ED25519_DER_PREFIX.to_vec();
        der.extend_from_slice(key.verifying_key().as_bytes());
        let id = Principal::self_authenticating(&der);
        NodeKey { key, der, id }
    }

    pub fn id(&self) -> Principal {
        self.id
    }

    pub fn public_key_der(&self) -> &[u8] {
        &self.der
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

/// Verifies `sig` over `msg` by the DER-encoded public key `der` (Ed25519, ECDSA secp256k1 or P-256).
pub fn verify_signature(der: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), String> {
    if der.len() == 44 && der[..12] == ED25519_DER_PREFIX {
        let key = ed25519_dalek::VerifyingKey::from_bytes(der[12..].try_into().expect("32 bytes"))
            .map_err(|e| format!("invalid Ed25519 public key: {e}"))?;
        let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|e| format!("malformed Ed25519 signature: {e}"))?;
        return key.verify(msg, &sig).map_err(|_| "Ed25519 signature verification failed".to_string());
    }
    use k256::pkcs8::DecodePublicKey;
    if let Ok(key) = k256::ecdsa::VerifyingKey::from_public_key_der(der) {
        let sig = k256::ecdsa::Signature::from_slice(sig).map_err(|e| format!("malformed ECDSA signature: {e}"))?;
        use k256::ecdsa::signature::Verifier as _;
        return key.verify(msg, &sig).map_err(|_| "ECDSA (secp256k1) signature verification failed".to_string());
    }
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
        let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|e| format!("malformed ECDSA signature: {e}"))?;
        use p256::ecdsa::signature::Verifier as _;
        return key.verify(msg, &sig).map_err(|_| "ECDSA (P-256) signature verification failed".to_string());
    }
    Err(format!(
        "unsupported public key (the devnet verifies Ed25519, ECDSA secp256k1 and ECDSA P-256 keys): {}",
        hex::encode(der)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bls_signature_verifies_with_pairing() {
        use ic_bls12_381::{G2Prepared, multi_miller_loop};
        let key = BlsKey::from_seed(&[7; 32]);
        let sig = key.sign(b"hello");
        let sig = G1Affine::from_compressed(&sig).unwrap();
        let pk = G2Affine::from_compressed(key.public_key_der()[37..].try_into().unwrap()).unwrap();
        let h = <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve(b"hello", BLS_DST);
        let h = G1Affine::from(h);
        let neg_g2 = G2Prepared::from(-G2Affine::generator());
        let x = multi_miller_loop(&[(&sig, &neg_g2), (&h, &G2Prepared::from(pk))]).final_exponentiation();
        assert_eq!(x, ic_bls12_381::Gt::identity());
    }

    #[test]
    fn ed25519_round_trip() {
        let node = NodeKey::from_seed(&[1; 32]);
        let sig = node.sign(b"msg");
        verify_signature(node.public_key_der(), b"msg", &sig).unwrap();
        assert!(verify_signature(node.public_key_der(), b"other", &sig).is_err());
    }
}
