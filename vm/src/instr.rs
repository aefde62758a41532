//! The compiled instruction set the stepping machine executes.
//!
//! Function bodies are translated once, at module load, from wasm's structured control flow into a
//! flat list of [`Op`]s per function: blocks disappear, branches become jumps that carry how many
//! values to keep and how many to drop. One `step()` executes exactly one `Op`. Indices inside ops
//! are *store addresses* after instantiation (module-local indices before), so executing an op never
//! consults a per-instance mapping.

use crate::simd::SimdOp;

/// How many bytes a `memory.fill`/`memory.copy`/`memory.init` step moves at most. Longer operations
/// take several steps (each re-checks the remaining range and advances the operands on the stack),
/// so every step reads and writes a bounded amount of state (at most two pages per operand).
pub const BULK_CHUNK: u32 = 1024;

/// How many elements a `table.fill`/`table.copy`/`table.init` step moves at most (each element is
/// one Merkle path in a proof, so this is much smaller than [`BULK_CHUNK`]).
pub const TABLE_CHUNK: u32 = 16;

/// A branch: jump to `target` (an index into the function's ops), first keeping the top `keep`
/// slots and discarding the `drop` slots beneath them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Branch {
    /// Index of the op to continue at.
    pub target: u32,
    /// Slots beneath the kept ones to discard.
    pub drop: u32,
    /// Slots on top to keep (the label's arity).
    pub keep: u32,
}

/// Width and extension of a scalar or vector memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LoadKind {
    /// `i32.load`, `f32.load`: 4 bytes.
    I32,
    /// `i64.load`, `f64.load`: 8 bytes.
    I64,
    /// `i32.load8_s`.
    I32_8S,
    /// `i32.load8_u`.
    I32_8U,
    /// `i32.load16_s`.
    I32_16S,
    /// `i32.load16_u`.
    I32_16U,
    /// `i64.load8_s`.
    I64_8S,
    /// `i64.load8_u`.
    I64_8U,
    /// `i64.load16_s`.
    I64_16S,
    /// `i64.load16_u`.
    I64_16U,
    /// `i64.load32_s`.
    I64_32S,
    /// `i64.load32_u`.
    I64_32U,
    /// `v128.load`.
    V128,
    /// `v128.load8x8_s`.
    V128_8x8S,
    /// `v128.load8x8_u`.
    V128_8x8U,
    /// `v128.load16x4_s`.
    V128_16x4S,
    /// `v128.load16x4_u`.
    V128_16x4U,
    /// `v128.load32x2_s`.
    V128_32x2S,
    /// `v128.load32x2_u`.
    V128_32x2U,
    /// `v128.load8_splat`.
    V128Splat8,
    /// `v128.load16_splat`.
    V128Splat16,
    /// `v128.load32_splat`.
    V128Splat32,
    /// `v128.load64_splat`.
    V128Splat64,
    /// `v128.load32_zero`.
    V128Zero32,
    /// `v128.load64_zero`.
    V128Zero64,
}

/// Width of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StoreKind {
    /// Low 1 byte.
    B1,
    /// Low 2 bytes.
    B2,
    /// Low 4 bytes (`i32.store`, `f32.store`, `i64.store32`).
    B4,
    /// 8 bytes (`i64.store`, `f64.store`).
    B8,
    /// 16 bytes (`v128.store`).
    B16,
}

/// Lane width of `v128.loadN_lane` / `v128.storeN_lane`, in bytes (1, 2, 4, 8).
pub type LaneBytes = u8;

macro_rules! num_ops {
    ($($name:ident)*) => {
        /// Scalar numeric instructions without immediates (MVP, sign-extension, saturating truncation).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        #[repr(u8)]
        pub enum NumOp { $($name,)* }

        impl NumOp {
            /// Every numeric instruction, in encoding order (`ALL[op as usize] == op`).
            pub const ALL: &'static [NumOp] = &[$(NumOp::$name,)*];
        }
    };
}

#[rustfmt::skip]
num_ops! {
    I32Eqz I32Eq I32Ne I32LtS I32LtU I32GtS I32GtU I32LeS I32LeU I32GeS
    I32GeU I64Eqz I64Eq I64Ne I64LtS I64LtU I64GtS I64GtU I64LeS I64LeU
    I64GeS I64GeU F32Eq F32Ne F32Lt F32Gt F32Le F32Ge F64Eq F64Ne
    F64Lt F64Gt F64Le F64Ge I32Clz I32Ctz I32Popcnt I32Add I32Sub I32Mul
    I32DivS I32DivU I32RemS I32RemU I32And I32Or I32Xor I32Shl I32ShrS I32ShrU
    I32Rotl I32Rotr I64Clz I64Ctz I64Popcnt I64Add I64Sub I64Mul I64DivS I64DivU
    I64RemS I64RemU I64And I64Or I64Xor I64Shl I64ShrS I64ShrU I64Rotl I64Rotr
    F32Abs F32Neg F32Ceil F32Floor F32Trunc F32Nearest F32Sqrt F32Add F32Sub F32Mul
    F32Div F32Min F32Max F32Copysign F64Abs F64Neg F64Ceil F64Floor F64Trunc F64Nearest
    F64Sqrt F64Add F64Sub F64Mul F64Div F64Min F64Max F64Copysign I32WrapI64 I32TruncF32S
    I32TruncF32U I32TruncF64S I32TruncF64U I64ExtendI32S I64ExtendI32U I64TruncF32S I64TruncF32U I64TruncF64S I64TruncF64U F32ConvertI32S
    F32ConvertI32U F32ConvertI64S F32ConvertI64U F32DemoteF64 F64ConvertI32S F64ConvertI32U F64ConvertI64S F64ConvertI64U F64PromoteF32 I32ReinterpretF32
    I64ReinterpretF64 F32ReinterpretI32 F64ReinterpretI64 I32Extend8S I32Extend16S I64Extend8S I64Extend16S I64Extend32S I32TruncSatF32S I32TruncSatF32U
    I32TruncSatF64S I32TruncSatF64U I64TruncSatF32S I64TruncSatF32U I64TruncSatF64S I64TruncSatF64U
}

/// One compiled instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Trap with `Unreachable`.
    Unreachable,
    /// Do nothing (kept so every wasm `nop` is a step, as the source says).
    Nop,
    /// Unconditional branch.
    Br(Branch),
    /// Pop an i32; branch if it is non-zero.
    BrIf(Branch),
    /// Pop an i32; jump to the target (no stack change) if it is zero. Compiled from `if`.
    BrUnless(u32),
    /// Pop an i32 index `i`; continue at op `pc + 1 + min(i, len)`, which is always a `Br`
    /// (the `len` targets of the table followed by the default). Two steps per `br_table`,
    /// so each step's proof is bounded whatever the table size.
    BrTable {
        /// Number of non-default targets.
        len: u32,
    },
    /// Return from the current function with its `results` top slots.
    Return {
        /// The function's result count.
        results: u32,
    },
    /// Call a function by store address.
    Call(u32),
    /// Pop a table index, check the callee's type, call it.
    CallIndirect {
        /// Store-wide canonical type id (module-local type index before instantiation).
        type_id: u32,
        /// Table store address.
        table: u32,
    },
    /// Discard the top slot.
    Drop,
    /// Pop condition, b, a; push `a` if condition is non-zero, else `b`.
    Select,
    /// Push local `n` of the current frame.
    LocalGet(u32),
    /// Pop into local `n`.
    LocalSet(u32),
    /// Copy the top slot into local `n`.
    LocalTee(u32),
    /// Push a global (store address).
    GlobalGet(u32),
    /// Pop into a global (store address).
    GlobalSet(u32),
    /// Pop an address; load and push.
    Load {
        /// Width and extension.
        kind: LoadKind,
        /// Memory store address.
        mem: u32,
        /// Static offset.
        offset: u32,
    },
    /// Pop a value and an address; store.
    Store {
        /// Width.
        kind: StoreKind,
        /// Memory store address.
        mem: u32,
        /// Static offset.
        offset: u32,
    },
    /// `v128.loadN_lane`: pop a vector and an address; load N bytes into lane `lane`.
    LoadLane {
        /// Lane width in bytes.
        bytes: LaneBytes,
        /// Lane index.
        lane: u8,
        /// Memory store address.
        mem: u32,
        /// Static offset.
        offset: u32,
    },
    /// `v128.storeN_lane`: pop a vector and an address; store lane `lane`.
    StoreLane {
        /// Lane width in bytes.
        bytes: LaneBytes,
        /// Lane index.
        lane: u8,
        /// Memory store address.
        mem: u32,
        /// Static offset.
        offset: u32,
    },
    /// Push the memory size in pages.
    MemorySize(u32),
    /// Pop a page delta; grow; push the old size or -1.
    MemoryGrow(u32),
    /// Pop n, value, dst; fill up to [`BULK_CHUNK`] bytes per step.
    MemoryFill(u32),
    /// Pop n, src, dst; copy up to [`BULK_CHUNK`] bytes per step (overlap-safe).
    MemoryCopy {
        /// Destination memory.
        dst: u32,
        /// Source memory.
        src: u32,
    },
    /// Pop n, src offset, dst; copy from a data segment, up to [`BULK_CHUNK`] bytes per step.
    MemoryInit {
        /// Data segment store address.
        data: u32,
        /// Memory store address.
        mem: u32,
    },
    /// Drop a data segment.
    DataDrop(u32),
    /// Push a constant i32/f32 (zero-extended bits).
    Const32(u32),
    /// Push a constant i64/f64.
    Const64(u64),
    /// A scalar numeric instruction.
    Num(NumOp),
    /// A simd128 instruction that does not access memory.
    Simd(SimdOp),
    /// Push a null reference.
    RefNull,
    /// Pop a reference; push 1 if it is null.
    RefIsNull,
    /// Push a reference to a function (store address).
    RefFunc(u32),
    /// Pop an index; push the table element.
    TableGet(u32),
    /// Pop a value and an index; set the element.
    TableSet(u32),
    /// Push the table size.
    TableSize(u32),
    /// Pop n and an init value; grow; push the old size or -1.
    TableGrow(u32),
    /// Pop n, value, dst; fill up to [`BULK_CHUNK`] elements per step.
    TableFill(u32),
    /// Pop n, src, dst; copy up to [`BULK_CHUNK`] elements per step.
    TableCopy {
        /// Destination table.
        dst: u32,
        /// Source table.
        src: u32,
    },
    /// Pop n, src offset, dst; copy from an element segment, up to [`BULK_CHUNK`] per step.
    TableInit {
        /// Element segment store address.
        elem: u32,
        /// Table store address.
        table: u32,
    },
    /// Drop an element segment.
    ElemDrop(u32),
    /// Fused `i32.const c; i32.add`.
    AddImm32(u32),
    /// Fused `local.get a; local.get b`.
    LocalGet2(u32, u32),
    /// Fused `local.get a; i32.const c`.
    LocalGetConst32(u32, u32),
    /// Fused `local.get a; i32.const c; i32.add`.
    LocalAddImm32(u32, u32),
    /// Fused `i32.const c; i32.add; local.tee x` (as `AddImm32(c)` then `LocalTee(x)`).
    AddImm32Tee(u32, u32),
    /// Fused `i32.add; local.tee x`.
    AddTee(u32),
    /// Fused `local.get a; i32.const c; i32.add; local.tee x`.
    LocalAddImm32Tee(u32, u32, u32),
    /// Fused `local.get a; <load>`: the address is local `local`.
    LoadLocal {
        /// Width and extension.
        kind: LoadKind,
        /// Local holding the address.
        local: u32,
        /// Memory store address.
        mem: u32,
        /// Static offset.
        offset: u32,
    },
    /// Fused `i32.const imm; i32.add; <load>`: the address is `(pop + imm) mod 2^32`, then the
    /// static offset is added without wrapping, exactly as the unfused sequence does.
    LoadAddImm {
        /// Width and extension.
        kind: LoadKind,
        /// Added to the popped address (wrapping at 32 bits).
        imm: u32,
        /// Memory store address.
        mem: u32,
        /// Static offset.
        offset: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_stays_small() {
        // The op list of a large guest is millions of entries; keep each one compact.
        assert!(std::mem::size_of::<Op>() <= 24, "Op is {} bytes", std::mem::size_of::<Op>());
    }
}

/// Bytes of an encoded [`Op`] (a leaf of the program's code tree).
pub const OP_BYTES: usize = 24;

const LOAD_KINDS: [LoadKind; 25] = {
    use LoadKind::*;
    [
        I32,
        I64,
        I32_8S,
        I32_8U,
        I32_16S,
        I32_16U,
        I64_8S,
        I64_8U,
        I64_16S,
        I64_16U,
        I64_32S,
        I64_32U,
        V128,
        V128_8x8S,
        V128_8x8U,
        V128_16x4S,
        V128_16x4U,
        V128_32x2S,
        V128_32x2U,
        V128Splat8,
        V128Splat16,
        V128Splat32,
        V128Splat64,
        V128Zero32,
        V128Zero64,
    ]
};
const STORE_KINDS: [StoreKind; 5] = [StoreKind::B1, StoreKind::B2, StoreKind::B4, StoreKind::B8, StoreKind::B16];

struct Enc([u8; OP_BYTES], usize);

impl Enc {
    fn new(tag: u8) -> Self {
        let mut b = [0u8; OP_BYTES];
        b[0] = tag;
        Enc(b, 1)
    }
    fn u8(mut self, v: u8) -> Self {
        self.0[self.1] = v;
        self.1 += 1;
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0[self.1..self.1 + 4].copy_from_slice(&v.to_le_bytes());
        self.1 += 4;
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0[self.1..self.1 + 8].copy_from_slice(&v.to_le_bytes());
        self.1 += 8;
        self
    }
    fn bytes(mut self, v: &[u8]) -> Self {
        self.0[self.1..self.1 + v.len()].copy_from_slice(v);
        self.1 += v.len();
        self
    }
}

struct Dec<'a>(&'a [u8; OP_BYTES], usize);

impl Dec<'_> {
    fn u8(&mut self) -> u8 {
        self.1 += 1;
        self.0[self.1 - 1]
    }
    fn u32(&mut self) -> u32 {
        self.1 += 4;
        u32::from_le_bytes([self.0[self.1 - 4], self.0[self.1 - 3], self.0[self.1 - 2], self.0[self.1 - 1]])
    }
    fn u64(&mut self) -> u64 {
        let lo = self.u32() as u64;
        lo | (self.u32() as u64) << 32
    }
}

impl Op {
    /// The canonical encoding: a tag byte, then the immediates little-endian, zero-padded
    /// (layout table in docs/state-root.md).
    pub fn encode(&self) -> [u8; OP_BYTES] {
        let br = |tag: u8, b: &Branch| Enc::new(tag).u32(b.target).u32(b.drop).u32(b.keep);
        let e = match *self {
            Op::Unreachable => Enc::new(0),
            Op::Nop => Enc::new(1),
            Op::Br(b) => br(2, &b),
            Op::BrIf(b) => br(3, &b),
            Op::BrUnless(t) => Enc::new(4).u32(t),
            Op::BrTable { len } => Enc::new(5).u32(len),
            Op::Return { results } => Enc::new(6).u32(results),
            Op::Call(f) => Enc::new(7).u32(f),
            Op::CallIndirect { type_id, table } => Enc::new(8).u32(type_id).u32(table),
            Op::Drop => Enc::new(9),
            Op::Select => Enc::new(10),
            Op::LocalGet(i) => Enc::new(11).u32(i),
            Op::LocalSet(i) => Enc::new(12).u32(i),
            Op::LocalTee(i) => Enc::new(13).u32(i),
            Op::GlobalGet(g) => Enc::new(14).u32(g),
            Op::GlobalSet(g) => Enc::new(15).u32(g),
            Op::Load { kind, mem, offset } => Enc::new(16).u8(kind as u8).u32(mem).u32(offset),
            Op::Store { kind, mem, offset } => Enc::new(17).u8(kind as u8).u32(mem).u32(offset),
            Op::LoadLane { bytes, lane, mem, offset } => Enc::new(18).u8(bytes).u8(lane).u32(mem).u32(offset),
            Op::StoreLane { bytes, lane, mem, offset } => Enc::new(19).u8(bytes).u8(lane).u32(mem).u32(offset),
            Op::MemorySize(m) => Enc::new(20).u32(m),
            Op::MemoryGrow(m) => Enc::new(21).u32(m),
            Op::MemoryFill(m) => Enc::new(22).u32(m),
            Op::MemoryCopy { dst, src } => Enc::new(23).u32(dst).u32(src),
            Op::MemoryInit { data, mem } => Enc::new(24).u32(data).u32(mem),
            Op::DataDrop(d) => Enc::new(25).u32(d),
            Op::Const32(v) => Enc::new(26).u32(v),
            Op::Const64(v) => Enc::new(27).u64(v),
            Op::Num(n) => Enc::new(28).u8(n as u8),
            Op::Simd(s) => Enc::new(29).bytes(&s.encode()),
            Op::RefNull => Enc::new(30),
            Op::RefIsNull => Enc::new(31),
            Op::RefFunc(f) => Enc::new(32).u32(f),
            Op::TableGet(t) => Enc::new(33).u32(t),
            Op::TableSet(t) => Enc::new(34).u32(t),
            Op::TableSize(t) => Enc::new(35).u32(t),
            Op::TableGrow(t) => Enc::new(36).u32(t),
            Op::TableFill(t) => Enc::new(37).u32(t),
            Op::TableCopy { dst, src } => Enc::new(38).u32(dst).u32(src),
            Op::TableInit { elem, table } => Enc::new(39).u32(elem).u32(table),
            Op::ElemDrop(e) => Enc::new(40).u32(e),
            Op::AddImm32(c) => Enc::new(41).u32(c),
            Op::LocalGet2(a, b) => Enc::new(42).u32(a).u32(b),
            Op::LocalGetConst32(a, c) => Enc::new(43).u32(a).u32(c),
            Op::LocalAddImm32(a, c) => Enc::new(44).u32(a).u32(c),
            Op::AddImm32Tee(c, x) => Enc::new(45).u32(c).u32(x),
            Op::AddTee(x) => Enc::new(46).u32(x),
            Op::LocalAddImm32Tee(a, c, x) => Enc::new(47).u32(a).u32(c).u32(x),
            Op::LoadLocal { kind, local, mem, offset } => Enc::new(48).u8(kind as u8).u32(local).u32(mem).u32(offset),
            Op::LoadAddImm { kind, imm, mem, offset } => Enc::new(49).u8(kind as u8).u32(imm).u32(mem).u32(offset),
        };
        e.0
    }

    /// Inverse of [`Op::encode`]; `None` unless `bytes` is exactly the encoding of some op.
    pub fn decode(bytes: &[u8; OP_BYTES]) -> Option<Op> {
        let mut d = Dec(bytes, 1);
        let br = |d: &mut Dec<'_>| Branch { target: d.u32(), drop: d.u32(), keep: d.u32() };
        let op = match bytes[0] {
            0 => Op::Unreachable,
            1 => Op::Nop,
            2 => Op::Br(br(&mut d)),
            3 => Op::BrIf(br(&mut d)),
            4 => Op::BrUnless(d.u32()),
            5 => Op::BrTable { len: d.u32() },
            6 => Op::Return { results: d.u32() },
            7 => Op::Call(d.u32()),
            8 => Op::CallIndirect { type_id: d.u32(), table: d.u32() },
            9 => Op::Drop,
            10 => Op::Select,
            11 => Op::LocalGet(d.u32()),
            12 => Op::LocalSet(d.u32()),
            13 => Op::LocalTee(d.u32()),
            14 => Op::GlobalGet(d.u32()),
            15 => Op::GlobalSet(d.u32()),
            16 => Op::Load { kind: *LOAD_KINDS.get(d.u8() as usize)?, mem: d.u32(), offset: d.u32() },
            17 => Op::Store { kind: *STORE_KINDS.get(d.u8() as usize)?, mem: d.u32(), offset: d.u32() },
            18 | 19 => {
                let (bytes_, lane, mem, offset) = (d.u8(), d.u8(), d.u32(), d.u32());
                if !matches!(bytes_, 1 | 2 | 4 | 8) || lane as u32 >= 16 / bytes_ as u32 {
                    return None;
                }
                if bytes[0] == 18 {
                    Op::LoadLane { bytes: bytes_, lane, mem, offset }
                } else {
                    Op::StoreLane { bytes: bytes_, lane, mem, offset }
                }
            }
            20 => Op::MemorySize(d.u32()),
            21 => Op::MemoryGrow(d.u32()),
            22 => Op::MemoryFill(d.u32()),
            23 => Op::MemoryCopy { dst: d.u32(), src: d.u32() },
            24 => Op::MemoryInit { data: d.u32(), mem: d.u32() },
            25 => Op::DataDrop(d.u32()),
            26 => Op::Const32(d.u32()),
            27 => Op::Const64(d.u64()),
            28 => Op::Num(*NumOp::ALL.get(d.u8() as usize)?),
            29 => {
                let mut s = [0u8; 17];
                s.copy_from_slice(&bytes[1..18]);
                Op::Simd(SimdOp::decode(&s)?)
            }
            30 => Op::RefNull,
            31 => Op::RefIsNull,
            32 => Op::RefFunc(d.u32()),
            33 => Op::TableGet(d.u32()),
            34 => Op::TableSet(d.u32()),
            35 => Op::TableSize(d.u32()),
            36 => Op::TableGrow(d.u32()),
            37 => Op::TableFill(d.u32()),
            38 => Op::TableCopy { dst: d.u32(), src: d.u32() },
            39 => Op::TableInit { elem: d.u32(), table: d.u32() },
            40 => Op::ElemDrop(d.u32()),
            41 => Op::AddImm32(d.u32()),
            42 => Op::LocalGet2(d.u32(), d.u32()),
            43 => Op::LocalGetConst32(d.u32(), d.u32()),
            44 => Op::LocalAddImm32(d.u32(), d.u32()),
            45 => Op::AddImm32Tee(d.u32(), d.u32()),
            46 => Op::AddTee(d.u32()),
            47 => Op::LocalAddImm32Tee(d.u32(), d.u32(), d.u32()),
            48 => {
                Op::LoadLocal { kind: *LOAD_KINDS.get(d.u8() as usize)?, local: d.u32(), mem: d.u32(), offset: d.u32() }
            }
            49 => {
                Op::LoadAddImm { kind: *LOAD_KINDS.get(d.u8() as usize)?, imm: d.u32(), mem: d.u32(), offset: d.u32() }
            }
            _ => return None,
        };
        (op.encode() == *bytes).then_some(op)
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_is_canonical() {
        let mut ops = vec![
            Op::Unreachable,
            Op::Br(Branch { target: 7, drop: 3, keep: 1 }),
            Op::BrIf(Branch { target: u32::MAX, drop: 0, keep: 2 }),
            Op::CallIndirect { type_id: 4, table: 1 },
            Op::Const64(u64::MAX - 5),
            Op::LoadLane { bytes: 8, lane: 1, mem: 0, offset: 12 },
            Op::StoreLane { bytes: 1, lane: 15, mem: 2, offset: u32::MAX },
            Op::Simd(SimdOp::V128Const([9; 16])),
            Op::TableInit { elem: 3, table: 2 },
            Op::AddImm32(7),
            Op::LocalGet2(1, 2),
            Op::LocalGetConst32(3, u32::MAX),
            Op::LocalAddImm32(4, 16),
            Op::AddImm32Tee(8, 9),
            Op::AddTee(3),
            Op::LocalAddImm32Tee(1, 2, 3),
            Op::LoadLocal { kind: LoadKind::V128, local: 5, mem: 0, offset: 8 },
            Op::LoadAddImm { kind: LoadKind::I64_16S, imm: 0xFFFF_FFF0, mem: 1, offset: 3 },
        ];
        ops.extend(NumOp::ALL.iter().map(|n| Op::Num(*n)));
        ops.extend(LOAD_KINDS.iter().map(|k| Op::Load { kind: *k, mem: 1, offset: 2 }));
        ops.extend(STORE_KINDS.iter().map(|k| Op::Store { kind: *k, mem: 1, offset: 2 }));
        for (i, n) in NumOp::ALL.iter().enumerate() {
            assert_eq!(*n as usize, i);
        }
        for op in ops {
            let e = op.encode();
            assert_eq!(Op::decode(&e), Some(op));
            // Any stray byte in the padding makes the encoding non-canonical.
            let mut bad = e;
            bad[OP_BYTES - 1] ^= 0x80;
            assert_eq!(Op::decode(&bad), None, "{op:?}");
        }
        let mut lane_oob = Op::LoadLane { bytes: 4, lane: 0, mem: 0, offset: 0 }.encode();
        lane_oob[2] = 4;
        assert_eq!(Op::decode(&lane_oob), None);
        assert_eq!(Op::decode(&[0xFF; OP_BYTES]), None);
    }
}
