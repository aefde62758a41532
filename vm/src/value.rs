//! Values: the untyped slots the machine stores and the typed values the embedder sees.

use alloc::vec::Vec;

/// One value-stack, local or global slot. Every value occupies exactly one slot, little-endian:
/// `i32`/`f32` zero-extended from their 32 bits, `i64`/`f64` zero-extended from their 64 bits,
/// `v128` all 128 bits, references as [`ref_to_slot`] encodes them.
pub type Slot = u128;

/// The slot encoding of a null reference (funcref or externref). Null is zero so that every
/// type's default value (the initial value of locals and table elements) is the all-zero slot;
/// a non-null reference `r` is stored as `r + 1`.
pub const NULL_REF: Slot = 0;

/// A WebAssembly value type of the supported feature set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 128-bit vector.
    V128,
    /// Nullable function reference.
    FuncRef,
    /// Nullable opaque host reference.
    ExternRef,
}

impl ValType {
    /// Converts a wasmparser value type; `None` for types outside WebAssembly 2.0.
    #[cfg(feature = "std")]
    pub fn from_wasmparser(ty: wasmparser::ValType) -> Option<Self> {
        use wasmparser::ValType as W;
        Some(match ty {
            W::I32 => Self::I32,
            W::I64 => Self::I64,
            W::F32 => Self::F32,
            W::F64 => Self::F64,
            W::V128 => Self::V128,
            W::Ref(r) if r == wasmparser::RefType::FUNCREF => Self::FuncRef,
            W::Ref(r) if r == wasmparser::RefType::EXTERNREF => Self::ExternRef,
            W::Ref(_) => return None,
        })
    }

    /// True for `funcref` and `externref`.
    pub fn is_ref(self) -> bool {
        matches!(self, Self::FuncRef | Self::ExternRef)
    }
}

/// A typed value at the embedder boundary (arguments, results, globals, host calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`, as its IEEE bits (so NaN payloads survive comparisons).
    F32(u32),
    /// An `f64`, as its IEEE bits.
    F64(u64),
    /// A `v128`, lane 0 in the least significant bits.
    V128(u128),
    /// A function reference: the store address of the function, or null.
    FuncRef(Option<u32>),
    /// An extern reference: an opaque host number, or null.
    ExternRef(Option<u32>),
}

impl Value {
    /// The type of this value.
    pub fn ty(&self) -> ValType {
        match self {
            Self::I32(_) => ValType::I32,
            Self::I64(_) => ValType::I64,
            Self::F32(_) => ValType::F32,
            Self::F64(_) => ValType::F64,
            Self::V128(_) => ValType::V128,
            Self::FuncRef(_) => ValType::FuncRef,
            Self::ExternRef(_) => ValType::ExternRef,
        }
    }

    /// The slot encoding of this value.
    pub fn to_slot(self) -> Slot {
        match self {
            Self::I32(v) => v as u32 as Slot,
            Self::I64(v) => v as u64 as Slot,
            Self::F32(v) => v as Slot,
            Self::F64(v) => v as Slot,
            Self::V128(v) => v,
            Self::FuncRef(r) | Self::ExternRef(r) => ref_to_slot(r),
        }
    }

    /// Reads a slot as a value of type `ty`.
    pub fn from_slot(ty: ValType, slot: Slot) -> Self {
        match ty {
            ValType::I32 => Self::I32(slot as u32 as i32),
            ValType::I64 => Self::I64(slot as u64 as i64),
            ValType::F32 => Self::F32(slot as u32),
            ValType::F64 => Self::F64(slot as u64),
            ValType::V128 => Self::V128(slot),
            ValType::FuncRef => Self::FuncRef(slot_to_ref(slot)),
            ValType::ExternRef => Self::ExternRef(slot_to_ref(slot)),
        }
    }

    /// The zero value (null for references) of a type: the initial value of locals.
    pub fn default_for(ty: ValType) -> Self {
        Self::from_slot(ty, 0)
    }
}

/// Encodes a nullable reference as a slot (null is 0, `r` is `r + 1`).
pub fn ref_to_slot(r: Option<u32>) -> Slot {
    match r {
        Some(v) => v as Slot + 1,
        None => NULL_REF,
    }
}

/// Decodes a reference slot.
pub fn slot_to_ref(slot: Slot) -> Option<u32> {
    if slot == NULL_REF { None } else { Some((slot - 1) as u32) }
}

/// A function signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncType {
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
}
