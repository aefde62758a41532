//! The IC shell: decodes Candid, reads the caller and the time, calls the ledger, runs the sweep timer. Every
//! decision is the core's ([`crate::core::Core`]); nothing here changes state except through it.
//!
//! The state is the core over `DefaultMemoryImpl` (stable memory): an upgrade keeps everything and needs no
//! `pre_upgrade`. Timers are not kept by upgrades, so `post_upgrade` re-arms the sweep.

use std::cell::RefCell;
use std::time::Duration;

use candid::{CandidType, Nat, Principal};
use ic_cdk::call::{Call, CallFailed, RejectCode};
use ic_stable_structures::DefaultMemoryImpl;
use opml_bisect::{ClaimState, Hash};
use serde::{Deserialize, Serialize};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::ledger::{TransferError, TransferFromArgs, TransferFromError, classify_transfer};
use crate::types::*;
use crate::vm_adapter::OpmlVm;

/// Claims the sweep visits per timer tick (bounds the tick's instructions).
pub const SWEEP_CLAIMS: u32 = 50;

type State = Core<DefaultMemoryImpl, OpmlVm>;

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn with<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with_borrow(|s| f(s.as_ref().expect("state initialised in init/post_upgrade")))
}

fn with_mut<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with_borrow_mut(|s| f(s.as_mut().expect("state initialised in init/post_upgrade")))
}

fn caller() -> Caller {
    let id = ic_cdk::api::msg_caller();
    Caller { id, is_controller: ic_cdk::api::is_controller(&id) }
}

fn now() -> u64 {
    ic_cdk::api::time()
}

/// Replies with `r` (see [`crate::reply`]) and returns it: methods are `manual_reply` so their reply skips
/// `encode_one`, and their declared return type is what `export_candid!` puts in the interface.
fn reply<T: CandidType + 'static>(r: T) -> T {
    ic_cdk::api::msg_reply(crate::reply::encode(&r));
    r
}

/// Caches the type part of every method's reply ([`crate::reply`]), so no call pays for it (a query could not keep
/// what it computed: its heap changes are discarded).
fn warm_replies() {
    use crate::reply::warm;
    // Updates.
    warm::<Result<()>>();
    warm::<Result<u64>>();
    warm::<Result<u32>>();
    warm::<Result<RegistrationStep>>();
    warm::<Result<Withdrawal>>();
    // Queries.
    warm::<Result<Upload>>();
    warm::<Result<Program>>();
    warm::<Vec<Program>>();
    warm::<Result<WasmSlice>>();
    warm::<Result<Task>>();
    warm::<TaskPage>();
    warm::<Result<ClaimView>>();
    warm::<Result<ClaimState>>();
    warm::<ClaimPage>();
    warm::<Result<DisputeView>>();
    warm::<Result<Vec<DisputeView>>>();
    warm::<Config>();
    warm::<Totals>();
    warm::<u64>();
    warm::<WithdrawalPage>();
}

fn arm_timer() {
    let secs = with(|s| s.config().sweep_interval_s);
    if secs > 0 {
        ic_cdk_timers::set_timer_interval(Duration::from_secs(secs), || async {
            with_mut(|s| s.sweep(now(), SWEEP_CLAIMS));
        });
    }
}

#[ic_cdk::init]
fn init(config: Config) {
    let state = Core::init(DefaultMemoryImpl::default(), OpmlVm, config)
        .unwrap_or_else(|e| ic_cdk::trap(format!("invalid init arguments: {e:?}")));
    STATE.set(Some(state));
    warm_replies();
    arm_timer();
}

#[ic_cdk::post_upgrade]
fn post_upgrade(config: Option<Config>) {
    let state = Core::load(DefaultMemoryImpl::default(), OpmlVm, config)
        .unwrap_or_else(|e| ic_cdk::trap(format!("invalid upgrade arguments: {e:?}")));
    STATE.set(Some(state));
    warm_replies();
    arm_timer();
}

// ---------------------------------------------------------------------------------------------------------------
// Programs

/// `upload_chunk` arguments.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug)]
pub struct UploadChunk {
    /// The upload.
    pub upload: Id,
    /// Where the chunk starts (the bytes received so far).
    pub offset: u64,
    /// At most 1 MiB.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

#[ic_cdk::update(manual_reply = true)]
fn begin_upload(args: BeginUpload) -> Result<Id> {
    reply(with_mut(|s| s.begin_upload(&caller(), args, now())))
}

#[ic_cdk::update(manual_reply = true)]
fn upload_chunk(args: UploadChunk) -> Result<u64> {
    reply(with_mut(|s| s.upload_chunk(&caller(), args.upload, args.offset, &args.bytes)))
}

#[ic_cdk::update(manual_reply = true)]
fn finish_upload(upload: Id) -> Result<RegistrationStep> {
    reply(with_mut(|s| s.finish_upload(&caller(), upload, now())))
}

#[ic_cdk::update(manual_reply = true)]
fn abort_upload(upload: Id) -> Result<()> {
    reply(with_mut(|s| s.abort_upload(&caller(), upload)))
}

#[ic_cdk::query(manual_reply = true)]
fn get_upload(upload: Id) -> Result<Upload> {
    reply(with(|s| s.upload(upload)))
}

#[ic_cdk::query(manual_reply = true)]
fn get_program(program: Hash) -> Result<Program> {
    reply(with(|s| s.program(&program)))
}

#[ic_cdk::query(manual_reply = true)]
fn list_programs(after: Option<Hash>, limit: u32) -> Vec<Program> {
    reply(with(|s| s.list_programs(after, limit)))
}

/// A slice of a module, as a blob.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug)]
pub struct WasmSlice {
    /// The bytes.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

#[ic_cdk::query(manual_reply = true)]
fn program_wasm(program: Hash, offset: u64, len: u64) -> Result<WasmSlice> {
    reply(with(|s| s.program_wasm(&program, offset, len)).map(|bytes| WasmSlice { bytes }))
}

// ---------------------------------------------------------------------------------------------------------------
// Tasks, claims, disputes

#[ic_cdk::update(manual_reply = true)]
fn post_task(spec: PostTask) -> Result<Id> {
    reply(with_mut(|s| s.post_task(&caller(), spec, now())))
}

#[ic_cdk::update(manual_reply = true)]
fn cancel_task(task: Id) -> Result<()> {
    reply(with_mut(|s| s.cancel_task(&caller(), task)))
}

#[ic_cdk::query(manual_reply = true)]
fn get_task(task: Id) -> Result<Task> {
    reply(with(|s| s.task(task)))
}

#[ic_cdk::query(manual_reply = true)]
fn list_tasks(start: Id, limit: u32) -> TaskPage {
    reply(with(|s| s.list_tasks(start, limit)))
}

#[ic_cdk::update(manual_reply = true)]
fn submit_claim(args: SubmitClaim) -> Result<Id> {
    reply(with_mut(|s| s.submit_claim(&caller(), args, now())))
}

#[ic_cdk::update(manual_reply = true)]
fn open_dispute(claim: Id) -> Result<u32> {
    reply(with_mut(|s| s.open_dispute(&caller(), claim, now())))
}

#[ic_cdk::update(manual_reply = true)]
fn play(args: PlayArgs) -> Result<()> {
    reply(with_mut(|s| s.play(&caller(), args, now())))
}

#[ic_cdk::update(manual_reply = true)]
fn timeout(claim: Id, dispute: u32) -> Result<()> {
    reply(with_mut(|s| s.timeout(claim, dispute, now())))
}

#[ic_cdk::update(manual_reply = true)]
fn finalize(claim: Id) -> Result<()> {
    reply(with_mut(|s| s.finalize(claim, now())))
}

#[ic_cdk::query(manual_reply = true)]
fn get_claim(claim: Id) -> Result<ClaimView> {
    reply(with(|s| s.claim(claim)))
}

#[ic_cdk::query(manual_reply = true)]
fn get_claim_state(claim: Id) -> Result<ClaimState> {
    reply(with(|s| s.claim_state(claim)))
}

#[ic_cdk::query(manual_reply = true)]
fn list_claims(start: Id, limit: u32) -> ClaimPage {
    reply(with(|s| s.list_claims(start, limit)))
}

#[ic_cdk::query(manual_reply = true)]
fn get_dispute(claim: Id, dispute: u32) -> Result<DisputeView> {
    reply(with(|s| s.dispute(claim, dispute)))
}

#[ic_cdk::query(manual_reply = true)]
fn list_disputes(claim: Id, start: u32, limit: u32) -> Result<Vec<DisputeView>> {
    reply(with(|s| s.list_disputes(claim, start, limit)))
}

// ---------------------------------------------------------------------------------------------------------------
// Balances

#[ic_cdk::query(manual_reply = true)]
fn config() -> Config {
    reply(with(|s| s.config()))
}

#[ic_cdk::query(manual_reply = true)]
fn totals() -> Totals {
    reply(with(|s| s.totals()))
}

#[ic_cdk::query(manual_reply = true)]
fn audit() -> Totals {
    reply(with(|s| s.audit()))
}

#[ic_cdk::query(manual_reply = true)]
fn balance_of(owner: Principal) -> u64 {
    reply(with(|s| s.balance(&owner)))
}

/// Definite non-execution for rejects that guarantee the ledger did nothing; unknown otherwise.
fn classify_call_failure(e: &CallFailed) -> LedgerOutcome {
    let definite = match e {
        CallFailed::InsufficientLiquidCycleBalance(_) | CallFailed::CallPerformFailed(_) => true,
        CallFailed::CallRejected(r) => matches!(
            r.reject_code(),
            Ok(RejectCode::SysTransient
                | RejectCode::DestinationInvalid
                | RejectCode::CanisterReject
                | RejectCode::CanisterError)
        ),
    };
    if definite { LedgerOutcome::NotExecuted(format!("{e}")) } else { LedgerOutcome::Unknown(format!("{e}")) }
}

#[ic_cdk::update(manual_reply = true)]
async fn deposit(args: DepositArgs) -> Result<u64> {
    reply(deposit_and_credit(args).await)
}

async fn deposit_and_credit(args: DepositArgs) -> Result<u64> {
    let c = caller();
    with(|s| s.check_deposit(&c, &args))?;
    let arg = TransferFromArgs {
        spender_subaccount: None,
        from: Account { owner: c.id, subaccount: args.from_subaccount },
        to: Account { owner: ic_cdk::api::canister_self(), subaccount: None },
        amount: Nat::from(args.amount),
        fee: None,
        memo: None,
        created_at_time: Some(now()),
    };
    let ledger = with(|s| s.config().ledger);
    let reply = Call::unbounded_wait(ledger, "icrc2_transfer_from")
        .with_arg(arg)
        .await
        .map_err(|e| Error::Ledger { reason: format!("{e}") })?;
    match reply.candid::<core::result::Result<Nat, TransferFromError>>() {
        Ok(Ok(_block)) => with_mut(|s| s.credit_deposit(&c.id, args.amount)),
        Ok(Err(e)) => Err(Error::Ledger { reason: format!("{e:?}") }),
        Err(e) => {
            // Only a ledger that is not ICRC-2 answers this; nothing can be credited safely.
            ic_cdk::println!("deposit by {}: undecodable ledger reply: {e}", c.id);
            Err(Error::Ledger { reason: format!("undecodable ledger reply: {e}") })
        }
    }
}

/// Marks attempt `attempt` of withdrawal `id` unknown if its future is dropped before the ledger's answer was
/// recorded (the canister trapped while handling it: the journal must not stay "in flight" forever).
struct InFlight {
    id: Id,
    attempt: u32,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            let reason = "the canister trapped while handling the ledger's answer".to_string();
            let _ = with_mut(|s| s.withdrawal_outcome(self.id, self.attempt, LedgerOutcome::Unknown(reason)));
        }
    }
}

async fn send_withdrawal(w: Withdrawal) -> Withdrawal {
    let mut guard = InFlight { id: w.id, attempt: w.attempts, done: false };
    let ledger = with(|s| s.config().ledger);
    let reply = Call::unbounded_wait(ledger, "icrc1_transfer").with_arg(State::transfer_arg(&w)).await;
    let outcome = match reply {
        Ok(r) => match r.candid::<core::result::Result<Nat, TransferError>>() {
            Ok(answer) => classify_transfer(&answer, w.attempts),
            Err(e) => LedgerOutcome::Unknown(format!("undecodable ledger reply: {e}")),
        },
        Err(e) => classify_call_failure(&e),
    };
    guard.done = true;
    with_mut(|s| s.withdrawal_outcome(w.id, w.attempts, outcome)).unwrap_or(w)
}

#[ic_cdk::update(manual_reply = true)]
async fn withdraw(args: WithdrawArgs) -> Result<Withdrawal> {
    let r = match with_mut(|s| s.begin_withdrawal(&caller(), args, now())) {
        Ok(w) => Ok(send_withdrawal(w).await),
        Err(e) => Err(e),
    };
    reply(r)
}

#[ic_cdk::update(manual_reply = true)]
async fn retry_withdrawal(withdrawal: Id) -> Result<Withdrawal> {
    let r = match with_mut(|s| s.retry_withdrawal(&caller(), withdrawal, now())) {
        Ok(w) => Ok(send_withdrawal(w).await),
        Err(e) => Err(e),
    };
    reply(r)
}

#[ic_cdk::update(manual_reply = true)]
fn resolve_withdrawal(withdrawal: Id, block: Option<Nat>) -> Result<Withdrawal> {
    reply(with_mut(|s| s.resolve_withdrawal(&caller(), withdrawal, block)))
}

#[ic_cdk::query(manual_reply = true)]
fn get_withdrawal(withdrawal: Id) -> Result<Withdrawal> {
    reply(with(|s| s.withdrawal(withdrawal)))
}

#[ic_cdk::query(manual_reply = true)]
fn list_withdrawals(owner: Principal, start: Id, limit: u32) -> WithdrawalPage {
    reply(with(|s| s.list_withdrawals(owner, start, limit)))
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    /// The checked-in `verifier.did` is exactly the interface the code exports. To update it after an interface
    /// change: `UPDATE_DID=1 cargo test -p opml-verifier-canister --lib` (then review the diff).
    #[test]
    fn verifier_did_matches_the_code() {
        let code = super::__export_service();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/verifier.did");
        if std::env::var_os("UPDATE_DID").is_some() {
            std::fs::write(path, &code).unwrap();
        }
        let file = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            file == code,
            "verifier.did differs from the code's interface; run UPDATE_DID=1 cargo test -p opml-verifier-canister \
             --lib and review the diff.\n--- code ---\n{code}"
        );
    }
}
