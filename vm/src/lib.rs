//! opml-vm: the canonical WebAssembly semantics of opml-ic.
//!
//! A [`Module`] is validated against exactly WebAssembly 2.0 ([`module::FEATURES`]) and compiled
//! to a flat instruction list ([`instr::Op`]). A [`Machine`] is a store of instances whose complete
//! execution state is explicit data (pc, value stack, frames, globals, memories, tables, segment
//! drop flags, status); [`Machine::step`] executes exactly one instruction, and `Clone` is a cheap
//! snapshot (copy-on-write memory, shared code). Limits ([`Limits`]) are program semantics:
//! exceeding one traps, and a trap is a final state like a return.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod commit;
mod compile;
pub mod error;
pub mod exec;
pub mod hash;
pub mod host;
pub mod instr;
pub mod limits;
mod live;
pub mod machine;
pub mod memory;
pub mod module;
pub mod num;
pub mod program;
pub mod proof;
pub mod prove;
pub mod root;
pub mod simd;
pub mod table;
pub mod trap;
pub mod value;
pub mod verify;

pub use commit::StateHasher;
pub use error::{InstantiateError, InvokeError, ModuleError, StepError};
pub use host::{Host, NoHost};
pub use limits::Limits;
pub use machine::{Extern, Frame, InstanceId, Machine, Status};
pub use memory::Memory;
pub use module::{ExternKind, ExternType, GlobalType, Import, MemoryType, Module, TableType};
pub use table::Table;
pub use trap::TrapCode;
pub use hash::Hash;
pub use root::StateHeader;
pub use proof::{OneStepProof, ProofError};
pub use prove::prove_step;
pub use verify::{verify_proof, verify_step};
pub use value::{FuncType, Slot, ValType, Value};
