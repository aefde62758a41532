//! Shared helpers of the devnet's integration tests.
#![allow(dead_code)]

use candid::{CandidType, Decode, Deserialize, Encode, Nat, Principal};
use ic_agent::Agent;
use ic_agent::identity::{AnonymousIdentity, BasicIdentity, Secp256k1Identity};
use opml_devnet::test_canisters::COUNTER_WASM;
use opml_devnet::{Devnet, DevnetConfig};

pub fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", base64(der))
}

/// An Ed25519 identity from a PKCS#8 PEM (the format `dfx identity export` writes).
pub fn ed25519_identity(seed: u8) -> BasicIdentity {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&[seed; 32]);
    BasicIdentity::from_pem(pem("PRIVATE KEY", &der)).expect("valid Ed25519 PEM")
}

/// A secp256k1 identity from a SEC1 PEM.
pub fn secp256k1_identity(seed: u8) -> Secp256k1Identity {
    let mut der = hex::decode("302e0201010420").unwrap();
    der.extend_from_slice(&[seed; 32]);
    der.extend_from_slice(&hex::decode("a00706052b8104000a").unwrap());
    Secp256k1Identity::from_pem(pem("EC PRIVATE KEY", &der)).expect("valid secp256k1 PEM")
}

pub async fn agent(url: &str, identity: impl ic_agent::Identity + 'static) -> Agent {
    let agent = Agent::builder().with_url(url).with_identity(identity).build().expect("agent");
    agent.fetch_root_key().await.expect("fetch_root_key");
    agent
}

pub async fn anonymous_agent(url: &str) -> Agent {
    agent(url, AnonymousIdentity).await
}

/// A devnet with the counter canister installed (its ledger: the built-in one).
pub fn devnet_with_counter(config: DevnetConfig) -> (Devnet, Principal) {
    let devnet = Devnet::start(config).expect("devnet starts");
    let ledger = devnet.ledger_id();
    let id = devnet
        .install_canister(COUNTER_WASM, Encode!(&Some(ledger)).unwrap(), vec![Principal::anonymous()])
        .expect("counter installs");
    (devnet, id)
}

pub async fn update<R: for<'de> Deserialize<'de> + CandidType>(
    agent: &Agent,
    canister: Principal,
    method: &str,
    arg: Vec<u8>,
) -> R {
    let out =
        agent.update(&canister, method).with_arg(arg).call_and_wait().await.unwrap_or_else(|e| panic!("{method}: {e}"));
    Decode!(&out, R).unwrap()
}

pub async fn query<R: for<'de> Deserialize<'de> + CandidType>(
    agent: &Agent,
    canister: Principal,
    method: &str,
    arg: Vec<u8>,
) -> R {
    let out = agent.query(&canister, method).with_arg(arg).call().await.unwrap_or_else(|e| panic!("{method}: {e}"));
    Decode!(&out, R).unwrap()
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub owner: Principal,
    pub subaccount: Option<serde_bytes::ByteBuf>,
}

pub fn account(owner: Principal) -> Account {
    Account { owner, subaccount: None }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LedgerError {
    BadFee { expected_fee: Nat },
    BadBurn { min_burn_amount: Nat },
    InsufficientFunds { balance: Nat },
    InsufficientAllowance { allowance: Nat },
    AllowanceChanged { current_allowance: Nat },
    Expired { ledger_time: u64 },
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    Duplicate { duplicate_of: Nat },
    TemporarilyUnavailable,
    GenericError { error_code: Nat, message: String },
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct ApproveArgs {
    pub from_subaccount: Option<serde_bytes::ByteBuf>,
    pub spender: Account,
    pub amount: Nat,
    pub expected_allowance: Option<Nat>,
    pub expires_at: Option<u64>,
    pub fee: Option<Nat>,
    pub memo: Option<serde_bytes::ByteBuf>,
    pub created_at_time: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct TransferArg {
    pub from_subaccount: Option<serde_bytes::ByteBuf>,
    pub to: Account,
    pub amount: Nat,
    pub fee: Option<Nat>,
    pub memo: Option<serde_bytes::ByteBuf>,
    pub created_at_time: Option<u64>,
}
