//! # opml-devnet: an embedded local Internet Computer
//!
//! No IC replica can be installed where opml-ic is developed and tested, so the project brings its own local IC
//! host. [`Devnet::start`] starts one in-process: it runs canister wasm under wasmi with the part of the `ic0`
//! System API that ic-cdk 0.20 canisters import ([`SYSTEM_API`]), hosts a built-in ICRC-1/ICRC-2 ledger, and
//! serves the IC HTTP interface on `127.0.0.1` so the stock `ic-agent` talks to it like to a replica.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use opml_devnet::{Devnet, DevnetConfig};
//! let devnet = Devnet::start(DevnetConfig::default())?;
//! # let wasm: Vec<u8> = Vec::new();
//! let canister = devnet.install_canister(&wasm, candid::encode_one(())?, vec![])?;
//! // ic-agent: Agent::builder().with_url(devnet.url()).build()?, then agent.fetch_root_key().await?
//! // (or agent.set_root_key(devnet.root_key())).
//! devnet.advance_time(std::time::Duration::from_secs(3600)); // timers that became due fire
//! let counts = devnet.instruction_counts(canister); // instructions per method
//! # Ok(()) }
//! ```
//!
//! **Semantics** (see `exec` and `replica`): messages run one at a time to completion; an update that traps changes
//! nothing ([`Devnet::state_digest`] lets a test check that byte for byte); instruction limits (40B update, 5B
//! query, 300B install) and size limits (2 MiB ingress and reply) are enforced; install, reinstall and upgrade of
//! plain or gzip-compressed modules (stable memory kept, `pre_upgrade`/`post_upgrade` run);
//! inter-canister calls with reply/reject/cleanup callbacks; the global timer fires when due.
//!
//! **Instruction counts** are the IC's: every installed module is instrumented like the replica does it
//! ([`metering`]), so it counts the weighted sum of the wasm instructions it executes (the replica's cost table,
//! bulk memory operations by size), and the devnet adds a fixed charge per System API call and per byte it copies.
//! That count is what [`Devnet::instruction_counts`] records, what `ic0.performance_counter` returns and what the
//! instruction limits are checked against (by the module at every function entry and loop head, as on the IC, and
//! by the devnet at every System API call and at the end of the message). wasmi's fuel is only a runaway guard;
//! [`MethodStats::last_fuel`] shows it next to the count (it includes the counting code).
//! Setting the environment variable `OPML_DEVNET_PRINT_COUNTS` prints both for every message to stderr.
//!
//! **Certificates** are real: a hash tree signed with a BLS12-381 key (signature in G1, public key in G2) that
//! the devnet generates, with `time`, `request_status`, `canister` and `subnet` entries, so `ic-agent` with
//! `fetch_root_key()` verifies them. Query responses are signed by the devnet's single node key (Ed25519), which
//! is listed in the certified `/subnet` tree, so ic-agent's query-signature verification passes too; a client may
//! still turn it off for the devnet with `AgentBuilder::with_verify_query_signatures(false)`.

#![forbid(unsafe_code)]

pub mod cbor;
pub mod crypto;
pub mod exec;
pub mod http;
pub mod ledger;
pub mod metering;
pub mod replica;
pub mod stable;
pub mod tree;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use candid::Principal;

pub use exec::SYSTEM_API;
pub use ledger::{Account, LedgerConfig};
pub use replica::{InstallMode, Limits, MethodStats, Reject, TimeMode, reject_code};

/// The ICP ledger's canister id, which the built-in ledger takes by default.
pub const DEFAULT_LEDGER_ID: &str = "ryjl3-tyaaa-aaaaa-aaaba-cai";

/// SHA-256 digests of a canister's persistent state ([`Devnet::state_digest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateDigest {
    pub stable: [u8; 32],
    pub heap: [u8; 32],
}

/// How to start a devnet.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// Where to listen (port 0: any free port). `None`: no HTTP server, only the library API.
    pub bind: Option<SocketAddr>,
    /// Seed of the root and node keys (random if `None`).
    pub seed: Option<[u8; 32]>,
    pub time: TimeMode,
    pub limits: Limits,
    pub ledger: LedgerConfig,
    pub ledger_id: Principal,
    /// How often the background scheduler runs timers and queued messages.
    pub tick_interval: Duration,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        DevnetConfig {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            seed: None,
            time: TimeMode::Live,
            limits: Limits::default(),
            ledger: LedgerConfig::default(),
            ledger_id: Principal::from_text(DEFAULT_LEDGER_ID).expect("valid principal"),
            tick_interval: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("cannot bind the devnet's HTTP server to {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the devnet's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot seed the devnet's keys: {0}")]
    Seed(String),
}

/// A running devnet. Dropping it stops the HTTP server.
pub struct Devnet {
    replica: Arc<Mutex<replica::Replica>>,
    url: Option<String>,
    root_key: Vec<u8>,
    ledger_id: Principal,
    subnet_id: Principal,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Devnet {
    /// Starts a devnet: the state machine, and (unless `config.bind` is `None`) the HTTP server and the
    /// background scheduler on a thread of their own.
    pub fn start(config: DevnetConfig) -> Result<Devnet, DevnetError> {
        let seed = match config.seed {
            Some(s) => s,
            None => {
                let mut s = [0u8; 32];
                getrandom::getrandom(&mut s).map_err(|e| DevnetError::Seed(e.to_string()))?;
                s
            }
        };
        let replica = replica::Replica::new(replica::ReplicaConfig {
            seed,
            time: config.time,
            limits: config.limits.clone(),
            ledger: config.ledger.clone(),
            ledger_id: config.ledger_id,
        });
        let root_key = replica.root_key().to_vec();
        let subnet_id = replica.subnet_id();
        let replica = Arc::new(Mutex::new(replica));
        let mut devnet = Devnet {
            replica: replica.clone(),
            url: None,
            root_key,
            ledger_id: config.ledger_id,
            subnet_id,
            shutdown: None,
            thread: None,
        };
        let Some(addr) = config.bind else { return Ok(devnet) };
        let listener = std::net::TcpListener::bind(addr).map_err(|source| DevnetError::Bind { addr, source })?;
        listener.set_nonblocking(true).map_err(|source| DevnetError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| DevnetError::Bind { addr, source })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("opml-devnet")
            .enable_all()
            .build()
            .map_err(DevnetError::Runtime)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = http::AppState { replica: replica.clone() };
        let tick = config.tick_interval;
        let thread = std::thread::Builder::new()
            .name("opml-devnet".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a bound listener");
                    let ticker = tokio::spawn(async move {
                        let mut interval = tokio::time::interval(tick);
                        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        loop {
                            interval.tick().await;
                            let r = replica.clone();
                            let _ = tokio::task::spawn_blocking(move || {
                                r.lock().unwrap_or_else(|p| p.into_inner()).run_pass();
                            })
                            .await;
                        }
                    });
                    let server = axum::serve(listener, http::router(state)).with_graceful_shutdown(async {
                        let _ = rx.await;
                    });
                    if let Err(e) = server.await {
                        tracing::error!("opml-devnet HTTP server failed: {e}");
                    }
                    ticker.abort();
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(DevnetError::Runtime)?;
        devnet.url = Some(format!("http://{local}"));
        devnet.shutdown = Some(tx);
        devnet.thread = Some(thread);
        Ok(devnet)
    }

    fn lock(&self) -> MutexGuard<'_, replica::Replica> {
        self.replica.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The HTTP endpoint (`http://127.0.0.1:<port>`), if the server runs.
    pub fn url(&self) -> &str {
        self.url.as_deref().expect("the devnet was started without an HTTP server (DevnetConfig::bind is None)")
    }

    /// The root key (DER), as `/api/v2/status` serves it.
    pub fn root_key(&self) -> Vec<u8> {
        self.root_key.clone()
    }

    pub fn subnet_id(&self) -> Principal {
        self.subnet_id
    }

    pub fn ledger_id(&self) -> Principal {
        self.ledger_id
    }

    /// The devnet's current time (ns since the epoch).
    pub fn time(&self) -> u64 {
        self.lock().now()
    }

    /// Moves time forward by `d`, then runs every timer that became due and everything it causes.
    pub fn advance_time(&self, d: Duration) {
        let mut r = self.lock();
        r.advance_time(d);
        r.run_until_idle(1000);
    }

    /// Runs one scheduling pass (due timers, queued messages).
    pub fn tick(&self) {
        self.lock().run_pass();
    }

    /// Creates an empty canister with the given controllers.
    pub fn create_canister(&self, controllers: Vec<Principal>) -> Principal {
        self.lock().create_canister(controllers, 1_000_000_000_000_000, None).expect("a fresh canister id")
    }

    /// Creates a canister at a chosen id.
    pub fn create_canister_with_id(&self, id: Principal, controllers: Vec<Principal>) -> Result<Principal, Reject> {
        self.lock().create_canister(controllers, 1_000_000_000_000_000, Some(id))
    }

    /// Creates a canister and installs `wasm` with `arg` (Candid) for `canister_init`.
    pub fn install_canister(
        &self,
        wasm: &[u8],
        arg: Vec<u8>,
        controllers: Vec<Principal>,
    ) -> Result<Principal, Reject> {
        let id = self.create_canister(controllers);
        self.install_code(id, InstallMode::Install, wasm, arg)?;
        Ok(id)
    }

    /// Installs, reinstalls or upgrades code (as the host: no controller check).
    pub fn install_code(
        &self,
        canister: Principal,
        mode: InstallMode,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), Reject> {
        let mut r = self.lock();
        let res = r.install_code(None, canister, mode, wasm, arg);
        r.run_until_idle(1000);
        res
    }

    /// Upgrades `canister` to `wasm`: `canister_pre_upgrade` of the old code, then `canister_post_upgrade(arg)`
    /// of the new one; stable memory is kept. On any trap nothing changes.
    pub fn upgrade_canister(&self, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject> {
        self.install_code(canister, InstallMode::Upgrade, wasm, arg)
    }

    /// Replaces the code and all state of `canister` (stable memory included).
    pub fn reinstall_canister(&self, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject> {
        self.install_code(canister, InstallMode::Reinstall, wasm, arg)
    }

    /// An update call from `sender`, run to completion (with every inter-canister call it makes).
    pub fn update_call(
        &self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.lock().update_direct(sender, canister, method, arg)
    }

    /// A query call from `sender`.
    pub fn query_call(
        &self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.lock().query(sender, canister, method, arg)
    }

    /// The faucet: mints `amount` ledger units to `owner`'s default account. Returns the block index.
    pub fn mint(&self, owner: Principal, amount: u128) -> Result<u64, String> {
        self.lock().ledger_mut().mint(&Account::of(owner), amount)
    }

    /// The faucet, to any account.
    pub fn mint_to(&self, account: &Account, amount: u128) -> Result<u64, String> {
        self.lock().ledger_mut().mint(account, amount)
    }

    pub fn balance(&self, account: &Account) -> u128 {
        self.lock().ledger_balance(account)
    }

    /// The ledger's transfer fee.
    pub fn ledger_fee(&self) -> u128 {
        self.lock().ledger().config().fee
    }

    /// Instructions per method of `canister` (updates by name, queries as `"<name> (query)"`, callbacks as
    /// `"<method> (callback)"`, and `init`, `pre_upgrade`, `post_upgrade`, `global_timer`, `heartbeat`).
    pub fn instruction_counts(&self, canister: Principal) -> BTreeMap<String, MethodStats> {
        self.lock().stats(&canister).unwrap_or_default()
    }

    /// What the canister printed with `ic0.debug_print` (the last 10 000 lines).
    pub fn debug_log(&self, canister: Principal) -> Vec<String> {
        self.lock().canister(&canister).map(|c| c.debug_log.clone()).unwrap_or_default()
    }

    /// Stable memory size in 64 KiB pages and linear memory size in bytes.
    pub fn memory_sizes(&self, canister: Principal) -> Option<(u64, u64)> {
        self.lock().memory_sizes(&canister)
    }

    /// Digests of the canister's whole persistent state, to check that a message changed nothing: `stable` covers
    /// stable memory (size and content), `heap` the linear memory, mutable globals, global timer, certified data
    /// and cycles. A trapped message must leave both as they were; a message that replies (even with an error
    /// value) may change the heap (allocator state), so compare `stable` for canisters that keep their state in
    /// stable memory.
    pub fn state_digest(&self, canister: Principal) -> Option<StateDigest> {
        self.lock().state_digest(&canister).map(|(stable, heap)| StateDigest { stable, heap })
    }

    /// Replaces the resource limits (instructions per message kind, message sizes) from the next message on.
    pub fn set_limits(&self, limits: Limits) {
        self.lock().limits = limits;
    }

    /// The resource limits in force.
    pub fn limits(&self) -> Limits {
        self.lock().limits.clone()
    }

    /// sha256 of the installed module.
    pub fn module_hash(&self, canister: Principal) -> Option<[u8; 32]> {
        self.lock().module_hash(&canister)
    }

    /// The canister's global timer (0: not set).
    pub fn global_timer(&self, canister: Principal) -> Option<u64> {
        self.lock().global_timer(&canister)
    }

    /// Stops the HTTP server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The test canisters of the devnet's own tests (built with the `test-canisters` feature).
#[cfg(feature = "test-canisters")]
pub mod test_canisters {
    /// `devnet/test-canisters/counter`, compiled for wasm32-unknown-unknown.
    pub const COUNTER_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/counter.wasm"));
}
