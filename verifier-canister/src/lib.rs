//! `opml-verifier-canister`: the verifier canister of opml-ic.
//!
//! A thin IC shell ([`shell`]: Candid decoding, caller and time, ledger calls, timers) over a pure core
//! ([`core::Core`]: programs, tasks, claims, disputes, balances and withdrawals in stable maps, every transition
//! synchronous, every error a typed [`Error`] with no state change). The dispute game is `opml-bisect`'s rules;
//! the one-step verifier and program commitments are `opml-vm`'s, reached only through [`vm_adapter`].
//! See the README section "Deploy to the IC" and `verifier.did` for the interface.

extern crate alloc;

pub mod codec;
pub mod core;
pub mod error;
pub mod ledger;
pub mod reply;
pub mod shell;
pub mod storage;
pub mod types;
pub mod vm;
pub mod vm_adapter;

pub use error::Error;
