//! Traps: the ways a WebAssembly execution ends abnormally. A trap is a final machine state.

use core::fmt;

/// Why an execution trapped. The discriminants are stable: they are part of the state encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TrapCode {
    /// `unreachable` was executed.
    Unreachable = 1,
    /// A memory access outside the memory's current size.
    MemoryOutOfBounds = 2,
    /// A table access outside the table's current size (`table.get/set/fill/copy/init`).
    TableOutOfBounds = 3,
    /// `call_indirect` with an index outside the table.
    UndefinedElement = 4,
    /// `call_indirect` to a null table entry.
    UninitializedElement = 5,
    /// `call_indirect` to a function of another type.
    IndirectCallTypeMismatch = 6,
    /// Integer division or remainder by zero.
    IntegerDivideByZero = 7,
    /// Signed integer overflow in division, or a float-to-int truncation out of range.
    IntegerOverflow = 8,
    /// Float-to-int truncation of a NaN.
    InvalidConversionToInteger = 9,
    /// The call depth limit was reached.
    CallStackExhausted = 10,
    /// The value stack height limit was reached.
    ValueStackExhausted = 11,
    /// A host function reported failure.
    HostError = 12,
    /// A guest called an import that is not part of the guest ABI.
    UnsupportedImport = 13,
    /// A guest ABI call with invalid arguments (read or write over 4096 bytes, negative offset,
    /// unknown blob, output over 1 MiB).
    AbiViolation = 14,
}

impl TrapCode {
    /// Every trap code, in discriminant order.
    pub const ALL: [TrapCode; 14] = [
        Self::Unreachable,
        Self::MemoryOutOfBounds,
        Self::TableOutOfBounds,
        Self::UndefinedElement,
        Self::UninitializedElement,
        Self::IndirectCallTypeMismatch,
        Self::IntegerDivideByZero,
        Self::IntegerOverflow,
        Self::InvalidConversionToInteger,
        Self::CallStackExhausted,
        Self::ValueStackExhausted,
        Self::HostError,
        Self::UnsupportedImport,
        Self::AbiViolation,
    ];

    /// The trap with discriminant `code` (as a state header stores it), if there is one.
    pub fn from_code(code: u8) -> Option<TrapCode> {
        Self::ALL.iter().copied().find(|t| *t as u8 == code)
    }

    /// The message the WebAssembly spec test suite uses for this trap.
    pub fn message(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::MemoryOutOfBounds => "out of bounds memory access",
            Self::TableOutOfBounds => "out of bounds table access",
            Self::UndefinedElement => "undefined element",
            Self::UninitializedElement => "uninitialized element",
            Self::IndirectCallTypeMismatch => "indirect call type mismatch",
            Self::IntegerDivideByZero => "integer divide by zero",
            Self::IntegerOverflow => "integer overflow",
            Self::InvalidConversionToInteger => "invalid conversion to integer",
            Self::CallStackExhausted => "call stack exhausted",
            Self::ValueStackExhausted => "call stack exhausted (value stack limit)",
            Self::HostError => "host function failed",
            Self::UnsupportedImport => "call to an import outside the guest ABI",
            Self::AbiViolation => "invalid guest ABI call",
        }
    }

    /// True for the resource-exhaustion traps (spec `assert_exhaustion`).
    pub fn is_exhaustion(self) -> bool {
        matches!(self, Self::CallStackExhausted | Self::ValueStackExhausted)
    }
}

impl fmt::Display for TrapCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for TrapCode {}
