//! The chain client: [`Chain`], everything the agents and commands do on-chain, and [`IcChain`], its
//! implementation over the stock `ic-agent` (mainnet, a local replica, or the embedded devnet over HTTP: one code
//! path for all three).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Decode, Nat, Principal};
use ic_agent::identity::{BasicIdentity, Secp256k1Identity};
use ic_agent::{Agent, AgentError, Identity};
use opml_bisect::{ClaimState, Hash};
use opml_devnet::ledger::{Account as LedgerAccount, ApproveArgs, ApproveError, MintArgs, TransferError};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::shell::UploadChunk;
use opml_verifier_canister::types::{
    BeginUpload, ClaimPage, ClaimView, Config, DepositArgs, DisputeView, Id, PlayArgs, PostTask, Program,
    RegistrationStep, SubmitClaim, Task, TaskPage, Totals, WithdrawArgs, Withdrawal,
};
use serde::de::DeserializeOwned;
use sha3::{Digest, Sha3_256};

/// Most `finish_upload` calls one registration makes (a 2 MiB guest takes a handful).
const MAX_FINISH_CALLS: usize = 256;

/// The mainnet API boundary.
pub const MAINNET_URL: &str = "https://icp-api.io";
/// Where `dfx start` listens by default.
pub const LOCAL_URL: &str = "http://127.0.0.1:4943";
/// Upload chunk size (the canister accepts up to 1 MiB; leave room for the Candid envelope under 2 MiB ingress).
pub const CHUNK: usize = 1 << 20;

/// Why an on-chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The network could not be reached or answered with something that is not an IC answer.
    #[error("{method}: cannot talk to {url}: {message}")]
    Transport { method: String, url: String, message: String },
    /// The IC rejected the call (no such canister or method, a trap, a refused ingress message...).
    #[error("{method} was rejected: {message}")]
    Rejected { method: String, message: String },
    /// The canister answered with its typed error.
    #[error("{method}: the canister refused: {error:?}")]
    Canister { method: String, error: CanisterError },
    /// The ledger answered with its typed error.
    #[error("{method}: the ledger refused: {message}")]
    Ledger { method: String, message: String },
    /// The answer is not what the interface says (wrong canister id?).
    #[error("{method}: unexpected answer (is this the verifier canister?): {message}")]
    Decode { method: String, message: String },
}

impl ChainError {
    /// The canister's typed error, if that is what this is.
    pub fn canister(&self) -> Option<&CanisterError> {
        match self {
            ChainError::Canister { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Which IC to talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// Mainnet (`https://icp-api.io`); the root key is the IC's, never fetched.
    Ic,
    /// A local replica (`dfx start`, `icp network start`) or a devnet at this URL; the root key is fetched.
    Url(String),
}

impl Network {
    /// `ic`, `local`, or an `http(s)://` URL.
    pub fn parse(s: &str) -> Result<Network, String> {
        match s {
            "ic" | "mainnet" => Ok(Network::Ic),
            "local" => Ok(Network::Url(LOCAL_URL.to_string())),
            u if u.starts_with("http://") || u.starts_with("https://") => {
                Ok(Network::Url(u.trim_end_matches('/').to_string()))
            }
            other => Err(format!("unknown network `{other}` (use `ic`, `local` or an http(s):// URL)")),
        }
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        match self {
            Network::Ic => MAINNET_URL,
            Network::Url(u) => u,
        }
    }

    fn is_mainnet(&self) -> bool {
        matches!(self, Network::Ic)
    }
}

/// Loads an identity from a PEM file in the formats dfx and icp-cli write: Ed25519 (PKCS#8 `PRIVATE KEY`) or
/// secp256k1 (`EC PRIVATE KEY`). Encrypted PEMs are not supported (export them first).
pub fn load_identity(path: &Path) -> Result<Box<dyn Identity>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the identity {}: {e}", path.display()))?;
    if pem.windows(9).any(|w| w == b"ENCRYPTED") {
        return Err(format!(
            "{} is an encrypted PEM; export it in plain text (`dfx identity export <name>`)",
            path.display()
        ));
    }
    if let Ok(id) = BasicIdentity::from_pem(&pem) {
        return Ok(Box::new(id));
    }
    Secp256k1Identity::from_pem(&pem)
        .map(|id| Box::new(id) as Box<dyn Identity>)
        .map_err(|e| format!("{} is not an Ed25519 or secp256k1 PEM identity: {e}", path.display()))
}

/// A fresh random Ed25519 identity and its PKCS#8 PEM (what `dfx identity new` writes).
pub fn generate_identity() -> Result<(BasicIdentity, String), String> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| format!("no randomness for a new key: {e}"))?;
    Ok((BasicIdentity::from_raw_key(&key), ed25519_pem(&key)))
}

/// The PKCS#8 PEM of an Ed25519 secret key.
pub fn ed25519_pem(key: &[u8; 32]) -> String {
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(key);
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", base64(&der))
}

fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for i in 0..4 {
            out.push(if i <= chunk.len() { T[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Update calls made through one client: count and Candid argument bytes per method.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    pub per_method: BTreeMap<String, (u64, u64)>,
}

impl CallStats {
    /// Bytes of all update arguments sent.
    pub fn bytes(&self) -> u64 {
        self.per_method.values().map(|(_, b)| b).sum()
    }
    /// Bytes and calls of one method.
    pub fn of(&self, method: &str) -> (u64, u64) {
        self.per_method.get(method).copied().unwrap_or((0, 0))
    }
}

/// Everything the agents and commands do on-chain. Every call is one IC message; errors are typed.
#[allow(async_fn_in_trait)]
pub trait Chain {
    /// The caller's principal.
    fn principal(&self) -> Principal;
    /// The verifier canister.
    fn canister(&self) -> Principal;
    /// Update calls made so far through this client.
    fn stats(&self) -> CallStats;

    async fn config(&self) -> Result<Config, ChainError>;
    async fn balance_of(&self, owner: Principal) -> Result<u64, ChainError>;
    async fn totals(&self) -> Result<Totals, ChainError>;
    /// `icrc2_approve`s the canister for `amount` + fee, then `deposit`s `amount`. Returns the new balance.
    async fn deposit(&self, amount: u64) -> Result<u64, ChainError>;
    async fn withdraw(&self, amount: u64) -> Result<Withdrawal, ChainError>;
    /// The caller's ledger balance (default account).
    async fn ledger_balance(&self) -> Result<u128, ChainError>;
    /// Registers a guest module (chunked upload); an already registered module gives its program hash.
    async fn register_program(&self, wasm: &[u8]) -> Result<Hash, ChainError>;
    async fn get_program(&self, program: Hash) -> Result<Program, ChainError>;
    async fn post_task(&self, spec: PostTask) -> Result<Id, ChainError>;
    async fn get_task(&self, task: Id) -> Result<Task, ChainError>;
    async fn list_tasks(&self, start: Id, limit: u32) -> Result<TaskPage, ChainError>;
    async fn list_claims(&self, start: Id, limit: u32) -> Result<ClaimPage, ChainError>;
    async fn submit_claim(&self, args: SubmitClaim) -> Result<Id, ChainError>;
    async fn get_claim(&self, claim: Id) -> Result<ClaimView, ChainError>;
    async fn get_claim_state(&self, claim: Id) -> Result<ClaimState, ChainError>;
    async fn get_dispute(&self, claim: Id, dispute: u32) -> Result<DisputeView, ChainError>;
    async fn open_dispute(&self, claim: Id) -> Result<u32, ChainError>;
    async fn play(&self, args: PlayArgs) -> Result<(), ChainError>;
    async fn timeout(&self, claim: Id, dispute: u32) -> Result<(), ChainError>;
    async fn finalize(&self, claim: Id) -> Result<(), ChainError>;
}

/// [`Chain`] over `ic-agent`.
pub struct IcChain {
    agent: Agent,
    url: String,
    canister: Principal,
    me: Principal,
    stats: Mutex<CallStats>,
    ledger: Mutex<Option<(Principal, u64)>>,
}

/// Builds an agent for `network` (root key fetched off mainnet only).
pub async fn agent(network: &Network, identity: Box<dyn Identity>) -> Result<Agent, ChainError> {
    let transport =
        |message: String| ChainError::Transport { method: "connect".into(), url: network.url().to_string(), message };
    let agent = Agent::builder()
        .with_url(network.url())
        .with_boxed_identity(identity)
        .with_max_polling_time(Duration::from_secs(600))
        .build()
        .map_err(|e| transport(e.to_string()))?;
    if !network.is_mainnet() {
        agent.fetch_root_key().await.map_err(|e| transport(e.to_string()))?;
    }
    Ok(agent)
}

impl IcChain {
    /// A client of the verifier canister `canister` on `network` as `identity`.
    pub async fn connect(
        network: &Network,
        identity: Box<dyn Identity>,
        canister: Principal,
    ) -> Result<IcChain, ChainError> {
        let me = identity.sender().map_err(|message| ChainError::Transport {
            method: "connect".into(),
            url: network.url().into(),
            message,
        })?;
        let agent = agent(network, identity).await?;
        Ok(IcChain {
            agent,
            url: network.url().to_string(),
            canister,
            me,
            stats: Mutex::new(CallStats::default()),
            ledger: Mutex::new(None),
        })
    }

    /// The underlying agent.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    fn map_err(&self, method: &str, e: AgentError) -> ChainError {
        match e {
            AgentError::CertifiedReject { reject, .. } | AgentError::UncertifiedReject { reject, .. } => {
                ChainError::Rejected { method: method.into(), message: reject.reject_message }
            }
            other => ChainError::Transport { method: method.into(), url: self.url.clone(), message: other.to_string() },
        }
    }

    /// An update call to `canister` with an encoded argument; records its size.
    pub async fn update_raw(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ChainError> {
        {
            let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            let e = s.per_method.entry(method.to_string()).or_default();
            e.0 += 1;
            e.1 += arg.len() as u64;
        }
        let (start, bytes) = (std::time::Instant::now(), arg.len());
        let r = self
            .agent
            .update(&canister, method)
            .with_arg(arg)
            .call_and_wait()
            .await
            .map_err(|e| self.map_err(method, e));
        match &r {
            Ok(reply) => {
                tracing::debug!(%canister, method, bytes, reply = reply.len(), elapsed = ?start.elapsed(), "update")
            }
            Err(e) => tracing::warn!(%canister, method, bytes, elapsed = ?start.elapsed(), error = %e, "update failed"),
        }
        r
    }

    /// A query call to `canister`.
    pub async fn query_raw(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ChainError> {
        let start = std::time::Instant::now();
        let r = self.agent.query(&canister, method).with_arg(arg).call().await.map_err(|e| self.map_err(method, e));
        match &r {
            Ok(reply) => tracing::trace!(%canister, method, reply = reply.len(), elapsed = ?start.elapsed(), "query"),
            Err(e) => tracing::debug!(%canister, method, error = %e, "query failed"),
        }
        r
    }

    fn decode<R: CandidType + DeserializeOwned>(method: &str, bytes: &[u8]) -> Result<R, ChainError> {
        Decode!(bytes, R).map_err(|e| ChainError::Decode { method: method.into(), message: e.to_string() })
    }

    fn encode<A: ArgumentEncoder>(method: &str, args: A) -> Result<Vec<u8>, ChainError> {
        candid::encode_args(args).map_err(|e| ChainError::Decode { method: method.into(), message: e.to_string() })
    }

    async fn update<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &self,
        method: &str,
        args: A,
    ) -> Result<R, ChainError> {
        let out = self.update_raw(self.canister, method, Self::encode(method, args)?).await?;
        let r: Result<R, CanisterError> = Self::decode(method, &out)?;
        r.map_err(|error| ChainError::Canister { method: method.into(), error })
    }

    async fn query<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &self,
        method: &str,
        args: A,
    ) -> Result<R, ChainError> {
        let out = self.query_raw(self.canister, method, Self::encode(method, args)?).await?;
        Self::decode(method, &out)
    }

    async fn query_res<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &self,
        method: &str,
        args: A,
    ) -> Result<R, ChainError> {
        let r: Result<R, CanisterError> = self.query(method, args).await?;
        r.map_err(|error| ChainError::Canister { method: method.into(), error })
    }

    async fn ledger(&self) -> Result<(Principal, u64), ChainError> {
        if let Some(l) = *self.ledger.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(l);
        }
        let c = self.config().await?;
        let l = (c.ledger, c.ledger_fee);
        *self.ledger.lock().unwrap_or_else(|p| p.into_inner()) = Some(l);
        Ok(l)
    }

    /// The devnet's faucet (`devnet_mint` on its built-in ledger): mints `amount` to the caller.
    pub async fn devnet_mint(&self, amount: u128) -> Result<(), ChainError> {
        let (ledger, _) = self.ledger().await?;
        let arg = MintArgs { to: LedgerAccount::of(self.me), amount: Nat::from(amount) };
        let out = self.update_raw(ledger, "devnet_mint", Self::encode("devnet_mint", (arg,))?).await?;
        let r: Result<Nat, TransferError> = Self::decode("devnet_mint", &out)?;
        r.map(|_| ()).map_err(|e| ChainError::Ledger { method: "devnet_mint".into(), message: format!("{e:?}") })
    }
}

/// SHA3-256.
pub fn sha3(bytes: &[u8]) -> Hash {
    Hash(Sha3_256::digest(bytes).into())
}

impl Chain for IcChain {
    fn principal(&self) -> Principal {
        self.me
    }

    fn canister(&self) -> Principal {
        self.canister
    }

    fn stats(&self) -> CallStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn config(&self) -> Result<Config, ChainError> {
        self.query("config", ()).await
    }

    async fn balance_of(&self, owner: Principal) -> Result<u64, ChainError> {
        self.query("balance_of", (owner,)).await
    }

    async fn totals(&self) -> Result<Totals, ChainError> {
        self.query("totals", ()).await
    }

    async fn deposit(&self, amount: u64) -> Result<u64, ChainError> {
        let (ledger, fee) = self.ledger().await?;
        let approve = ApproveArgs {
            from_subaccount: None,
            spender: LedgerAccount::of(self.canister),
            amount: Nat::from(amount as u128 + fee as u128),
            expected_allowance: None,
            expires_at: None,
            fee: None,
            memo: None,
            created_at_time: None,
        };
        let out = self.update_raw(ledger, "icrc2_approve", Self::encode("icrc2_approve", (approve,))?).await?;
        let r: Result<Nat, ApproveError> = Self::decode("icrc2_approve", &out)?;
        r.map_err(|e| ChainError::Ledger { method: "icrc2_approve".into(), message: format!("{e:?}") })?;
        self.update("deposit", (DepositArgs { amount, from_subaccount: None },)).await
    }

    async fn withdraw(&self, amount: u64) -> Result<Withdrawal, ChainError> {
        self.update("withdraw", (WithdrawArgs { amount, to: None },)).await
    }

    async fn ledger_balance(&self) -> Result<u128, ChainError> {
        let (ledger, _) = self.ledger().await?;
        let out = self
            .query_raw(ledger, "icrc1_balance_of", Self::encode("icrc1_balance_of", (LedgerAccount::of(self.me),))?)
            .await?;
        let n: Nat = Self::decode("icrc1_balance_of", &out)?;
        u128::try_from(n.0)
            .map_err(|e| ChainError::Decode { method: "icrc1_balance_of".into(), message: e.to_string() })
    }

    async fn register_program(&self, wasm: &[u8]) -> Result<Hash, ChainError> {
        let wasm_sha3 = sha3(wasm);
        let upload: Id = self.update("begin_upload", (BeginUpload { wasm_sha3, size: wasm.len() as u64 },)).await?;
        let mut offset = 0u64;
        for part in wasm.chunks(CHUNK) {
            let args = UploadChunk { upload, offset, bytes: part.to_vec() };
            offset = self.update("upload_chunk", (args,)).await?;
        }
        // A large module's commitment is hashed over several calls; each answers how far it got. The work in
        // progress lives on the canister's heap and an upgrade (or another operator's registration) restarts it,
        // so the loop is bounded by calls, not by progress.
        for _ in 0..MAX_FINISH_CALLS {
            match self.update::<_, RegistrationStep>("finish_upload", (upload,)).await {
                Ok(RegistrationStep::Registered { program }) => return Ok(program),
                Ok(RegistrationStep::Rewritten | RegistrationStep::Committing { .. }) => continue,
                Err(ChainError::Canister { error: CanisterError::ProgramExists { program }, .. }) => {
                    let _ = self.update::<_, ()>("abort_upload", (upload,)).await;
                    return Ok(program);
                }
                Err(e) => return Err(e),
            }
        }
        Err(ChainError::Rejected {
            method: "finish_upload".into(),
            message: format!("the program was not registered after {MAX_FINISH_CALLS} calls (upload {upload})"),
        })
    }

    async fn get_program(&self, program: Hash) -> Result<Program, ChainError> {
        self.query_res("get_program", (program,)).await
    }

    async fn post_task(&self, spec: PostTask) -> Result<Id, ChainError> {
        self.update("post_task", (spec,)).await
    }

    async fn get_task(&self, task: Id) -> Result<Task, ChainError> {
        self.query_res("get_task", (task,)).await
    }

    async fn list_tasks(&self, start: Id, limit: u32) -> Result<TaskPage, ChainError> {
        self.query("list_tasks", (start, limit)).await
    }

    async fn list_claims(&self, start: Id, limit: u32) -> Result<ClaimPage, ChainError> {
        self.query("list_claims", (start, limit)).await
    }

    async fn submit_claim(&self, args: SubmitClaim) -> Result<Id, ChainError> {
        self.update("submit_claim", (args,)).await
    }

    async fn get_claim(&self, claim: Id) -> Result<ClaimView, ChainError> {
        self.query_res("get_claim", (claim,)).await
    }

    async fn get_claim_state(&self, claim: Id) -> Result<ClaimState, ChainError> {
        self.query_res("get_claim_state", (claim,)).await
    }

    async fn get_dispute(&self, claim: Id, dispute: u32) -> Result<DisputeView, ChainError> {
        self.query_res("get_dispute", (claim, dispute)).await
    }

    async fn open_dispute(&self, claim: Id) -> Result<u32, ChainError> {
        self.update("open_dispute", (claim,)).await
    }

    async fn play(&self, args: PlayArgs) -> Result<(), ChainError> {
        self.update("play", (args,)).await
    }

    async fn timeout(&self, claim: Id, dispute: u32) -> Result<(), ChainError> {
        self.update("timeout", (claim, dispute)).await
    }

    async fn finalize(&self, claim: Id) -> Result<(), ChainError> {
        self.update("finalize", (claim,)).await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Deployment through the management canister (`opml deploy`).

#[derive(CandidType, serde::Deserialize)]
struct CanisterSettings {
    controllers: Option<Vec<Principal>>,
}

#[derive(CandidType)]
struct ProvisionalCreateArgs {
    amount: Option<Nat>,
    settings: Option<CanisterSettings>,
    specified_id: Option<Principal>,
}

#[derive(CandidType, serde::Deserialize)]
struct CanisterIdRecord {
    canister_id: Principal,
}

#[derive(CandidType)]
#[allow(non_camel_case_types)]
enum InstallMode {
    install,
    upgrade(Option<UpgradeFlags>),
}

#[derive(CandidType)]
struct UpgradeFlags {
    skip_pre_upgrade: Option<bool>,
}

#[derive(CandidType)]
struct InstallCodeArgs {
    mode: InstallMode,
    canister_id: Principal,
    wasm_module: serde_bytes::ByteBuf,
    arg: serde_bytes::ByteBuf,
}

/// Installs the verifier canister (a new one, created with provisional cycles: local replicas and the devnet) or
/// upgrades `existing` to `wasm` with `config` as the init/upgrade argument. Returns the canister id.
pub async fn deploy(
    agent: &Agent,
    url: &str,
    wasm: &[u8],
    config: &Config,
    existing: Option<Principal>,
) -> Result<Principal, ChainError> {
    let mgmt = Principal::management_canister();
    let err = |method: &str, e: AgentError| match e {
        AgentError::CertifiedReject { reject, .. } | AgentError::UncertifiedReject { reject, .. } => {
            ChainError::Rejected { method: method.into(), message: reject.reject_message }
        }
        other => ChainError::Transport { method: method.into(), url: url.into(), message: other.to_string() },
    };
    let enc = |method: &str, e: candid::Error| ChainError::Decode { method: method.into(), message: e.to_string() };
    let (canister, mode) = match existing {
        Some(id) => (id, InstallMode::upgrade(None)),
        None => {
            let me =
                agent.get_principal().map_err(|message| ChainError::Rejected { method: "identity".into(), message })?;
            let args = ProvisionalCreateArgs {
                amount: None,
                settings: Some(CanisterSettings { controllers: Some(vec![me]) }),
                specified_id: None,
            };
            let m = "provisional_create_canister_with_cycles";
            let out = agent
                .update(&mgmt, m)
                .with_effective_canister_id(mgmt)
                .with_arg(candid::encode_one(args).map_err(|e| enc(m, e))?)
                .call_and_wait()
                .await
                .map_err(|e| err(m, e))?;
            let rec = Decode!(&out, CanisterIdRecord).map_err(|e| enc(m, e))?;
            (rec.canister_id, InstallMode::install)
        }
    };
    let arg = match mode {
        InstallMode::install => candid::encode_one(config),
        InstallMode::upgrade(_) => candid::encode_one(Some(config)),
    }
    .map_err(|e| enc("install_code", e))?;
    let args = InstallCodeArgs {
        mode,
        canister_id: canister,
        wasm_module: serde_bytes::ByteBuf::from(wasm.to_vec()),
        arg: serde_bytes::ByteBuf::from(arg),
    };
    agent
        .update(&mgmt, "install_code")
        .with_effective_canister_id(canister)
        .with_arg(candid::encode_one(args).map_err(|e| enc("install_code", e))?)
        .call_and_wait()
        .await
        .map_err(|e| err("install_code", e))?;
    Ok(canister)
}

/// Gzips a wasm module (the IC accepts gzipped modules, which keeps the verifier under the 2 MiB ingress limit).
pub fn gzip(wasm: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(wasm).and_then(|_| e.finish()).map_err(|e| format!("cannot compress the module: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse() {
        assert_eq!(Network::parse("ic").unwrap(), Network::Ic);
        assert_eq!(Network::parse("local").unwrap(), Network::Url(LOCAL_URL.into()));
        assert_eq!(Network::parse("http://127.0.0.1:8000/").unwrap(), Network::Url("http://127.0.0.1:8000".into()));
        assert!(Network::parse("gopher://x").unwrap_err().contains("unknown network"));
        assert_eq!(Network::Ic.url(), MAINNET_URL);
    }

    #[test]
    fn generated_identities_load_back_from_their_pem() {
        let (id, pem) = generate_identity().unwrap();
        let path = std::env::temp_dir().join(format!("opml-id-{}.pem", std::process::id()));
        std::fs::write(&path, &pem).unwrap();
        let loaded = load_identity(&path).unwrap();
        assert_eq!(loaded.sender().unwrap(), id.sender().unwrap());
        // A secp256k1 key in SEC1 PEM (what `dfx identity new --storage-mode plaintext` writes for k256).
        let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x01, 0x04, 0x20];
        der.extend_from_slice(&[7u8; 32]);
        der.extend_from_slice(&[0xa0, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a]);
        let k1 = format!("-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n", base64(&der));
        std::fs::write(&path, k1).unwrap();
        assert!(load_identity(&path).unwrap().sender().is_ok());
        std::fs::write(&path, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
            .unwrap();
        assert!(load_identity(&path).err().unwrap().contains("encrypted"));
        std::fs::write(&path, "not a pem").unwrap();
        assert!(load_identity(&path).err().unwrap().contains("is not an Ed25519 or secp256k1 PEM identity"));
        let _ = std::fs::remove_file(&path);
        assert!(load_identity(Path::new("/nonexistent/x.pem")).err().unwrap().contains("cannot read the identity"));
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let z = gzip(&data).unwrap();
        assert!(z.starts_with(&[0x1f, 0x8b]) && z.len() < data.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
