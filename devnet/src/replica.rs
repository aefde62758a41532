//! The replicated state machine: canisters, call contexts, the message queue, the ingress history, time, the
//! management canister and the built-in ledger, and the certified state tree.
//!
//! Messages run one at a time, each to completion, in FIFO order; an execution that traps changes nothing but
//! the response it causes. Inter-canister calls made by a message are queued when it commits; their responses run
//! the callbacks in the caller's call context (with `cleanup` after a callback traps), as on the IC.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use candid::{CandidType, Decode, Deserialize, Encode, Nat, Principal};
use ciborium::value::Value;
use wasmi::{Engine, Linker};

use crate::cbor;
use crate::crypto::{BlsKey, NodeKey};
use crate::exec::{
    self, CanisterInstance, Ctx, Entry, EntryKind, Env, ExecOutcome, Host, OutgoingCall, PreparedModule, Response,
    SysState, Trap,
};
use crate::ledger::{Account, Ledger, LedgerConfig};
use crate::stable::StableMemory;
use crate::tree::LabeledTree;

/// Reject codes of the IC interface specification.
pub mod reject_code {
    pub const SYS_FATAL: u32 = 1;
    pub const SYS_TRANSIENT: u32 = 2;
    pub const DESTINATION_INVALID: u32 = 3;
    pub const CANISTER_REJECT: u32 = 4;
    pub const CANISTER_ERROR: u32 = 5;
    pub const SYS_UNKNOWN: u32 = 6;
}
use reject_code::*;

/// A reject: code, message and the IC's error code (`IC0xxx`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub code: u32,
    pub message: String,
    pub error_code: String,
}

impl Reject {
    pub fn new(code: u32, error_code: &str, message: impl Into<String>) -> Reject {
        Reject { code, message: message.into(), error_code: error_code.to_string() }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reject code {} ({}): {}", self.code, self.error_code, self.message)
    }
}

impl std::error::Error for Reject {}

/// Resource limits (the IC's defaults for application subnets).
#[derive(Clone, Debug)]
pub struct Limits {
    pub update_instructions: u64,
    pub query_instructions: u64,
    pub install_instructions: u64,
    /// Largest ingress message (request body payload) and argument.
    pub max_ingress_bytes: usize,
    /// Largest reply and inter-canister payload.
    pub max_response_bytes: usize,
    /// Messages processed per scheduling pass before yielding (bounds a runaway call loop).
    pub max_messages_per_pass: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            update_instructions: 40_000_000_000,
            query_instructions: 5_000_000_000,
            install_instructions: 300_000_000_000,
            max_ingress_bytes: 2 * 1024 * 1024,
            max_response_bytes: 2 * 1024 * 1024,
            max_messages_per_pass: 10_000,
        }
    }
}

/// How the devnet's clock moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeMode {
    /// Wall-clock time plus the total of `advance_time` (the default).
    Live,
    /// Starts at the given time (ns since the epoch) and moves only by `advance_time` (and 1 ns per reading, so
    /// time is strictly increasing).
    Manual { start_nanos: u64 },
}

pub fn wall_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

struct Clock {
    mode: TimeMode,
    offset: u64,
    last: u64,
}

impl Clock {
    fn now(&mut self) -> u64 {
        let base = match self.mode {
            TimeMode::Live => wall_nanos(),
            TimeMode::Manual { start_nanos } => start_nanos,
        } + self.offset;
        let t = base.max(self.last + 1);
        self.last = t;
        t
    }
}

/// Instruction statistics of one method (or entry point) of a canister.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MethodStats {
    pub calls: u64,
    pub total_instructions: u64,
    pub max_instructions: u64,
    pub last_instructions: u64,
    /// The wasmi fuel of the last call, to compare with `last_instructions` (the IC count).
    pub last_fuel: u64,
}

impl MethodStats {
    fn record(&mut self, n: u64, fuel: u64) {
        self.calls += 1;
        self.total_instructions += n;
        self.max_instructions = self.max_instructions.max(n);
        self.last_instructions = n;
        self.last_fuel = fuel;
    }

    pub fn mean_instructions(&self) -> u64 {
        self.total_instructions.checked_div(self.calls).unwrap_or(0)
    }
}

/// Canister install modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallMode {
    Install,
    Reinstall,
    Upgrade,
}

pub struct Canister {
    pub controllers: Vec<Principal>,
    code: Option<CanisterInstance>,
    version: u64,
    cycles: u128,
    stopped: bool,
    pub stats: BTreeMap<String, MethodStats>,
    pub debug_log: Vec<String>,
}

#[derive(Clone, Debug)]
enum Origin {
    Ingress([u8; 32]),
    Canister { canister: Principal, cc: u64, call: Box<OutgoingCall> },
    System,
    Direct(u64),
}

struct Request {
    callee: Principal,
    method: String,
    arg: Vec<u8>,
    caller: Principal,
    cycles: u128,
    origin: Origin,
}

struct ResponseMsg {
    canister: Principal,
    cc: u64,
    call: Box<OutgoingCall>,
    result: Result<Vec<u8>, Reject>,
}

enum Message {
    Request(Request),
    Response(ResponseMsg),
}

struct CallContext {
    origin: Origin,
    caller: Principal,
    method: String,
    stats_key: String,
    responded: bool,
    outstanding: u32,
    instructions: u64,
}

/// The status of an ingress message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngressStatus {
    Received,
    Processing,
    Replied(Vec<u8>),
    Rejected(Reject),
    Done,
}

struct IngressRecord {
    status: IngressStatus,
    sender: Principal,
    expiry: u64,
}

/// An ingress message after its signature and expiry were checked.
pub struct IngressCall {
    pub request_id: [u8; 32],
    pub sender: Principal,
    pub canister_id: Principal,
    pub method: String,
    pub arg: Vec<u8>,
    pub expiry: u64,
}

/// The canister id of the `n`-th canister, in the IC's format (8 bytes big-endian, then 0x01 0x01).
pub fn canister_id_from_u64(n: u64) -> Principal {
    let mut b = n.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 1]);
    Principal::from_slice(&b)
}

/// The whole state.
pub struct Replica {
    engine: Engine,
    linker: Linker<Host>,
    bls: BlsKey,
    node: NodeKey,
    subnet_id: Principal,
    canisters: BTreeMap<Principal, Canister>,
    ledger_id: Principal,
    ledger: Ledger,
    ledger_stats: BTreeMap<String, MethodStats>,
    next_canister: u64,
    clock: Clock,
    queue: VecDeque<Message>,
    call_contexts: BTreeMap<u64, CallContext>,
    next_cc: u64,
    ingress: BTreeMap<[u8; 32], IngressRecord>,
    direct: BTreeMap<u64, Result<Vec<u8>, Reject>>,
    next_direct: u64,
    pub limits: Limits,
    seed: [u8; 32],
    rand_counter: u64,
}

/// Settings of a new replica.
pub struct ReplicaConfig {
    pub seed: [u8; 32],
    pub time: TimeMode,
    pub limits: Limits,
    pub ledger: LedgerConfig,
    pub ledger_id: Principal,
}

impl Replica {
    pub fn new(config: ReplicaConfig) -> Replica {
        let engine = exec::engine();
        let linker = exec::linker(&engine);
        let bls = BlsKey::from_seed(&config.seed);
        let node = NodeKey::from_seed(&config.seed);
        // With no delegation, clients take the subnet id to be the root key's self-authenticating principal.
        let subnet_id = Principal::self_authenticating(bls.public_key_der());
        Replica {
            engine,
            linker,
            bls,
            node,
            subnet_id,
            canisters: BTreeMap::new(),
            ledger_id: config.ledger_id,
            ledger: Ledger::new(config.ledger),
            ledger_stats: BTreeMap::new(),
            next_canister: 1024,
            clock: Clock { mode: config.time, offset: 0, last: 0 },
            queue: VecDeque::new(),
            call_contexts: BTreeMap::new(),
            next_cc: 0,
            ingress: BTreeMap::new(),
            direct: BTreeMap::new(),
            next_direct: 0,
            limits: config.limits,
            seed: config.seed,
            rand_counter: 0,
        }
    }

    pub fn root_key(&self) -> &[u8] {
        self.bls.public_key_der()
    }

    pub fn subnet_id(&self) -> Principal {
        self.subnet_id
    }

    pub fn node_id(&self) -> Principal {
        self.node.id()
    }

    pub fn ledger_id(&self) -> Principal {
        self.ledger_id
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    pub fn now(&mut self) -> u64 {
        self.clock.now()
    }

    /// Moves time forward by `d`.
    pub fn advance_time(&mut self, d: Duration) {
        self.clock.offset += d.as_nanos() as u64;
    }

    pub fn canister_ids(&self) -> Vec<Principal> {
        self.canisters.keys().copied().collect()
    }

    pub fn canister(&self, id: &Principal) -> Option<&Canister> {
        self.canisters.get(id)
    }

    pub fn stats(&self, id: &Principal) -> Option<BTreeMap<String, MethodStats>> {
        if *id == self.ledger_id {
            return Some(self.ledger_stats.clone());
        }
        self.canisters.get(id).map(|c| c.stats.clone())
    }

    pub fn module_hash(&self, id: &Principal) -> Option<[u8; 32]> {
        self.canisters.get(id)?.code.as_ref().map(|c| c.prepared.module_hash)
    }

    /// Stable memory size in pages and linear memory size in bytes.
    pub fn memory_sizes(&self, id: &Principal) -> Option<(u64, u64)> {
        let code = self.canisters.get(id)?.code.as_ref()?;
        Some((code.host().stable.size(), code.memory_bytes()))
    }

    /// Digests of a canister's stable memory and of its heap state (see `CanisterInstance::state_digest`).
    pub fn state_digest(&self, id: &Principal) -> Option<([u8; 32], [u8; 32])> {
        Some(self.canisters.get(id)?.code.as_ref()?.state_digest())
    }

    /// Whether `id` is a canister (wasm or built-in) of this devnet.
    pub fn exists(&self, id: &Principal) -> bool {
        *id == self.ledger_id || self.canisters.contains_key(id)
    }

    pub fn global_timer(&self, id: &Principal) -> Option<u64> {
        Some(self.canisters.get(id)?.code.as_ref()?.host().sys.global_timer)
    }

    fn env(&mut self, id: Principal) -> Env {
        let time = self.clock.now();
        let c = &self.canisters[&id];
        Env {
            canister_id: id,
            subnet_id: self.subnet_id,
            root_key: self.bls.public_key_der().to_vec(),
            controllers: c.controllers.clone(),
            time,
            version: c.version,
            status: if c.stopped { 3 } else { 1 },
        }
    }

    // -----------------------------------------------------------------------------------------------------
    // Canister management.

    /// Creates an empty canister; `specified` asks for a given id.
    pub fn create_canister(
        &mut self,
        controllers: Vec<Principal>,
        cycles: u128,
        specified: Option<Principal>,
    ) -> Result<Principal, Reject> {
        let id = match specified {
            Some(id) => {
                if self.exists(&id) || id == Principal::management_canister() {
                    return Err(Reject::new(SYS_TRANSIENT, "IC0205", format!("Canister {id} is already installed.")));
                }
                id
            }
            None => loop {
                let id = canister_id_from_u64(self.next_canister);
                self.next_canister += 1;
                if !self.exists(&id) {
                    break id;
                }
            },
        };
        self.canisters.insert(
            id,
            Canister {
                controllers,
                code: None,
                version: 0,
                cycles,
                stopped: false,
                stats: BTreeMap::new(),
                debug_log: Vec::new(),
            },
        );
        Ok(id)
    }

    fn trap_reject(id: Principal, trap: &Trap) -> Reject {
        match trap {
            Trap::Called(m) => Reject::new(
                CANISTER_ERROR,
                "IC0503",
                format!("Error from Canister {id}: Canister called `ic0.trap` with message: '{m}'."),
            ),
            Trap::Trapped(m) => {
                Reject::new(CANISTER_ERROR, "IC0502", format!("Error from Canister {id}: Canister trapped: {m}."))
            }
            Trap::Violation(m) => Reject::new(
                CANISTER_ERROR,
                "IC0504",
                format!("Error from Canister {id}: Canister violated contract: {m}."),
            ),
            Trap::OutOfInstructions(l) => Reject::new(
                CANISTER_ERROR,
                "IC0522",
                format!(
                    "Error from Canister {id}: Canister exceeded the limit of {l} instructions for single message \
                     execution."
                ),
            ),
            Trap::Missing(m) => Reject::new(
                CANISTER_ERROR,
                "IC0536",
                format!("Error from Canister {id}: Canister has no entry point '{m}'."),
            ),
        }
    }

    fn record_stats(&mut self, id: Principal, key: &str, outcome: &ExecOutcome) {
        if let Some(c) = self.canisters.get_mut(&id) {
            c.stats.entry(key.to_string()).or_default().record(outcome.instructions, outcome.fuel);
            for line in &outcome.ctx.debug_log {
                if c.debug_log.len() >= 10_000 {
                    c.debug_log.remove(0);
                }
                c.debug_log.push(line.clone());
            }
        }
    }

    /// Installs, reinstalls or upgrades the code of `id` with `wasm`, passing `arg` to `canister_init` or
    /// `canister_post_upgrade`. `sender` must be a controller unless it is `None` (the host itself).
    pub fn install_code(
        &mut self,
        sender: Option<Principal>,
        id: Principal,
        mode: InstallMode,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), Reject> {
        let Some(c) = self.canisters.get(&id) else {
            return Err(Reject::new(DESTINATION_INVALID, "IC0301", format!("Canister {id} not found")));
        };
        if let Some(s) = sender
            && !c.controllers.contains(&s)
        {
            return Err(Reject::new(
                CANISTER_ERROR,
                "IC0512",
                format!(
                    "Only the controllers of the canister {id} can control it.\nCanister's controllers: {}\n\
                     Sender's ID: {s}",
                    c.controllers.iter().map(|p| p.to_text()).collect::<Vec<_>>().join(" ")
                ),
            ));
        }
        match (mode, c.code.is_some()) {
            (InstallMode::Install, true) => {
                return Err(Reject::new(
                    CANISTER_ERROR,
                    "IC0538",
                    format!(
                        "Canister {id} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead."
                    ),
                ));
            }
            (InstallMode::Upgrade, false) => {
                return Err(Reject::new(
                    CANISTER_ERROR,
                    "IC0537",
                    format!(
                        "Error from Canister {id}: Attempted to execute a message, but the canister contains no Wasm module."
                    ),
                ));
            }
            _ => {}
        }
        let prepared = exec::prepare(&self.engine, wasm).map_err(|e| {
            Reject::new(
                CANISTER_ERROR,
                "IC0505",
                format!("Error from Canister {id}: Wasm module of canister {id} is not valid: {e}"),
            )
        })?;
        let prepared = Arc::new(prepared);
        let budget = self.limits.install_instructions;
        let env = self.env(id);
        let mut used = 0u64;

        if mode == InstallMode::Upgrade {
            let c = self.canisters.get_mut(&id).expect("checked");
            let old = c.code.as_mut().expect("checked");
            let backup = old.backup();
            let stats_label;
            // pre_upgrade on the old code.
            if old.prepared.has_pre_upgrade {
                let ctx = Ctx::new(
                    EntryKind::PreUpgrade,
                    "",
                    Vec::new(),
                    sender.unwrap_or(Principal::management_canister()),
                    budget,
                );
                let out = old.execute(
                    &self.engine,
                    &self.linker,
                    &Entry::Export("canister_pre_upgrade".into()),
                    env.clone(),
                    ctx,
                    true,
                );
                used += out.instructions;
                stats_label = out.instructions;
                if let Err(t) = &out.result {
                    let rej = Self::trap_reject(id, t);
                    self.record_stats(id, "pre_upgrade", &out);
                    return Err(Reject { message: format!("{} (in canister_pre_upgrade)", rej.message), ..rej });
                }
                self.record_stats(id, "pre_upgrade", &out);
            } else {
                stats_label = 0;
            }
            let _ = stats_label;
            let c = self.canisters.get_mut(&id).expect("checked");
            let old = c.code.as_mut().expect("checked");
            let stable = old.take_stable();
            let sys = SysState {
                global_timer: 0,
                certified_data: old.host().sys.certified_data.clone(),
                cycles: old.host().sys.cycles,
            };
            let result = self.instantiate_and_run(
                id,
                prepared,
                env,
                sys,
                stable,
                budget.saturating_sub(used),
                EntryKind::PostUpgrade,
                arg,
                sender,
            );
            let c = self.canisters.get_mut(&id).expect("checked");
            match result {
                Ok(new) => {
                    c.code = Some(new);
                    c.version += 1;
                    Ok(())
                }
                Err(rej) => {
                    let old = c.code.as_mut().expect("checked");
                    old.restore_backup(&self.engine, &self.linker, backup);
                    Err(rej)
                }
            }
        } else {
            let cycles = self.canisters[&id].cycles;
            let sys = SysState { global_timer: 0, certified_data: Vec::new(), cycles };
            let new = self.instantiate_and_run(
                id,
                prepared,
                env,
                sys,
                StableMemory::default(),
                budget,
                EntryKind::Init,
                arg,
                sender,
            )?;
            let c = self.canisters.get_mut(&id).expect("checked");
            c.code = Some(new);
            c.version += 1;
            Ok(())
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn instantiate_and_run(
        &mut self,
        id: Principal,
        prepared: Arc<PreparedModule>,
        env: Env,
        sys: SysState,
        stable: StableMemory,
        budget: u64,
        kind: EntryKind,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<CanisterInstance, Reject> {
        let (export, has, label) = match kind {
            EntryKind::Init => ("canister_init", prepared.has_init, "init"),
            _ => ("canister_post_upgrade", prepared.has_post_upgrade, "post_upgrade"),
        };
        let (mut inst, used) =
            CanisterInstance::new(&self.engine, &self.linker, prepared, env.clone(), sys, stable, budget).map_err(
                |(t, _)| {
                    let r = Self::trap_reject(id, &t);
                    Reject { message: format!("{} (in the start function)", r.message), ..r }
                },
            )?;
        if has {
            let ctx = Ctx::new(
                kind,
                "",
                arg,
                sender.unwrap_or(Principal::management_canister()),
                budget.saturating_sub(used),
            );
            let out = inst.execute(&self.engine, &self.linker, &Entry::Export(export.into()), env, ctx, true);
            self.record_stats(id, label, &out);
            if let Err(t) = &out.result {
                let r = Self::trap_reject(id, t);
                return Err(Reject { message: format!("{} (in {export})", r.message), ..r });
            }
        }
        Ok(inst)
    }

    /// Removes a canister's code (its state is lost).
    pub fn uninstall_code(&mut self, id: Principal) -> Result<(), Reject> {
        let c = self
            .canisters
            .get_mut(&id)
            .ok_or_else(|| Reject::new(DESTINATION_INVALID, "IC0301", format!("Canister {id} not found")))?;
        c.code = None;
        c.version += 1;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------------------
    // Messages.

    fn deliver(&mut self, origin: Origin, result: Result<Vec<u8>, Reject>) {
        match origin {
            Origin::Ingress(rid) => {
                if let Some(r) = self.ingress.get_mut(&rid) {
                    r.status = match result {
                        Ok(b) => IngressStatus::Replied(b),
                        Err(e) => IngressStatus::Rejected(e),
                    };
                }
            }
            Origin::Canister { canister, cc, call } => {
                self.queue.push_back(Message::Response(ResponseMsg { canister, cc, call, result }));
            }
            Origin::System => {}
            Origin::Direct(id) => {
                self.direct.insert(id, result);
            }
        }
    }

    fn respond(&mut self, cc_id: u64, result: Result<Vec<u8>, Reject>) {
        let Some(cc) = self.call_contexts.get_mut(&cc_id) else { return };
        if cc.responded {
            return;
        }
        cc.responded = true;
        let origin = cc.origin.clone();
        self.deliver(origin, result);
    }

    /// Submits an ingress update call (after the HTTP layer checked signature and expiry). `Err` is a
    /// non-replicated rejection (the message was not accepted).
    pub fn submit_ingress(&mut self, call: IngressCall) -> Result<(), Reject> {
        if self.ingress.contains_key(&call.request_id) {
            return Ok(());
        }
        let id = call.canister_id;
        if id != Principal::management_canister() && id != self.ledger_id {
            let Some(c) = self.canisters.get(&id) else {
                return Err(Reject::new(DESTINATION_INVALID, "IC0301", format!("Canister {id} not found")));
            };
            let Some(code) = &c.code else {
                return Err(Reject::new(
                    CANISTER_ERROR,
                    "IC0537",
                    format!(
                        "Error from Canister {id}: Attempted to execute a message, but the canister contains no Wasm module."
                    ),
                ));
            };
            if code.prepared.exports_inspect_message {
                let env = self.env(id);
                let ctx = Ctx::new(
                    EntryKind::InspectMessage,
                    &call.method,
                    call.arg.clone(),
                    call.sender,
                    self.limits.query_instructions,
                );
                let c = self.canisters.get_mut(&id).expect("checked");
                let code = c.code.as_mut().expect("checked");
                let out = code.execute(
                    &self.engine,
                    &self.linker,
                    &Entry::Export("canister_inspect_message".into()),
                    env,
                    ctx,
                    false,
                );
                self.record_stats(id, "inspect_message", &out);
                if let Err(t) = &out.result {
                    return Err(Self::trap_reject(id, t));
                }
                if !out.ctx.accepted {
                    return Err(Reject::new(
                        CANISTER_REJECT,
                        "IC0406",
                        format!("Error from Canister {id}: Canister rejected the message"),
                    ));
                }
            }
        } else if id == Principal::management_canister() && call.method == "raw_rand" {
            return Err(Reject::new(
                CANISTER_REJECT,
                "IC0407",
                "Only canisters can call ic00 method raw_rand".to_string(),
            ));
        }
        self.ingress.insert(
            call.request_id,
            IngressRecord { status: IngressStatus::Received, sender: call.sender, expiry: call.expiry },
        );
        self.queue.push_back(Message::Request(Request {
            callee: id,
            method: call.method,
            arg: call.arg,
            caller: call.sender,
            cycles: 0,
            origin: Origin::Ingress(call.request_id),
        }));
        Ok(())
    }

    /// The status of an ingress message and its sender.
    pub fn ingress_status(&self, rid: &[u8; 32]) -> Option<(IngressStatus, Principal)> {
        self.ingress.get(rid).map(|r| (r.status.clone(), r.sender))
    }

    /// Runs an update call from the host (no signature, no ingress history) to completion.
    pub fn update_direct(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        if arg.len() > self.limits.max_ingress_bytes {
            return Err(Reject::new(
                SYS_FATAL,
                "IC0000",
                format!(
                    "the argument ({} bytes) exceeds the {}-byte ingress limit",
                    arg.len(),
                    self.limits.max_ingress_bytes
                ),
            ));
        }
        if canister != Principal::management_canister() && !self.exists(&canister) {
            return Err(Reject::new(DESTINATION_INVALID, "IC0301", format!("Canister {canister} not found")));
        }
        let id = self.next_direct;
        self.next_direct += 1;
        self.queue.push_back(Message::Request(Request {
            callee: canister,
            method: method.to_string(),
            arg,
            caller: sender,
            cycles: 0,
            origin: Origin::Direct(id),
        }));
        loop {
            if let Some(r) = self.direct.remove(&id) {
                return r;
            }
            if self.run_pass() == 0 {
                return Err(Reject::new(SYS_TRANSIENT, "IC0202", "the call did not complete"));
            }
        }
    }

    /// One scheduling pass: due timers and heartbeats, then queued messages (at most
    /// `limits.max_messages_per_pass`). Returns how many executions ran.
    pub fn run_pass(&mut self) -> usize {
        let mut n = self.fire_timers();
        while let Some(m) = self.queue.pop_front() {
            match m {
                Message::Request(r) => self.process_request(r),
                Message::Response(r) => self.process_response(r),
            }
            n += 1;
            if n >= self.limits.max_messages_per_pass {
                break;
            }
        }
        self.prune_ingress();
        n
    }

    /// Runs passes until nothing is left to do (or `max_passes` passes ran).
    pub fn run_until_idle(&mut self, max_passes: usize) {
        for _ in 0..max_passes {
            if self.run_pass() == 0 && self.queue.is_empty() {
                return;
            }
        }
    }

    pub fn has_pending_messages(&self) -> bool {
        !self.queue.is_empty()
    }

    fn prune_ingress(&mut self) {
        // Keep finished calls until their expiry plus a margin (as the IC keeps them for the expiry window).
        let now = wall_nanos();
        let keep = 60_000_000_000u64;
        self.ingress.retain(|_, r| {
            let finished =
                matches!(r.status, IngressStatus::Replied(_) | IngressStatus::Rejected(_) | IngressStatus::Done);
            !finished || r.expiry.saturating_add(keep) > now
        });
    }

    fn fire_timers(&mut self) -> usize {
        let now = self.clock.now();
        let mut due = Vec::new();
        for (id, c) in &self.canisters {
            let Some(code) = &c.code else { continue };
            if c.stopped {
                continue;
            }
            let t = code.host().sys.global_timer;
            if code.prepared.exports_global_timer && t != 0 && t <= now {
                due.push((*id, "canister_global_timer"));
            }
            if code.prepared.exports_heartbeat {
                due.push((*id, "canister_heartbeat"));
            }
        }
        // Heartbeats run every pass but do not count as work (a pass with only heartbeats is idle).
        let n = due.iter().filter(|(_, e)| *e == "canister_global_timer").count();
        for (id, export) in due {
            let (kind, key) = if export == "canister_global_timer" {
                let code = self.canisters.get_mut(&id).and_then(|c| c.code.as_mut()).expect("listed");
                code.host_mut().sys.global_timer = 0;
                (EntryKind::GlobalTimer, "global_timer")
            } else {
                (EntryKind::Heartbeat, "heartbeat")
            };
            let cc = self.new_call_context(Origin::System, Principal::management_canister(), "", key);
            let ctx = Ctx::new(kind, "", Vec::new(), Principal::management_canister(), self.limits.update_instructions);
            let out = self.run_in_context(id, cc, Entry::Export(export.into()), ctx, true);
            self.finish(id, cc, out);
        }
        n
    }

    fn new_call_context(&mut self, origin: Origin, caller: Principal, method: &str, key: &str) -> u64 {
        let id = self.next_cc;
        self.next_cc += 1;
        self.call_contexts.insert(
            id,
            CallContext {
                origin,
                caller,
                method: method.to_string(),
                stats_key: key.to_string(),
                responded: false,
                outstanding: 0,
                instructions: 0,
            },
        );
        id
    }

    /// Executes `entry` of `canister` in call context `cc` and applies the outcome.
    fn run_in_context(
        &mut self,
        canister: Principal,
        cc: u64,
        entry: Entry,
        mut ctx: Ctx,
        commit: bool,
    ) -> ExecOutcome {
        let env = self.env(canister);
        ctx.max_reply_bytes = self.limits.max_response_bytes;
        if let Some(c) = self.call_contexts.get(&cc) {
            ctx.call_context_instructions = c.instructions;
        }
        let code = self.canisters.get_mut(&canister).and_then(|c| c.code.as_mut()).expect("caller checked the code");
        let out = code.execute(&self.engine, &self.linker, &entry, env, ctx, commit);
        let key = self.call_contexts.get(&cc).map(|c| c.stats_key.clone()).unwrap_or_default();
        let label = match out.ctx.kind {
            EntryKind::ReplyCallback | EntryKind::RejectCallback => format!("{key} (callback)"),
            EntryKind::Cleanup => format!("{key} (cleanup)"),
            _ => key,
        };
        self.record_stats(canister, &label, &out);
        out
    }

    fn finish(&mut self, canister: Principal, cc_id: u64, out: ExecOutcome) {
        let Some(cc) = self.call_contexts.get_mut(&cc_id) else { return };
        cc.instructions += out.instructions;
        match out.result {
            Err(t) => {
                if !cc.responded && cc.outstanding == 0 {
                    let rej = Self::trap_reject(canister, &t);
                    self.respond(cc_id, Err(rej));
                }
            }
            Ok(()) => {
                let ctx = out.ctx;
                for call in ctx.calls {
                    cc.outstanding += 1;
                    self.queue.push_back(Message::Request(Request {
                        callee: call.callee,
                        method: call.method.clone(),
                        arg: call.payload.clone(),
                        caller: canister,
                        cycles: call.cycles,
                        origin: Origin::Canister { canister, cc: cc_id, call: Box::new(call) },
                    }));
                }
                if let Some(r) = ctx.response {
                    let result = match r {
                        Response::Reply(b) => Ok(b),
                        Response::Reject(m) => Err(Reject::new(CANISTER_REJECT, "IC0406", m)),
                    };
                    self.respond(cc_id, result);
                }
                let cc = self.call_contexts.get(&cc_id).expect("exists");
                if !cc.responded && cc.outstanding == 0 {
                    self.respond(
                        cc_id,
                        Err(Reject::new(
                            CANISTER_ERROR,
                            "IC0506",
                            format!("Error from Canister {canister}: Canister did not reply to the call."),
                        )),
                    );
                }
            }
        }
        let cc = self.call_contexts.get(&cc_id).expect("exists");
        if cc.responded && cc.outstanding == 0 {
            self.call_contexts.remove(&cc_id);
        }
    }

    fn process_request(&mut self, req: Request) {
        if let Origin::Ingress(rid) = &req.origin
            && let Some(r) = self.ingress.get_mut(rid)
        {
            r.status = IngressStatus::Processing;
        }
        let id = req.callee;
        if id == Principal::management_canister() {
            let r = self.management(req.caller, &req.method, &req.arg, !matches!(req.origin, Origin::Ingress(_)));
            self.deliver(req.origin, r);
            return;
        }
        if id == self.ledger_id {
            let r = match crate::ledger::is_query(&req.method) {
                None => Err(Reject::new(
                    CANISTER_ERROR,
                    "IC0536",
                    format!("Error from Canister {id}: Canister has no update method '{}'.", req.method),
                )),
                Some(_) => {
                    let now = self.clock.now();
                    self.ledger_stats.entry(req.method.clone()).or_default().record(0, 0);
                    self.ledger.call(req.caller, &req.method, &req.arg, now).map_err(|m| {
                        Reject::new(
                            CANISTER_ERROR,
                            "IC0503",
                            format!("Error from Canister {id}: Canister called `ic0.trap` with message: '{m}'."),
                        )
                    })
                }
            };
            self.deliver(req.origin, r);
            return;
        }
        let Some(c) = self.canisters.get(&id) else {
            self.deliver(
                req.origin,
                Err(Reject::new(DESTINATION_INVALID, "IC0301", format!("Canister {id} not found"))),
            );
            return;
        };
        if c.stopped {
            self.deliver(req.origin, Err(Reject::new(CANISTER_ERROR, "IC0508", format!("Canister {id} is stopped"))));
            return;
        }
        let Some(code) = &c.code else {
            self.deliver(
                req.origin,
                Err(Reject::new(
                    CANISTER_ERROR,
                    "IC0537",
                    format!("Error from Canister {id}: Attempted to execute a message, but the canister contains no Wasm module."),
                )),
            );
            return;
        };
        let (export, kind, commit) = if code.prepared.update_methods.contains(&req.method) {
            (format!("canister_update {}", req.method), EntryKind::Update, true)
        } else if code.prepared.query_methods.contains(&req.method) {
            // A query method called in replicated mode: it runs, its changes are discarded.
            (format!("canister_query {}", req.method), EntryKind::Query, false)
        } else {
            self.deliver(
                req.origin,
                Err(Reject::new(
                    CANISTER_ERROR,
                    "IC0536",
                    format!("Error from Canister {id}: Canister has no update method '{}'.", req.method),
                )),
            );
            return;
        };
        let cc = self.new_call_context(req.origin, req.caller, &req.method, &req.method);
        let mut ctx = Ctx::new(kind, &req.method, req.arg, req.caller, self.limits.update_instructions);
        ctx.cycles_available = req.cycles;
        let out = self.run_in_context(id, cc, Entry::Export(export), ctx, commit);
        self.finish(id, cc, out);
    }

    fn process_response(&mut self, resp: ResponseMsg) {
        let Some(cc) = self.call_contexts.get_mut(&resp.cc) else { return };
        cc.outstanding = cc.outstanding.saturating_sub(1);
        let (caller, method, can_respond) = (cc.caller, cc.method.clone(), !cc.responded);
        let canister = resp.canister;
        let has_code = self.canisters.get(&canister).is_some_and(|c| c.code.is_some());
        if !has_code {
            // The canister was uninstalled: its call contexts are gone.
            self.call_contexts.remove(&resp.cc);
            return;
        }
        let (entry, kind, arg, code, msg) = match resp.result {
            Ok(b) => {
                (Entry::Callback(resp.call.reply.0, resp.call.reply.1), EntryKind::ReplyCallback, b, 0, String::new())
            }
            Err(r) => (
                Entry::Callback(resp.call.reject.0, resp.call.reject.1),
                EntryKind::RejectCallback,
                Vec::new(),
                r.code,
                r.message,
            ),
        };
        let mut ctx = Ctx::new(kind, &method, arg, caller, self.limits.update_instructions);
        ctx.can_respond = can_respond;
        ctx.reject_code = code;
        ctx.reject_message = msg;
        let out = self.run_in_context(canister, resp.cc, entry, ctx, true);
        if out.result.is_err()
            && let Some((fun, env)) = resp.call.cleanup
        {
            let ctx = Ctx::new(EntryKind::Cleanup, &method, Vec::new(), caller, self.limits.update_instructions);
            let cl = self.run_in_context(canister, resp.cc, Entry::Callback(fun, env), ctx, true);
            if let Some(cc) = self.call_contexts.get_mut(&resp.cc) {
                cc.instructions += cl.instructions;
            }
        }
        self.finish(canister, resp.cc, out);
    }

    /// A non-replicated query call.
    pub fn query(&mut self, sender: Principal, id: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, Reject> {
        if id == self.ledger_id {
            return match crate::ledger::is_query(method) {
                Some(true) => {
                    let now = self.clock.now();
                    self.ledger.call(sender, method, &arg, now).map_err(|m| {
                        Reject::new(
                            CANISTER_ERROR,
                            "IC0503",
                            format!("Error from Canister {id}: Canister called `ic0.trap` with message: '{m}'."),
                        )
                    })
                }
                _ => Err(Reject::new(
                    CANISTER_ERROR,
                    "IC0536",
                    format!("Error from Canister {id}: Canister has no query method '{method}'."),
                )),
            };
        }
        if id == Principal::management_canister() {
            return Err(Reject::new(
                CANISTER_REJECT,
                "IC0407",
                format!("Query method {method} of the management canister is not supported by the devnet"),
            ));
        }
        let Some(c) = self.canisters.get(&id) else {
            return Err(Reject::new(DESTINATION_INVALID, "IC0301", format!("Canister {id} not found")));
        };
        let Some(code) = &c.code else {
            return Err(Reject::new(
                CANISTER_ERROR,
                "IC0537",
                format!(
                    "Error from Canister {id}: Attempted to execute a message, but the canister contains no Wasm module."
                ),
            ));
        };
        if c.stopped {
            return Err(Reject::new(CANISTER_ERROR, "IC0508", format!("Canister {id} is stopped")));
        }
        if !code.prepared.query_methods.iter().any(|m| m == method) {
            return Err(Reject::new(
                CANISTER_ERROR,
                "IC0536",
                format!("Error from Canister {id}: Canister has no query method '{method}'."),
            ));
        }
        let cert = self.certificate(&[vec![b"canister".to_vec(), id.as_slice().to_vec(), b"certified_data".to_vec()]]);
        let env = self.env(id);
        let mut ctx = Ctx::new(EntryKind::Query, method, arg, sender, self.limits.query_instructions);
        ctx.data_certificate = Some(cert);
        ctx.max_reply_bytes = self.limits.max_response_bytes;
        let c = self.canisters.get_mut(&id).expect("checked");
        let code = c.code.as_mut().expect("checked");
        let out = code.execute(
            &self.engine,
            &self.linker,
            &Entry::Export(format!("canister_query {method}")),
            env,
            ctx,
            false,
        );
        self.record_stats(id, &format!("{method} (query)"), &out);
        match out.result {
            Err(t) => Err(Self::trap_reject(id, &t)),
            Ok(()) => match out.ctx.response {
                Some(Response::Reply(b)) => Ok(b),
                Some(Response::Reject(m)) => Err(Reject::new(CANISTER_REJECT, "IC0406", m)),
                None => Err(Reject::new(
                    CANISTER_ERROR,
                    "IC0506",
                    format!("Error from Canister {id}: Canister did not reply to the call."),
                )),
            },
        }
    }

    // -----------------------------------------------------------------------------------------------------
    // The management canister.

    fn management(
        &mut self,
        caller: Principal,
        method: &str,
        arg: &[u8],
        from_canister: bool,
    ) -> Result<Vec<u8>, Reject> {
        let bad = |e: candid::Error| {
            Reject::new(CANISTER_REJECT, "IC0408", format!("Error decoding candid for method {method}: {e}"))
        };
        match method {
            "provisional_create_canister_with_cycles" => {
                let a = Decode!(arg, ProvisionalCreateArgs).map_err(bad)?;
                let controllers = a.settings.and_then(|s| s.controllers).unwrap_or_else(|| vec![caller]);
                let cycles = a.amount.and_then(|n| u128::try_from(n.0).ok()).unwrap_or(1_000_000_000_000_000);
                let id = self.create_canister(controllers, cycles, a.specified_id)?;
                Ok(Encode!(&CanisterIdRecord { canister_id: id }).expect("encode"))
            }
            "create_canister" => {
                let a = Decode!(arg, CreateCanisterArgs).map_err(bad)?;
                let controllers = a.settings.and_then(|s| s.controllers).unwrap_or_else(|| vec![caller]);
                let id = self.create_canister(controllers, 1_000_000_000_000_000, None)?;
                Ok(Encode!(&CanisterIdRecord { canister_id: id }).expect("encode"))
            }
            "install_code" => {
                let a = Decode!(arg, InstallCodeArgs).map_err(bad)?;
                let mode = match a.mode {
                    CanisterInstallMode::Install => InstallMode::Install,
                    CanisterInstallMode::Reinstall => InstallMode::Reinstall,
                    CanisterInstallMode::Upgrade(_) => InstallMode::Upgrade,
                };
                self.install_code(Some(caller), a.canister_id, mode, &a.wasm_module, a.arg.into_vec())?;
                Ok(Encode!().expect("encode"))
            }
            "uninstall_code" => {
                let a = Decode!(arg, CanisterIdRecord).map_err(bad)?;
                self.check_controller(caller, a.canister_id)?;
                self.uninstall_code(a.canister_id)?;
                Ok(Encode!().expect("encode"))
            }
            "update_settings" => {
                let a = Decode!(arg, UpdateSettingsArgs).map_err(bad)?;
                self.check_controller(caller, a.canister_id)?;
                if let Some(ctrl) = a.settings.controllers {
                    self.canisters.get_mut(&a.canister_id).expect("checked").controllers = ctrl;
                }
                Ok(Encode!().expect("encode"))
            }
            "start_canister" | "stop_canister" => {
                let a = Decode!(arg, CanisterIdRecord).map_err(bad)?;
                self.check_controller(caller, a.canister_id)?;
                self.canisters.get_mut(&a.canister_id).expect("checked").stopped = method == "stop_canister";
                Ok(Encode!().expect("encode"))
            }
            "delete_canister" => {
                let a = Decode!(arg, CanisterIdRecord).map_err(bad)?;
                self.check_controller(caller, a.canister_id)?;
                if !self.canisters[&a.canister_id].stopped {
                    return Err(Reject::new(
                        CANISTER_ERROR,
                        "IC0510",
                        format!("Canister {} must be stopped before it is deleted.", a.canister_id),
                    ));
                }
                self.canisters.remove(&a.canister_id);
                Ok(Encode!().expect("encode"))
            }
            "raw_rand" if from_canister => {
                self.rand_counter += 1;
                let mut input = self.seed.to_vec();
                input.extend_from_slice(&self.rand_counter.to_le_bytes());
                input.extend_from_slice(b"raw_rand");
                let bytes = cbor::sha256(&input);
                Ok(Encode!(&serde_bytes::ByteBuf::from(bytes.to_vec())).expect("encode"))
            }
            "provisional_top_up_canister" => {
                let a = Decode!(arg, TopUpArgs).map_err(bad)?;
                let c = self.canisters.get_mut(&a.canister_id).ok_or_else(|| {
                    Reject::new(DESTINATION_INVALID, "IC0301", format!("Canister {} not found", a.canister_id))
                })?;
                let n = u128::try_from(a.amount.0).unwrap_or(u128::MAX);
                c.cycles = c.cycles.saturating_add(n);
                if let Some(code) = c.code.as_mut() {
                    code.host_mut().sys.cycles = code.host().sys.cycles.saturating_add(n);
                }
                Ok(Encode!().expect("encode"))
            }
            other => Err(Reject::new(
                CANISTER_REJECT,
                "IC0407",
                format!("Management canister has no method '{other}' (or the devnet does not implement it)"),
            )),
        }
    }

    fn check_controller(&self, caller: Principal, id: Principal) -> Result<(), Reject> {
        let c = self
            .canisters
            .get(&id)
            .ok_or_else(|| Reject::new(DESTINATION_INVALID, "IC0301", format!("Canister {id} not found")))?;
        if !c.controllers.contains(&caller) {
            return Err(Reject::new(
                CANISTER_ERROR,
                "IC0512",
                format!("Only the controllers of the canister {id} can control it."),
            ));
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------------------
    // Certification.

    /// The full state tree at `time`.
    fn state_tree(&self, time: u64) -> LabeledTree {
        let mut t = LabeledTree::default();
        t.insert(&[b"time"], cbor::leb128(time));
        t.ensure_subtree(&[b"request_status"]);
        for (rid, r) in &self.ingress {
            let base: [&[u8]; 2] = [b"request_status", rid];
            let mut put = |k: &[u8], v: Vec<u8>| t.insert(&[base[0], base[1], k], v);
            match &r.status {
                IngressStatus::Received => put(b"status", b"received".to_vec()),
                IngressStatus::Processing => put(b"status", b"processing".to_vec()),
                IngressStatus::Replied(b) => {
                    put(b"status", b"replied".to_vec());
                    put(b"reply", b.clone());
                }
                IngressStatus::Rejected(rej) => {
                    put(b"status", b"rejected".to_vec());
                    put(b"reject_code", cbor::leb128(rej.code as u64));
                    put(b"reject_message", rej.message.clone().into_bytes());
                    put(b"error_code", rej.error_code.clone().into_bytes());
                }
                IngressStatus::Done => put(b"status", b"done".to_vec()),
            }
        }
        for (id, c) in &self.canisters {
            let ctrl = cbor::encode_tagged(Value::Array(
                c.controllers.iter().map(|p| Value::Bytes(p.as_slice().to_vec())).collect(),
            ));
            t.insert(&[b"canister", id.as_slice(), b"controllers"], ctrl);
            if let Some(code) = &c.code {
                t.insert(&[b"canister", id.as_slice(), b"module_hash"], code.prepared.module_hash.to_vec());
                t.insert(&[b"canister", id.as_slice(), b"certified_data"], code.host().sys.certified_data.clone());
                for (name, data) in &code.prepared.public_metadata {
                    t.insert(&[b"canister", id.as_slice(), b"metadata", name.as_bytes()], data.clone());
                }
            }
        }
        let subnet = self.subnet_id.as_slice();
        t.insert(&[b"subnet", subnet, b"public_key"], self.bls.public_key_der().to_vec());
        t.insert(&[b"subnet", subnet, b"type"], b"application".to_vec());
        let ranges = cbor::encode_tagged(Value::Array(vec![Value::Array(vec![
            Value::Bytes(canister_id_from_u64(0).as_slice().to_vec()),
            Value::Bytes(canister_id_from_u64(u64::MAX).as_slice().to_vec()),
        ])]));
        t.insert(&[b"subnet", subnet, b"canister_ranges"], ranges);
        t.insert(
            &[b"subnet", subnet, b"node", self.node.id().as_slice(), b"public_key"],
            self.node.public_key_der().to_vec(),
        );
        t
    }

    /// A certificate (CBOR) revealing `paths` and `/time`, signed with the root key.
    pub fn certificate(&mut self, paths: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let time = self.clock.now();
        let tree = self.state_tree(time);
        let mut paths = paths.to_vec();
        paths.push(vec![b"time".to_vec()]);
        let witness = tree.witness(&paths);
        let sig = self.bls.sign_root(&witness.digest());
        cbor::encode_tagged(cbor::map([("tree", witness.to_cbor()), ("signature", cbor::bytes(&sig))]))
    }

    /// Signs a query response (the node signature of the HTTP interface).
    pub fn sign_query_response(&self, response_hash: &[u8; 32]) -> Vec<u8> {
        let mut msg = crate::crypto::DOMAIN_RESPONSE.to_vec();
        msg.extend_from_slice(response_hash);
        self.node.sign(&msg).to_vec()
    }

    /// The ledger account of a principal's default subaccount.
    pub fn ledger_balance(&self, account: &Account) -> u128 {
        self.ledger.balance(account)
    }

    pub fn nat(n: u128) -> Nat {
        Nat::from(n)
    }
}

// Management canister argument types (only the fields the devnet uses; Candid ignores the others).

#[derive(CandidType, Deserialize)]
struct CanisterSettings {
    controllers: Option<Vec<Principal>>,
}

#[derive(CandidType, Deserialize)]
struct ProvisionalCreateArgs {
    amount: Option<Nat>,
    settings: Option<CanisterSettings>,
    specified_id: Option<Principal>,
}

#[derive(CandidType, Deserialize)]
struct CreateCanisterArgs {
    settings: Option<CanisterSettings>,
}

#[derive(CandidType, Deserialize)]
struct CanisterIdRecord {
    canister_id: Principal,
}

#[derive(CandidType, Deserialize)]
struct UpdateSettingsArgs {
    canister_id: Principal,
    settings: CanisterSettings,
}

#[derive(CandidType, Deserialize)]
struct TopUpArgs {
    canister_id: Principal,
    amount: Nat,
}

#[derive(CandidType, Deserialize)]
struct UpgradeFlags {
    skip_pre_upgrade: Option<bool>,
}

#[derive(CandidType, Deserialize)]
enum CanisterInstallMode {
    #[serde(rename = "install")]
    Install,
    #[serde(rename = "reinstall")]
    Reinstall,
    #[serde(rename = "upgrade")]
    Upgrade(Option<UpgradeFlags>),
}

#[derive(CandidType, Deserialize)]
struct InstallCodeArgs {
    mode: CanisterInstallMode,
    canister_id: Principal,
    wasm_module: serde_bytes::ByteBuf,
    arg: serde_bytes::ByteBuf,
}
