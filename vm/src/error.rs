//! Errors of loading, instantiating and running modules.

use crate::trap::TrapCode;

/// A module was rejected before any execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// Malformed binary, a failed validation rule, or a feature outside WebAssembly 2.0. The
    /// message comes from the validator and names the feature or rule; `offset` is the byte offset.
    #[error("invalid module at byte offset {offset:#x}: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// Byte offset into the module.
        offset: usize,
    },
    /// Valid WebAssembly that this machine does not accept (e.g. a memory or table index type,
    /// or a declared size above the machine's limits).
    #[error("unsupported module at byte offset {offset:#x}: {message}")]
    Unsupported {
        /// What is unsupported.
        message: String,
        /// Byte offset into the module.
        offset: usize,
    },
}

impl From<wasmparser::BinaryReaderError> for ModuleError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        ModuleError::Invalid { message: e.message().to_string(), offset: e.offset() }
    }
}

/// Instantiation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstantiateError {
    /// The provided imports do not match what the module declares.
    #[error("unlinkable: {0}")]
    Unlinkable(String),
    /// Initialisation (an active segment out of bounds) or the start function trapped. Effects of
    /// segments applied before the trap remain, as the spec requires.
    #[error("instantiation trapped: {0}")]
    Trap(TrapCode),
    /// The start function did not finish within the step budget given to instantiation.
    #[error("start function exceeded {0} steps")]
    StartBudget(u64),
}

/// An invocation could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// No function with that address.
    #[error("no function at address {0}")]
    UnknownFunction(u32),
    /// The arguments do not match the function's parameters.
    #[error("argument mismatch: expected {expected:?}, got {got:?}")]
    ArgumentMismatch {
        /// Parameter types of the function.
        expected: Vec<crate::value::ValType>,
        /// Types of the given arguments.
        got: Vec<crate::value::ValType>,
    },
    /// The machine is in the middle of an execution.
    #[error("machine is running; finish or discard the current execution first")]
    Busy,
    /// The call would exceed the value stack limit.
    #[error("arguments exceed the value stack limit")]
    StackLimit,
}

/// A step was requested that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The machine is in a final state (returned or trapped) or was never invoked.
    #[error("machine is not running (status: {0:?})")]
    NotRunning(crate::machine::Status),
}
