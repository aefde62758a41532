//! `counter`: the test canister of opml-devnet. Each method exercises one part of the System API that the
//! verifier canister relies on: update/query, caller, time, 64-bit stable memory, timers, inter-canister calls
//! to an ICRC-1/ICRC-2 ledger (with callbacks), traps (before and after an await), pre/post_upgrade.

use std::cell::RefCell;
use std::time::Duration;

use candid::{CandidType, Deserialize, Nat, Principal};
use ic_cdk::call::Call;
use ic_cdk::{init, post_upgrade, pre_upgrade, query, update};

#[derive(Default)]
struct State {
    counter: u64,
    ledger: Option<Principal>,
    timer_fired: u64,
    upgrades: u64,
    last_timer_time: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct Account {
    pub owner: Principal,
    pub subaccount: Option<serde_bytes::ByteBuf>,
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

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct TransferFromArgs {
    pub spender_subaccount: Option<serde_bytes::ByteBuf>,
    pub from: Account,
    pub to: Account,
    pub amount: Nat,
    pub fee: Option<Nat>,
    pub memo: Option<serde_bytes::ByteBuf>,
    pub created_at_time: Option<u64>,
}

/// The error variants of ICRC-1 `icrc1_transfer` and ICRC-2 `icrc2_transfer_from`, rendered as text by the
/// canister (so this test canister needs no full copy of the ledger's types).
#[derive(CandidType, Deserialize, Clone, Debug)]
pub enum LedgerError {
    BadFee { expected_fee: Nat },
    BadBurn { min_burn_amount: Nat },
    InsufficientFunds { balance: Nat },
    InsufficientAllowance { allowance: Nat },
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    Duplicate { duplicate_of: Nat },
    TemporarilyUnavailable,
    GenericError { error_code: Nat, message: String },
}

#[init]
fn init(ledger: Option<Principal>) {
    STATE.with_borrow_mut(|s| s.ledger = ledger);
}

#[pre_upgrade]
fn pre_upgrade() {
    // Layout of the upgrade record at the end of the first stable page: counter, timer_fired, upgrades, ledger.
    let (counter, fired, upgrades, ledger) = STATE.with_borrow(|s| (s.counter, s.timer_fired, s.upgrades, s.ledger));
    let mut rec = Vec::with_capacity(64);
    rec.extend_from_slice(&counter.to_le_bytes());
    rec.extend_from_slice(&fired.to_le_bytes());
    rec.extend_from_slice(&(upgrades + 1).to_le_bytes());
    let l = ledger.map(|p| p.as_slice().to_vec()).unwrap_or_default();
    rec.push(l.len() as u8);
    rec.extend_from_slice(&l);
    ensure_stable(UPGRADE_RECORD + rec.len() as u64);
    ic_cdk::stable::stable_write(UPGRADE_RECORD, &rec);
}

#[post_upgrade]
fn post_upgrade(ledger: Option<Principal>) {
    let mut rec = [0u8; 25 + 29];
    ic_cdk::stable::stable_read(UPGRADE_RECORD, &mut rec);
    let word = |i: usize| u64::from_le_bytes(rec[i * 8..i * 8 + 8].try_into().unwrap());
    let len = rec[24] as usize;
    let stored = (len > 0).then(|| Principal::from_slice(&rec[25..25 + len]));
    STATE.with_borrow_mut(|s| {
        s.counter = word(0);
        s.timer_fired = word(1);
        s.upgrades = word(2);
        s.ledger = ledger.or(stored);
    });
}

/// Offset in stable memory of the upgrade record (the first 64 KiB page is the user's).
const UPGRADE_RECORD: u64 = 60_000;

fn ensure_stable(end: u64) {
    let have = ic_cdk::stable::stable_size() * 65536;
    if end > have {
        let pages = (end - have).div_ceil(65536);
        ic_cdk::stable::stable_grow(pages).expect("stable memory grow failed");
    }
}

#[update]
fn inc() -> u64 {
    STATE.with_borrow_mut(|s| {
        s.counter += 1;
        s.counter
    })
}

#[update]
fn add(n: u64) -> u64 {
    STATE.with_borrow_mut(|s| {
        s.counter += n;
        s.counter
    })
}

#[query]
fn get() -> u64 {
    STATE.with_borrow(|s| s.counter)
}

/// A query that changes state: the change is discarded after the query (IC semantics).
#[query]
fn inc_in_query() -> u64 {
    inc()
}

/// Increments, then traps: the increment must be rolled back.
#[update]
fn inc_then_trap() -> u64 {
    inc();
    ic_cdk::trap("inc_then_trap: deliberate trap after the increment");
}

/// Increments and writes stable memory, then panics (a Rust panic is a trap on the IC).
#[update]
fn write_then_panic(offset: u64) {
    inc();
    ensure_stable(offset + 4);
    ic_cdk::stable::stable_write(offset, b"oops");
    panic!("write_then_panic: deliberate panic");
}

#[update(manual_reply = true)]
fn reject_me(msg: String) {
    ic_cdk::api::msg_reject(msg);
}

#[query]
fn whoami() -> Principal {
    ic_cdk::api::msg_caller()
}

#[update]
fn whoami_update() -> Principal {
    ic_cdk::api::msg_caller()
}

#[query]
fn self_id() -> Principal {
    ic_cdk::api::canister_self()
}

#[query]
fn now() -> u64 {
    ic_cdk::api::time()
}

#[update]
fn method_name() -> String {
    ic_cdk::api::msg_method_name()
}

#[query]
fn cycles() -> candid::Nat {
    Nat::from(ic_cdk::api::canister_cycle_balance())
}

#[update]
fn stable_write(offset: u64, data: serde_bytes::ByteBuf) -> u64 {
    ensure_stable(offset + data.len() as u64);
    ic_cdk::stable::stable_write(offset, &data);
    ic_cdk::stable::stable_size()
}

#[query]
fn stable_read(offset: u64, len: u64) -> serde_bytes::ByteBuf {
    let mut buf = vec![0u8; len as usize];
    ic_cdk::stable::stable_read(offset, &mut buf);
    serde_bytes::ByteBuf::from(buf)
}

#[query]
fn stable_size() -> u64 {
    ic_cdk::stable::stable_size()
}

#[query]
fn upgrades() -> u64 {
    STATE.with_borrow(|s| s.upgrades)
}

/// Schedules a one-shot timer `secs` seconds from now that increments `timer_fired`.
#[update]
fn set_timer(secs: u64) {
    ic_cdk_timers::set_timer(Duration::from_secs(secs), async {
        STATE.with_borrow_mut(|s| {
            s.timer_fired += 1;
            s.last_timer_time = ic_cdk::api::time();
        });
    });
}

#[query]
fn timer_fired() -> u64 {
    STATE.with_borrow(|s| s.timer_fired)
}

/// Instructions spent so far in this message (the performance counter), after a loop of `n` iterations.
#[query]
fn burn(n: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..n {
        x = core::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    core::hint::black_box(x);
    ic_cdk::api::performance_counter(0)
}

/// An update that loops `n` times (for instruction limits) and increments the counter.
#[update]
fn burn_update(n: u64) -> u64 {
    burn(n);
    inc()
}

/// A reply of `n` bytes (for the reply size limit).
#[query]
fn blob(n: u64) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(vec![7u8; n as usize])
}

fn ledger() -> Principal {
    STATE.with_borrow(|s| s.ledger).unwrap_or_else(|| ic_cdk::trap("no ledger configured"))
}

#[update]
async fn ledger_balance(owner: Principal) -> Nat {
    let account = Account { owner, subaccount: None };
    let res = Call::unbounded_wait(ledger(), "icrc1_balance_of")
        .with_arg(account)
        .await
        .unwrap_or_else(|e| ic_cdk::trap(format!("icrc1_balance_of failed: {e}")));
    res.candid::<Nat>().unwrap_or_else(|e| ic_cdk::trap(format!("bad reply: {e}")))
}

/// Transfers `amount` from this canister's account to `to`: the ledger's answer, with the counter incremented
/// before the call and again in the callback (both increments persist).
#[update]
async fn pay(to: Principal, amount: Nat) -> Result<Nat, LedgerError> {
    inc();
    let arg = TransferArg {
        from_subaccount: None,
        to: Account { owner: to, subaccount: None },
        amount,
        fee: None,
        memo: None,
        created_at_time: None,
    };
    let res = Call::unbounded_wait(ledger(), "icrc1_transfer")
        .with_arg(arg)
        .await
        .unwrap_or_else(|e| ic_cdk::trap(format!("icrc1_transfer failed: {e}")));
    inc();
    res.candid::<Result<Nat, LedgerError>>().unwrap_or_else(|e| ic_cdk::trap(format!("bad reply: {e}")))
}

/// Pulls `amount` from `from` into this canister's account with ICRC-2 `transfer_from` (after the owner approved
/// this canister).
#[update]
async fn pull(from: Principal, amount: Nat) -> Result<Nat, LedgerError> {
    let arg = TransferFromArgs {
        spender_subaccount: None,
        from: Account { owner: from, subaccount: None },
        to: Account { owner: ic_cdk::api::canister_self(), subaccount: None },
        amount,
        fee: None,
        memo: None,
        created_at_time: None,
    };
    let res = Call::unbounded_wait(ledger(), "icrc2_transfer_from")
        .with_arg(arg)
        .await
        .unwrap_or_else(|e| ic_cdk::trap(format!("icrc2_transfer_from failed: {e}")));
    res.candid::<Result<Nat, LedgerError>>().unwrap_or_else(|e| ic_cdk::trap(format!("bad reply: {e}")))
}

/// Increments, calls the ledger, increments again, then traps in the callback: on the IC the first increment
/// (committed when the call was made) stays and the second is rolled back.
#[update]
async fn trap_after_call() -> u64 {
    inc();
    let _ = Call::unbounded_wait(ledger(), "icrc1_fee").await;
    inc();
    ic_cdk::trap("trap_after_call: deliberate trap in the callback");
}

/// Calls a method of this canister (an inter-canister call to itself).
#[update]
async fn self_call_inc() -> u64 {
    let res = Call::unbounded_wait(ic_cdk::api::canister_self(), "inc")
        .await
        .unwrap_or_else(|e| ic_cdk::trap(format!("self call failed: {e}")));
    res.candid::<u64>().unwrap_or_else(|e| ic_cdk::trap(format!("bad reply: {e}")))
}

/// Calls a method that does not exist on the ledger and reports the reject code and message.
#[update]
async fn call_missing() -> (u32, String) {
    match Call::unbounded_wait(ledger(), "no_such_method").await {
        Ok(_) => ic_cdk::trap("expected a reject"),
        Err(ic_cdk::call::CallFailed::CallRejected(r)) => (r.raw_reject_code(), r.reject_message().to_string()),
        Err(e) => (0, e.to_string()),
    }
}

ic_cdk::export_candid!();
