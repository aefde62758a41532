//! `opml-bisect`: the pure, deterministic rules of opml-ic's dispute game.
//!
//! A worker submits a [`Claim`] (program, input, output, final root, segment count and a Merkle commitment to
//! every segment-boundary root) with a stake. Any challenger may open a [`Dispute`] with a bond. The dispute is
//! an n-ary bisection in two phases over one interval whose lower root the challenger accepts and whose upper
//! root it disputes: first over segment boundaries (roots opened against the commitment), then over the steps of
//! the one disputed segment (linked to the boundaries by root equality), down to one instruction, which the
//! challenger proves with the VM's one-step verifier ([`StepVerifier`]). A chess [`Clock`] bounds each side;
//! every outcome is reached by a public call. Transitions take `&self` and return a new state plus balance
//! [`Effect`]s, so an error never changes anything. See `docs/protocol.md` for the protocol in full.
//!
//! # Example: a whole dispute on the toy VM
//!
//! ```
//! use opml_bisect::agent::{self, Trace};
//! use opml_bisect::toy::{ToyRun, ToyVm};
//! use opml_bisect::{ClaimState, FinalStatus, GameConfig, Hash, Outcome, Party, Role};
//!
//! let mut vm = ToyVm::new();
//! let program = vm.register(&[5, 3, 8]); // three segments of 5, 3 and 8 steps
//! let truth = ToyRun::new(&vm, program, Hash::ZERO);
//! let liar = truth.with_fault(2, 4); // a machine that goes wrong at step 4 of segment 2
//! let config = GameConfig {
//!     arity: 4, max_segments: 1 << 20, max_segment_steps: 1 << 30, clock_ns: 3_600_000_000_000,
//!     challenge_window_ns: 86_400_000_000_000, worker_stake: 1_000, challenger_bond: 100, burn_bps: 2_000,
//! };
//! let (worker, challenger) = (Party::new(b"worker").unwrap(), Party::new(b"watcher").unwrap());
//!
//! // The worker submits a wrong result; the canister applies `effects` (here: lock the stake).
//! let (claim, evidence, tree) = agent::make_claim(
//!     &liar, program, Hash::ZERO, liar.output(), FinalStatus::Halted, 3, liar.final_opening());
//! let mut state = ClaimState::submit(&config, worker.clone(), claim, &evidence, &vm, 0).unwrap().state;
//!
//! // A watcher re-executes, sees a different final root, and opens a dispute.
//! assert!(agent::should_challenge(&state.claim, &truth));
//! let (t, id) = state.open_dispute(challenger.clone(), 1).unwrap();
//! state = t.state;
//!
//! // Both play until the game ends (each `play` is one canister update call).
//! let mut now = 1;
//! while let Some(mover) = state.dispute(id).unwrap().mover() {
//!     now += 1_000_000_000;
//!     let d = state.dispute(id).unwrap();
//!     let (caller, mv) = match mover {
//!         Role::Worker => (&worker, agent::worker_move(d, &config, &liar, &tree).unwrap()),
//!         Role::Challenger => (&challenger, agent::challenger_move(d, &config, &truth).unwrap()),
//!     };
//!     state = state.play(id, caller, d.seq, &mv, &vm, now).unwrap().state;
//! }
//! assert!(matches!(state.dispute(id).unwrap().resolution.unwrap().outcome, Outcome::ChallengerWon(_)));
//! ```
//!
//! `no_std` + `alloc` (std only with the `candid` feature), no floats, no hash-map iteration, no clocks: it runs inside the verifier canister.

// `no_std` + `alloc`; with the `candid` feature the crate links std, because candid (and its derive's expansion)
// needs it.
#![cfg_attr(not(feature = "candid"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod agent;
pub mod bisection;
pub mod claim;
pub mod claim_state;
pub mod clock;
pub mod config;
pub mod dispute;
pub mod error;
pub mod hash;
pub mod merkle;
pub mod moves;
pub mod outcome;
pub mod party;
pub mod payout;
pub mod toy;
pub mod verifier;
#[cfg(feature = "vm")]
pub mod vm;

pub use bisection::{Bisection, rounds_needed, split_point, split_points};
pub use claim::{Claim, ClaimEvidence, FinalStatus};
pub use claim_state::{ClaimState, ClaimStatus, DisputeId, Transition};
pub use clock::Clock;
pub use config::GameConfig;
pub use dispute::{Context, Dispute, Phase};
pub use error::{ConfigField, Error};
pub use hash::Hash;
pub use merkle::{MerkleProof, MerkleTree};
pub use moves::{Move, MoveKind};
pub use outcome::{Outcome, Reason, Resolution};
pub use party::{MAX_PARTY_LEN, Party, Role};
pub use payout::{Effect, burn_share};
pub use verifier::{StepVerifier, VerifierError};
