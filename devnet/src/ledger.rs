//! The built-in ICRC-1/ICRC-2 ledger: a native implementation behind the standard Candid interface
//! (`icrc1_*`, `icrc2_*`, `icrc10_supported_standards`), with the standards' error variants, deduplication by
//! `created_at_time`, the minting account (transfers from it mint, to it burn) and a development faucet
//! (`devnet_mint`, which exists only on the devnet).

use std::collections::BTreeMap;

use candid::{CandidType, Decode, Deserialize, Encode, Int, Nat, Principal};
use sha2::{Digest, Sha256};

/// Transactions older than this (plus the drift) are `TooOld`; deduplication covers this window.
pub const TX_WINDOW_NANOS: u64 = 24 * 3600 * 1_000_000_000;
pub const PERMITTED_DRIFT_NANOS: u64 = 2 * 60 * 1_000_000_000;
const MAX_MEMO_BYTES: usize = 32;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Account {
    pub owner: Principal,
    pub subaccount: Option<serde_bytes::ByteBuf>,
}

impl Account {
    pub fn of(owner: Principal) -> Account {
        Account { owner, subaccount: None }
    }

    /// The canonical form: the default subaccount (32 zero bytes) is `None`.
    fn normalized(&self) -> Result<Account, String> {
        match &self.subaccount {
            None => Ok(Account::of(self.owner)),
            Some(s) if s.len() != 32 => Err(format!("invalid subaccount length {} (must be 32)", s.len())),
            Some(s) if s.iter().all(|b| *b == 0) => Ok(Account::of(self.owner)),
            Some(_) => Ok(self.clone()),
        }
    }
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

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    BadFee { expected_fee: Nat },
    BadBurn { min_burn_amount: Nat },
    InsufficientFunds { balance: Nat },
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

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ApproveError {
    BadFee { expected_fee: Nat },
    InsufficientFunds { balance: Nat },
    AllowanceChanged { current_allowance: Nat },
    Expired { ledger_time: u64 },
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    Duplicate { duplicate_of: Nat },
    TemporarilyUnavailable,
    GenericError { error_code: Nat, message: String },
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

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TransferFromError {
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

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct AllowanceArgs {
    pub account: Account,
    pub spender: Account,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub allowance: Nat,
    pub expires_at: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum MetadataValue {
    Nat(Nat),
    Int(Int),
    Text(String),
    Blob(serde_bytes::ByteBuf),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StandardRecord {
    pub name: String,
    pub url: String,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct MintArgs {
    pub to: Account,
    pub amount: Nat,
}

/// The ledger's parameters.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    pub name: String,
    pub symbol: String,
    pub decimals: u8,
    pub fee: u128,
    /// Transfers from this account mint, transfers to it burn.
    pub minting_account: Account,
    /// Balances at genesis.
    pub initial_balances: Vec<(Account, u128)>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            name: "opml devnet token".into(),
            symbol: "DEV".into(),
            decimals: 8,
            fee: 10_000,
            // A reserved principal that no one can sign for.
            minting_account: Account::of(Principal::from_slice(b"opml-devnet-minter")),
            initial_balances: Vec::new(),
        }
    }
}

/// The ledger's answer to a call: a Candid reply, or a reject (as the reference ledger traps).
pub type LedgerResult = Result<Vec<u8>, String>;

#[derive(Clone, Debug)]
struct AllowanceEntry {
    amount: u128,
    expires_at: Option<u64>,
}

/// The ledger state.
pub struct Ledger {
    config: LedgerConfig,
    balances: BTreeMap<Account, u128>,
    allowances: BTreeMap<(Account, Account), AllowanceEntry>,
    total_supply: u128,
    blocks: u64,
    /// Deduplication: transaction hash -> (block index, created_at_time).
    dedup: BTreeMap<[u8; 32], (u64, u64)>,
}

/// Whether a method is a query method of the ledger (update methods are the others it knows).
pub fn is_query(method: &str) -> Option<bool> {
    match method {
        "icrc1_name"
        | "icrc1_symbol"
        | "icrc1_decimals"
        | "icrc1_fee"
        | "icrc1_metadata"
        | "icrc1_total_supply"
        | "icrc1_minting_account"
        | "icrc1_balance_of"
        | "icrc1_supported_standards"
        | "icrc2_allowance"
        | "icrc10_supported_standards" => Some(true),
        "icrc1_transfer" | "icrc2_approve" | "icrc2_transfer_from" | "devnet_mint" => Some(false),
        _ => None,
    }
}

fn nat(v: u128) -> Nat {
    Nat::from(v)
}

fn to_u128(n: &Nat) -> Option<u128> {
    u128::try_from(n.0.clone()).ok()
}

enum Kind {
    Mint,
    Burn,
    Transfer,
}

impl Ledger {
    pub fn new(config: LedgerConfig) -> Ledger {
        let mut l = Ledger {
            config,
            balances: BTreeMap::new(),
            allowances: BTreeMap::new(),
            total_supply: 0,
            blocks: 0,
            dedup: BTreeMap::new(),
        };
        for (acc, amount) in l.config.initial_balances.clone() {
            let acc = acc.normalized().expect("valid initial account");
            l.credit(&acc, amount);
            l.blocks += 1;
        }
        l
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    pub fn balance(&self, account: &Account) -> u128 {
        account.normalized().ok().and_then(|a| self.balances.get(&a).copied()).unwrap_or(0)
    }

    pub fn total_supply(&self) -> u128 {
        self.total_supply
    }

    fn credit(&mut self, acc: &Account, amount: u128) {
        *self.balances.entry(acc.clone()).or_insert(0) += amount;
        self.total_supply += amount;
    }

    fn debit(&mut self, acc: &Account, amount: u128) {
        let b = self.balances.get_mut(acc).expect("checked balance");
        *b -= amount;
        if *b == 0 {
            self.balances.remove(acc);
        }
        self.total_supply -= amount;
    }

    /// Mints `amount` to `to` (the faucet). Returns the block index.
    pub fn mint(&mut self, to: &Account, amount: u128) -> Result<u64, String> {
        let to = to.normalized()?;
        if to == self.config.minting_account {
            return Err("cannot mint to the minting account".into());
        }
        if self.total_supply.checked_add(amount).is_none() {
            return Err("minting this amount would overflow the total supply".into());
        }
        self.credit(&to, amount);
        self.blocks += 1;
        Ok(self.blocks - 1)
    }

    /// Handles one call. `now` is the devnet's time in nanoseconds.
    pub fn call(&mut self, caller: Principal, method: &str, arg: &[u8], now: u64) -> LedgerResult {
        let bad = |e: candid::Error| format!("failed to decode the argument of {method}: {e}");
        match method {
            "icrc1_name" => Ok(Encode!(&self.config.name).expect("encode")),
            "icrc1_symbol" => Ok(Encode!(&self.config.symbol).expect("encode")),
            "icrc1_decimals" => Ok(Encode!(&self.config.decimals).expect("encode")),
            "icrc1_fee" => Ok(Encode!(&nat(self.config.fee)).expect("encode")),
            "icrc1_total_supply" => Ok(Encode!(&nat(self.total_supply)).expect("encode")),
            "icrc1_minting_account" => Ok(Encode!(&Some(self.config.minting_account.clone())).expect("encode")),
            "icrc1_metadata" => {
                let md: Vec<(String, MetadataValue)> = vec![
                    ("icrc1:name".into(), MetadataValue::Text(self.config.name.clone())),
                    ("icrc1:symbol".into(), MetadataValue::Text(self.config.symbol.clone())),
                    ("icrc1:decimals".into(), MetadataValue::Nat(Nat::from(self.config.decimals))),
                    ("icrc1:fee".into(), MetadataValue::Nat(nat(self.config.fee))),
                    ("icrc1:max_memo_length".into(), MetadataValue::Nat(Nat::from(MAX_MEMO_BYTES))),
                ];
                Ok(Encode!(&md).expect("encode"))
            }
            "icrc1_supported_standards" | "icrc10_supported_standards" => {
                let s = vec![
                    StandardRecord { name: "ICRC-1".into(), url: "https://github.com/dfinity/ICRC-1".into() },
                    StandardRecord {
                        name: "ICRC-2".into(),
                        url: "https://github.com/dfinity/ICRC-1/tree/main/standards/ICRC-2".into(),
                    },
                    StandardRecord {
                        name: "ICRC-10".into(),
                        url: "https://github.com/dfinity/ICRC/tree/main/ICRCs/ICRC-10".into(),
                    },
                ];
                Ok(Encode!(&s).expect("encode"))
            }
            "icrc1_balance_of" => {
                let acc = Decode!(arg, Account).map_err(bad)?;
                let acc = acc.normalized()?;
                Ok(Encode!(&nat(self.balance(&acc))).expect("encode"))
            }
            "icrc2_allowance" => {
                let a = Decode!(arg, AllowanceArgs).map_err(bad)?;
                let key = (a.account.normalized()?, a.spender.normalized()?);
                let res = match self.allowances.get(&key) {
                    Some(e) if e.expires_at.is_none_or(|t| t > now) => {
                        Allowance { allowance: nat(e.amount), expires_at: e.expires_at }
                    }
                    _ => Allowance { allowance: nat(0), expires_at: None },
                };
                Ok(Encode!(&res).expect("encode"))
            }
            "icrc1_transfer" => {
                let a = Decode!(arg, TransferArg).map_err(bad)?;
                let res = self.transfer(caller, a, now)?;
                Ok(Encode!(&res).expect("encode"))
            }
            "icrc2_approve" => {
                let a = Decode!(arg, ApproveArgs).map_err(bad)?;
                let res = self.approve(caller, a, now)?;
                Ok(Encode!(&res).expect("encode"))
            }
            "icrc2_transfer_from" => {
                let a = Decode!(arg, TransferFromArgs).map_err(bad)?;
                let res = self.transfer_from(caller, a, now)?;
                Ok(Encode!(&res).expect("encode"))
            }
            "devnet_mint" => {
                let a = Decode!(arg, MintArgs).map_err(bad)?;
                let amount = to_u128(&a.amount).ok_or("amount too large")?;
                let res: Result<Nat, TransferError> = self
                    .mint(&a.to, amount)
                    .map(Nat::from)
                    .map_err(|m| TransferError::GenericError { error_code: Nat::from(1u8), message: m });
                Ok(Encode!(&res).expect("encode"))
            }
            other => Err(format!("the ledger has no method '{other}'")),
        }
    }

    /// Checks `created_at_time` and deduplication. `Ok(None)`: go ahead. `Err(kind)`: 0 too old, 1 future,
    /// 2 duplicate (with the block).
    fn check_time(&self, created_at_time: Option<u64>, hash: &[u8; 32], now: u64) -> Result<(), (u8, u64)> {
        let Some(t) = created_at_time else { return Ok(()) };
        if t.saturating_add(TX_WINDOW_NANOS + PERMITTED_DRIFT_NANOS) < now {
            return Err((0, 0));
        }
        if t > now.saturating_add(PERMITTED_DRIFT_NANOS) {
            return Err((1, 0));
        }
        if let Some((block, _)) = self.dedup.get(hash) {
            return Err((2, *block));
        }
        Ok(())
    }

    fn record(&mut self, created_at_time: Option<u64>, hash: [u8; 32], now: u64) -> u64 {
        let block = self.blocks;
        self.blocks += 1;
        if let Some(t) = created_at_time {
            self.dedup.insert(hash, (block, t));
        }
        // Forget deduplication entries outside the window.
        let horizon = now.saturating_sub(TX_WINDOW_NANOS + PERMITTED_DRIFT_NANOS);
        self.dedup.retain(|_, (_, t)| *t >= horizon);
        block
    }

    fn tx_hash(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.finalize().into()
    }

    fn check_memo(memo: &Option<serde_bytes::ByteBuf>) -> Result<(), String> {
        match memo {
            Some(m) if m.len() > MAX_MEMO_BYTES => {
                Err(format!("the memo field size ({} bytes) exceeds the maximum of {MAX_MEMO_BYTES}", m.len()))
            }
            _ => Ok(()),
        }
    }

    fn transfer(&mut self, caller: Principal, a: TransferArg, now: u64) -> Result<Result<Nat, TransferError>, String> {
        Self::check_memo(&a.memo)?;
        let from = Account { owner: caller, subaccount: a.from_subaccount.clone() }.normalized()?;
        let to = a.to.normalized()?;
        let amount = to_u128(&a.amount).ok_or("amount too large")?;
        let fee = match &a.fee {
            Some(f) => Some(to_u128(f).ok_or("fee too large")?),
            None => None,
        };
        let minting = self.config.minting_account.clone();
        let kind = if from == minting {
            Kind::Mint
        } else if to == minting {
            Kind::Burn
        } else {
            Kind::Transfer
        };
        let hash = Self::tx_hash(&[
            b"transfer",
            &candid::encode_one(&from).expect("encode"),
            &candid::encode_one(&to).expect("encode"),
            &amount.to_le_bytes(),
            &fee.map(|f| f.to_le_bytes().to_vec()).unwrap_or_default(),
            a.memo.as_ref().map(|m| m.as_slice()).unwrap_or(&[]),
            &a.created_at_time.unwrap_or(0).to_le_bytes(),
        ]);
        match kind {
            Kind::Mint | Kind::Burn => {
                if fee.is_some_and(|f| f != 0) {
                    return Ok(Err(TransferError::BadFee { expected_fee: nat(0) }));
                }
            }
            Kind::Transfer => {
                if fee.is_some_and(|f| f != self.config.fee) {
                    return Ok(Err(TransferError::BadFee { expected_fee: nat(self.config.fee) }));
                }
            }
        }
        if let Err((k, block)) = self.check_time(a.created_at_time, &hash, now) {
            return Ok(Err(match k {
                0 => TransferError::TooOld,
                1 => TransferError::CreatedInFuture { ledger_time: now },
                _ => TransferError::Duplicate { duplicate_of: Nat::from(block) },
            }));
        }
        match kind {
            Kind::Mint => self.credit(&to, amount),
            Kind::Burn => {
                if amount < self.config.fee {
                    return Ok(Err(TransferError::BadBurn { min_burn_amount: nat(self.config.fee) }));
                }
                let balance = self.balance(&from);
                if balance < amount {
                    return Ok(Err(TransferError::InsufficientFunds { balance: nat(balance) }));
                }
                self.debit(&from, amount);
            }
            Kind::Transfer => {
                let balance = self.balance(&from);
                let total = amount.checked_add(self.config.fee).ok_or("amount too large")?;
                if balance < total {
                    return Ok(Err(TransferError::InsufficientFunds { balance: nat(balance) }));
                }
                self.debit(&from, total);
                self.credit(&to, amount);
            }
        }
        Ok(Ok(Nat::from(self.record(a.created_at_time, hash, now))))
    }

    fn approve(&mut self, caller: Principal, a: ApproveArgs, now: u64) -> Result<Result<Nat, ApproveError>, String> {
        Self::check_memo(&a.memo)?;
        let from = Account { owner: caller, subaccount: a.from_subaccount.clone() }.normalized()?;
        let spender = a.spender.normalized()?;
        if from.owner == spender.owner {
            return Err("self approval is not allowed".into());
        }
        if from == self.config.minting_account {
            return Err("the minting account cannot delegate mints".into());
        }
        let amount = to_u128(&a.amount).unwrap_or(u128::MAX);
        if let Some(f) = &a.fee
            && to_u128(f) != Some(self.config.fee)
        {
            return Ok(Err(ApproveError::BadFee { expected_fee: nat(self.config.fee) }));
        }
        let hash = Self::tx_hash(&[
            b"approve",
            &candid::encode_one(&from).expect("encode"),
            &candid::encode_one(&spender).expect("encode"),
            &amount.to_le_bytes(),
            &a.expected_allowance.as_ref().map(|n| n.0.to_bytes_le()).unwrap_or_default(),
            &a.expires_at.unwrap_or(0).to_le_bytes(),
            &a.fee.as_ref().map(|n| n.0.to_bytes_le()).unwrap_or_default(),
            a.memo.as_ref().map(|m| m.as_slice()).unwrap_or(&[]),
            &a.created_at_time.unwrap_or(0).to_le_bytes(),
        ]);
        if let Err((k, block)) = self.check_time(a.created_at_time, &hash, now) {
            return Ok(Err(match k {
                0 => ApproveError::TooOld,
                1 => ApproveError::CreatedInFuture { ledger_time: now },
                _ => ApproveError::Duplicate { duplicate_of: Nat::from(block) },
            }));
        }
        if let Some(t) = a.expires_at
            && t <= now
        {
            return Ok(Err(ApproveError::Expired { ledger_time: now }));
        }
        let key = (from.clone(), spender);
        let current = match self.allowances.get(&key) {
            Some(e) if e.expires_at.is_none_or(|t| t > now) => e.amount,
            _ => 0,
        };
        if let Some(expected) = &a.expected_allowance
            && to_u128(expected) != Some(current)
        {
            return Ok(Err(ApproveError::AllowanceChanged { current_allowance: nat(current) }));
        }
        let balance = self.balance(&from);
        if balance < self.config.fee {
            return Ok(Err(ApproveError::InsufficientFunds { balance: nat(balance) }));
        }
        self.debit(&from, self.config.fee);
        if amount == 0 {
            self.allowances.remove(&key);
        } else {
            self.allowances.insert(key, AllowanceEntry { amount, expires_at: a.expires_at });
        }
        Ok(Ok(Nat::from(self.record(a.created_at_time, hash, now))))
    }

    fn transfer_from(
        &mut self,
        caller: Principal,
        a: TransferFromArgs,
        now: u64,
    ) -> Result<Result<Nat, TransferFromError>, String> {
        Self::check_memo(&a.memo)?;
        let spender = Account { owner: caller, subaccount: a.spender_subaccount.clone() }.normalized()?;
        let from = a.from.normalized()?;
        let to = a.to.normalized()?;
        let amount = to_u128(&a.amount).ok_or("amount too large")?;
        let minting = self.config.minting_account.clone();
        if from == minting {
            return Ok(Err(TransferFromError::GenericError {
                error_code: Nat::from(1u8),
                message: "the minting account cannot delegate mints".into(),
            }));
        }
        let burn = to == minting;
        let fee = if burn { 0 } else { self.config.fee };
        if let Some(f) = &a.fee
            && to_u128(f) != Some(fee)
        {
            return Ok(Err(TransferFromError::BadFee { expected_fee: nat(fee) }));
        }
        let hash = Self::tx_hash(&[
            b"transfer_from",
            &candid::encode_one(&spender).expect("encode"),
            &candid::encode_one(&from).expect("encode"),
            &candid::encode_one(&to).expect("encode"),
            &amount.to_le_bytes(),
            &a.fee.as_ref().map(|n| n.0.to_bytes_le()).unwrap_or_default(),
            a.memo.as_ref().map(|m| m.as_slice()).unwrap_or(&[]),
            &a.created_at_time.unwrap_or(0).to_le_bytes(),
        ]);
        if let Err((k, block)) = self.check_time(a.created_at_time, &hash, now) {
            return Ok(Err(match k {
                0 => TransferFromError::TooOld,
                1 => TransferFromError::CreatedInFuture { ledger_time: now },
                _ => TransferFromError::Duplicate { duplicate_of: Nat::from(block) },
            }));
        }
        if burn && amount < self.config.fee {
            return Ok(Err(TransferFromError::BadBurn { min_burn_amount: nat(self.config.fee) }));
        }
        let total = amount.checked_add(fee).ok_or("amount too large")?;
        let key = (from.clone(), spender.clone());
        if spender != from {
            let allowance = match self.allowances.get(&key) {
                Some(e) if e.expires_at.is_none_or(|t| t > now) => e.amount,
                _ => 0,
            };
            if allowance < total {
                return Ok(Err(TransferFromError::InsufficientAllowance { allowance: nat(allowance) }));
            }
        }
        let balance = self.balance(&from);
        if balance < total {
            return Ok(Err(TransferFromError::InsufficientFunds { balance: nat(balance) }));
        }
        if spender != from {
            let e = self.allowances.get_mut(&key).expect("checked allowance");
            e.amount -= total;
            if e.amount == 0 {
                self.allowances.remove(&key);
            }
        }
        self.debit(&from, total);
        if !burn {
            self.credit(&to, amount);
        }
        Ok(Ok(Nat::from(self.record(a.created_at_time, hash, now))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n; 29])
    }

    fn call<R: for<'de> Deserialize<'de> + CandidType>(l: &mut Ledger, who: Principal, m: &str, arg: Vec<u8>) -> R {
        let out = l.call(who, m, &arg, 1_000_000_000_000).unwrap();
        Decode!(&out, R).unwrap()
    }

    #[test]
    fn transfer_approve_transfer_from_and_errors() {
        let mut l = Ledger::new(LedgerConfig::default());
        l.mint(&Account::of(p(1)), 1_000_000).unwrap();
        let t = |to: Principal, amount: u128, fee: Option<u128>, created: Option<u64>| {
            Encode!(&TransferArg {
                from_subaccount: None,
                to: Account::of(to),
                amount: nat(amount),
                fee: fee.map(nat),
                memo: None,
                created_at_time: created,
            })
            .unwrap()
        };
        let r: Result<Nat, TransferError> = call(&mut l, p(1), "icrc1_transfer", t(p(2), 100, None, None));
        assert!(r.is_ok());
        assert_eq!(l.balance(&Account::of(p(1))), 1_000_000 - 100 - 10_000);
        let r: Result<Nat, TransferError> = call(&mut l, p(1), "icrc1_transfer", t(p(2), 100, Some(1), None));
        assert_eq!(r, Err(TransferError::BadFee { expected_fee: nat(10_000) }));
        let r: Result<Nat, TransferError> = call(&mut l, p(2), "icrc1_transfer", t(p(3), 100, None, None));
        assert_eq!(r, Err(TransferError::InsufficientFunds { balance: nat(100) }));
        let now = 1_000_000_000_000u64;
        let first: Result<Nat, TransferError> = call(&mut l, p(1), "icrc1_transfer", t(p(2), 5, None, Some(now)));
        let dup: Result<Nat, TransferError> = call(&mut l, p(1), "icrc1_transfer", t(p(2), 5, None, Some(now)));
        assert_eq!(dup, Err(TransferError::Duplicate { duplicate_of: first.unwrap() }));
        let r: Result<Nat, TransferError> =
            call(&mut l, p(1), "icrc1_transfer", t(p(2), 5, None, Some(now + 3 * 60 * 1_000_000_000)));
        assert_eq!(r, Err(TransferError::CreatedInFuture { ledger_time: now }));

        // ICRC-2.
        let approve = ApproveArgs {
            from_subaccount: None,
            spender: Account::of(p(9)),
            amount: nat(50_000),
            expected_allowance: None,
            expires_at: None,
            fee: None,
            memo: None,
            created_at_time: None,
        };
        let r: Result<Nat, ApproveError> = call(&mut l, p(1), "icrc2_approve", Encode!(&approve).unwrap());
        assert!(r.is_ok());
        let changed = ApproveArgs { expected_allowance: Some(nat(1)), ..approve.clone() };
        let r: Result<Nat, ApproveError> = call(&mut l, p(1), "icrc2_approve", Encode!(&changed).unwrap());
        assert_eq!(r, Err(ApproveError::AllowanceChanged { current_allowance: nat(50_000) }));
        let tf = |amount: u128| {
            Encode!(&TransferFromArgs {
                spender_subaccount: None,
                from: Account::of(p(1)),
                to: Account::of(p(9)),
                amount: nat(amount),
                fee: None,
                memo: None,
                created_at_time: None,
            })
            .unwrap()
        };
        let r: Result<Nat, TransferFromError> = call(&mut l, p(9), "icrc2_transfer_from", tf(40_001));
        assert_eq!(r, Err(TransferFromError::InsufficientAllowance { allowance: nat(50_000) }));
        let r: Result<Nat, TransferFromError> = call(&mut l, p(9), "icrc2_transfer_from", tf(40_000));
        assert!(r.is_ok());
        let a: Allowance = call(
            &mut l,
            p(9),
            "icrc2_allowance",
            Encode!(&AllowanceArgs { account: Account::of(p(1)), spender: Account::of(p(9)) }).unwrap(),
        );
        assert_eq!(a.allowance, nat(0));
        assert_eq!(l.balance(&Account::of(p(9))), 40_000);
        assert!(l.call(p(1), "nope", &[], 0).is_err());
        assert!(l.call(p(1), "icrc1_transfer", b"garbage", 0).is_err());
    }
}
