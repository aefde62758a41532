//! opml-vm: the canonical WebAssembly semantics of opml-ic.
//!
//! A [`Module`] is validated against exactly WebAssembly 2.0 ([`module::FEATURES`]) and compiled
//! to a flat instruction list ([`instr::Op`]). A [`Machine`] is a store of instances whose complete
//! execution state is explicit data (pc, value stack, frames, globals, memories, tables, segment
//! drop flags, status); [`Machine::step`] executes exactly one instruction, and `Clone` is a cheap
//! snapshot (copy-on-write memory, shared code). Limits ([`Limits`]) are program semantics:
//! exceeding one traps, and a trap is a final state like a return.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod commit;
#[cfg(feature = "std")]
mod compile;
#[cfg(feature = "std")]
pub mod error;
pub mod exec;
#[cfg(feature = "fast")]
pub mod fast;
#[cfg(feature = "fast")]
mod fast_roots;
pub mod float;
#[cfg(feature = "std")]
pub mod guest;
pub mod hash;
#[cfg(feature = "std")]
pub mod host;
pub mod instr;
pub mod io;
pub mod limits;
#[cfg(feature = "std")]
mod live;
#[cfg(feature = "std")]
pub mod machine;
#[cfg(feature = "std")]
pub mod memory;
#[cfg(feature = "std")]
pub mod meter;
#[cfg(feature = "std")]
pub mod module;
pub mod num;
pub mod program;
pub mod proof;
#[cfg(feature = "std")]
pub mod prove;
pub mod root;
pub mod simd;
#[cfg(feature = "std")]
pub mod staged_commitment;
#[cfg(feature = "std")]
pub mod table;
#[cfg(feature = "fast")]
pub mod trace;
pub mod trap;
pub mod value;
pub mod verify;
#[cfg(feature = "std")]
mod wasm_encode;
#[cfg(feature = "fast")]
pub mod wasmi_compat;

#[cfg(feature = "std")]
pub use commit::StateHasher;
#[cfg(feature = "std")]
pub use error::{InstantiateError, InvokeError, ModuleError, StepError};
pub use hash::Hash;
#[cfg(feature = "std")]
pub use host::{Host, NoHost};
pub use limits::Limits;
#[cfg(feature = "std")]
pub use machine::{Extern, Frame, InstanceId, Machine, Status};
#[cfg(feature = "std")]
pub use memory::Memory;
#[cfg(feature = "std")]
pub use module::{ExternKind, ExternType, GlobalType, Import, MemoryType, Module, TableType};
pub use proof::{OneStepProof, ProofError};
#[cfg(feature = "std")]
pub use prove::prove_step;
pub use root::StateHeader;
#[cfg(feature = "std")]
pub use table::Table;
pub use trap::TrapCode;
pub use value::{FuncType, Slot, ValType, Value};
pub use verify::{verify_proof, verify_step};
