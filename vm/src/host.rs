//! Host functions: the embedder's side of imports. One host call is one machine step.

use crate::memory::Memory;
use crate::trap::TrapCode;
use crate::value::Value;

/// Implements the functions a machine's host imports are bound to.
pub trait Host {
    /// Calls host function `id` (the id given to [`crate::Machine::alloc_host_func`]) with
    /// arguments typed by its signature; `memories` are all memories of the store, by address.
    /// Returns the results (which must match the signature, or the call traps with `HostError`),
    /// or a trap.
    fn call(&mut self, id: u32, args: &[Value], memories: &mut [Memory]) -> Result<Vec<Value>, TrapCode>;
}

/// A host with no functions: every call traps with [`TrapCode::HostError`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHost;

impl Host for NoHost {
    fn call(&mut self, _id: u32, _args: &[Value], _memories: &mut [Memory]) -> Result<Vec<Value>, TrapCode> {
        Err(TrapCode::HostError)
    }
}
