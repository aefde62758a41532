//! The transition function: what one instruction does, written once against [`Access`].
//!
//! The stepping machine implements [`Access`] over its full state; the one-step proof verifier
//! implements it over the partial state a proof reveals, and the prover over a recording wrapper.
//! All three therefore execute literally the same instruction semantics (the Cartesi pattern of a
//! step function generic over its state access), so prover and verifier cannot drift apart.

use alloc::vec::Vec;

use crate::instr::{BULK_CHUNK, Branch, LoadKind, Op, StoreKind, TABLE_CHUNK};
use crate::num;
use crate::simd;
use crate::trap::TrapCode;
use crate::value::{NULL_REF, Slot, ref_to_slot, slot_to_ref};

/// Why an instruction did not complete normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault<E> {
    /// The instruction traps: a final state.
    Trap(TrapCode),
    /// The state access itself failed (for a verifier: the proof lacks or contradicts data).
    Access(E),
}

impl<E> From<TrapCode> for Fault<E> {
    fn from(t: TrapCode) -> Self {
        Fault::Trap(t)
    }
}

/// Result of a state access.
pub type Acc<T, E> = Result<T, Fault<E>>;

/// Everything an instruction may read or change. Addresses are store addresses.
pub trait Access {
    /// Access failure type (`Infallible` for the full machine).
    type Error;
    /// Index of the instruction being executed.
    fn pc(&self) -> u32;
    /// Sets the index of the next instruction of the current function.
    fn jump(&mut self, pc: u32);
    /// Pops the top operand of the current frame.
    fn pop(&mut self) -> Acc<Slot, Self::Error>;
    /// Pushes an operand.
    fn push(&mut self, v: Slot) -> Acc<(), Self::Error>;
    /// A stack whose last `n` entries are the top `n` operands, for pure stack instructions
    /// (numeric and SIMD) that pop at most `n` and push at most one.
    fn operands(&mut self, n: usize) -> Acc<&mut Vec<Slot>, Self::Error>;
    /// Keeps the top `keep` operands, drops `drop` beneath them, continues at `target`.
    fn branch(&mut self, b: Branch) -> Acc<(), Self::Error>;
    /// Local `i` of the current frame.
    fn local(&mut self, i: u32) -> Acc<Slot, Self::Error>;
    /// Sets local `i` of the current frame.
    fn set_local(&mut self, i: u32, v: Slot) -> Acc<(), Self::Error>;
    /// A global.
    fn global(&mut self, g: u32) -> Acc<Slot, Self::Error>;
    /// Sets a global.
    fn set_global(&mut self, g: u32, v: Slot) -> Acc<(), Self::Error>;
    /// Size of memory `m` in pages.
    fn mem_pages(&mut self, m: u32) -> Acc<u32, Self::Error>;
    /// Reads `out.len()` bytes (bounds already checked by the caller).
    fn mem_read(&mut self, m: u32, addr: u64, out: &mut [u8]) -> Acc<(), Self::Error>;
    /// Writes bytes (bounds already checked by the caller).
    fn mem_write(&mut self, m: u32, addr: u64, data: &[u8]) -> Acc<(), Self::Error>;
    /// Reads `N` bytes at `addr`, trapping with `MemoryOutOfBounds` outside the memory.
    #[inline(always)]
    fn load_n<const N: usize>(&mut self, m: u32, addr: u64) -> Acc<[u8; N], Self::Error> {
        check_mem(self, m, addr, N as u64)?;
        let mut out = [0u8; N];
        self.mem_read(m, addr, &mut out)?;
        Ok(out)
    }
    /// Writes `N` bytes at `addr`, trapping with `MemoryOutOfBounds` outside the memory.
    #[inline(always)]
    fn store_n<const N: usize>(&mut self, m: u32, addr: u64, bytes: &[u8; N]) -> Acc<(), Self::Error> {
        check_mem(self, m, addr, N as u64)?;
        self.mem_write(m, addr, bytes)
    }
    /// Grows memory `m`; the old size in pages, or `None`.
    fn mem_grow(&mut self, m: u32, delta: u32) -> Acc<Option<u32>, Self::Error>;
    /// Size of table `t`.
    fn table_size(&mut self, t: u32) -> Acc<u32, Self::Error>;
    /// Element `i` of table `t` (bounds already checked).
    fn table_get(&mut self, t: u32, i: u32) -> Acc<Slot, Self::Error>;
    /// Sets element `i` of table `t` (bounds already checked).
    fn table_set(&mut self, t: u32, i: u32, v: Slot) -> Acc<(), Self::Error>;
    /// Grows table `t` by `n` elements set to `init`; the old size, or `None`.
    fn table_grow(&mut self, t: u32, n: u32, init: Slot) -> Acc<Option<u32>, Self::Error>;
    /// Length of data segment `d` (0 once dropped).
    fn data_len(&mut self, d: u32) -> Acc<u32, Self::Error>;
    /// Reads bytes of data segment `d` (bounds already checked).
    fn data_read(&mut self, d: u32, offset: u32, out: &mut [u8]) -> Acc<(), Self::Error>;
    /// Drops data segment `d`.
    fn data_drop(&mut self, d: u32) -> Acc<(), Self::Error>;
    /// Length of element segment `e` (0 once dropped).
    fn elem_len(&mut self, e: u32) -> Acc<u32, Self::Error>;
    /// Item `i` of element segment `e` (bounds already checked).
    fn elem_get(&mut self, e: u32, i: u32) -> Acc<Slot, Self::Error>;
    /// Drops element segment `e`.
    fn elem_drop(&mut self, e: u32) -> Acc<(), Self::Error>;
    /// The built-in guest ABI id of function `f` (see [`crate::io`]), if it is one.
    fn abi_id(&mut self, f: u32) -> Acc<Option<u32>, Self::Error>;
    /// Length of input blob `blob`, or `None` if there is no such blob.
    fn input_len(&mut self, blob: u32) -> Acc<Option<u64>, Self::Error>;
    /// Reads bytes of an input blob (bounds already checked by the caller).
    fn input_read(&mut self, blob: u32, offset: u64, out: &mut [u8]) -> Acc<(), Self::Error>;
    /// Length of the output written so far.
    fn output_len(&mut self) -> Acc<u64, Self::Error>;
    /// Appends to the output (the caller checked the size limit).
    fn output_append(&mut self, bytes: &[u8]) -> Acc<(), Self::Error>;
    /// Canonical type id of function `f`.
    fn func_type_id(&mut self, f: u32) -> Acc<u32, Self::Error>;
    /// Calls function `f` (wasm or host), with its arguments on the operand stack.
    fn call(&mut self, f: u32) -> Acc<(), Self::Error>;
    /// Returns from the current function with its top `results` operands.
    fn ret(&mut self, results: u32) -> Acc<(), Self::Error>;
}

/// The size `memory.grow` by `delta` pages leads to, or `None` (the wasm result -1): within the
/// declared maximum, the machine limit and the 4 GiB address space.
pub fn memory_grow_to(old: u32, delta: u32, max: Option<u32>, limit: u32) -> Option<u32> {
    let new = old.checked_add(delta)?;
    let cap = max.unwrap_or(u32::MAX).min(limit).min(65_536);
    (new <= cap).then_some(new)
}

/// The size `table.grow` by `delta` elements leads to, or `None` (the wasm result -1).
pub fn table_grow_to(old: u32, delta: u32, max: Option<u32>, limit: u32) -> Option<u32> {
    let new = old.checked_add(delta)?;
    (new <= max.unwrap_or(u32::MAX).min(limit)).then_some(new)
}

/// How many operands a numeric instruction pops.
pub fn num_arity(op: crate::instr::NumOp) -> usize {
    use crate::instr::NumOp::*;
    match op {
        I32Eqz | I64Eqz | I32Clz | I32Ctz | I32Popcnt | I64Clz | I64Ctz | I64Popcnt | F32Abs | F32Neg | F32Ceil
        | F32Floor | F32Trunc | F32Nearest | F32Sqrt | F64Abs | F64Neg | F64Ceil | F64Floor | F64Trunc | F64Nearest
        | F64Sqrt | I32WrapI64 | I32TruncF32S | I32TruncF32U | I32TruncF64S | I32TruncF64U | I64ExtendI32S
        | I64ExtendI32U | I64TruncF32S | I64TruncF32U | I64TruncF64S | I64TruncF64U | F32ConvertI32S
        | F32ConvertI32U | F32ConvertI64S | F32ConvertI64U | F32DemoteF64 | F64ConvertI32S | F64ConvertI32U
        | F64ConvertI64S | F64ConvertI64U | F64PromoteF32 | I32ReinterpretF32 | I64ReinterpretF64
        | F32ReinterpretI32 | F64ReinterpretI64 | I32Extend8S | I32Extend16S | I64Extend8S | I64Extend16S
        | I64Extend32S | I32TruncSatF32S | I32TruncSatF32U | I32TruncSatF64S | I32TruncSatF64U | I64TruncSatF32S
        | I64TruncSatF32U | I64TruncSatF64S | I64TruncSatF64U => 1,
        _ => 2,
    }
}

#[inline]
fn ea<A: Access>(a: &mut A, offset: u32) -> Acc<u64, A::Error> {
    Ok(a.pop()? as u32 as u64 + offset as u64)
}

#[inline(always)]
fn check_mem<A: Access + ?Sized>(a: &mut A, m: u32, addr: u64, len: u64) -> Acc<(), A::Error> {
    let size = a.mem_pages(m)? as u64 * crate::limits::WASM_PAGE;
    match addr.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Fault::Trap(TrapCode::MemoryOutOfBounds)),
    }
}

#[inline(always)]
fn read<A: Access, const N: usize>(a: &mut A, m: u32, addr: u64) -> Acc<[u8; N], A::Error> {
    a.load_n::<N>(m, addr)
}

#[inline(always)]
fn load<A: Access>(a: &mut A, kind: LoadKind, m: u32, offset: u32) -> Acc<(), A::Error> {
    let addr = ea(a, offset)?;
    load_at(a, kind, m, addr)
}

/// Loads from the effective address `addr` (base plus static offset) and pushes the value.
#[inline(always)]
fn load_at<A: Access>(a: &mut A, kind: LoadKind, m: u32, addr: u64) -> Acc<(), A::Error> {
    use LoadKind::*;
    let v: Slot = match kind {
        I32 => u32::from_le_bytes(read::<A, 4>(a, m, addr)?) as Slot,
        I64 => u64::from_le_bytes(read::<A, 8>(a, m, addr)?) as Slot,
        I32_8S => read::<A, 1>(a, m, addr)?[0] as i8 as i32 as u32 as Slot,
        I32_8U | I64_8U => read::<A, 1>(a, m, addr)?[0] as Slot,
        I32_16S => i16::from_le_bytes(read::<A, 2>(a, m, addr)?) as i32 as u32 as Slot,
        I32_16U | I64_16U => u16::from_le_bytes(read::<A, 2>(a, m, addr)?) as Slot,
        I64_8S => read::<A, 1>(a, m, addr)?[0] as i8 as i64 as u64 as Slot,
        I64_16S => i16::from_le_bytes(read::<A, 2>(a, m, addr)?) as i64 as u64 as Slot,
        I64_32S => i32::from_le_bytes(read::<A, 4>(a, m, addr)?) as i64 as u64 as Slot,
        I64_32U => u32::from_le_bytes(read::<A, 4>(a, m, addr)?) as Slot,
        V128 => u128::from_le_bytes(read::<A, 16>(a, m, addr)?),
        V128_8x8S | V128_8x8U => {
            let b = read::<A, 8>(a, m, addr)?;
            let mut out = [0u8; 16];
            for i in 0..8 {
                let w = if kind == V128_8x8S { b[i] as i8 as i16 as u16 } else { b[i] as u16 };
                out[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
            }
            u128::from_le_bytes(out)
        }
        V128_16x4S | V128_16x4U => {
            let b = read::<A, 8>(a, m, addr)?;
            let mut out = [0u8; 16];
            for i in 0..4 {
                let h = u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
                let w = if kind == V128_16x4S { h as i16 as i32 as u32 } else { h as u32 };
                out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
            }
            u128::from_le_bytes(out)
        }
        V128_32x2S | V128_32x2U => {
            let b = read::<A, 8>(a, m, addr)?;
            let mut out = [0u8; 16];
            for i in 0..2 {
                let h = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
                let w = if kind == V128_32x2S { h as i32 as i64 as u64 } else { h as u64 };
                out[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
            }
            u128::from_le_bytes(out)
        }
        V128Splat8 => u128::from_le_bytes([read::<A, 1>(a, m, addr)?[0]; 16]),
        V128Splat16 => {
            let b = read::<A, 2>(a, m, addr)?;
            u128::from_le_bytes(core::array::from_fn(|i| b[i % 2]))
        }
        V128Splat32 => {
            let b = read::<A, 4>(a, m, addr)?;
            u128::from_le_bytes(core::array::from_fn(|i| b[i % 4]))
        }
        V128Splat64 => {
            let b = read::<A, 8>(a, m, addr)?;
            u128::from_le_bytes(core::array::from_fn(|i| b[i % 8]))
        }
        V128Zero32 => u32::from_le_bytes(read::<A, 4>(a, m, addr)?) as Slot,
        V128Zero64 => u64::from_le_bytes(read::<A, 8>(a, m, addr)?) as Slot,
    };
    a.push(v)
}

#[inline(always)]
fn store<A: Access>(a: &mut A, kind: StoreKind, m: u32, offset: u32) -> Acc<(), A::Error> {
    let v = a.pop()?;
    let addr = ea(a, offset)?;
    match kind {
        StoreKind::B1 => a.store_n::<1>(m, addr, &(v as u8).to_le_bytes()),
        StoreKind::B2 => a.store_n::<2>(m, addr, &(v as u16).to_le_bytes()),
        StoreKind::B4 => a.store_n::<4>(m, addr, &(v as u32).to_le_bytes()),
        StoreKind::B8 => a.store_n::<8>(m, addr, &(v as u64).to_le_bytes()),
        StoreKind::B16 => a.store_n::<16>(m, addr, &v.to_le_bytes()),
    }
}

/// Pops the three operands of a bulk instruction: (destination, middle operand, count).
#[inline]
fn bulk_operands<A: Access>(a: &mut A) -> Acc<(u32, Slot, u32), A::Error> {
    let n = a.pop()? as u32;
    let mid = a.pop()?;
    let d = a.pop()? as u32;
    Ok((d, mid, n))
}

/// After one chunk of a bulk instruction: if work remains, push the advanced operands back and
/// stay on this instruction; otherwise the instruction is complete (pc already advanced).
#[inline]
fn bulk_continue<A: Access>(a: &mut A, pc: u32, d: u32, mid: Slot, n: u32) -> Acc<(), A::Error> {
    if n > 0 {
        a.push(d as Slot)?;
        a.push(mid)?;
        a.push(n as Slot)?;
        a.jump(pc);
    }
    Ok(())
}

/// A call of a built-in guest ABI function (one step). The guest's memory is store address 0.
fn abi_call<A: Access>(a: &mut A, id: u32) -> Acc<(), A::Error> {
    use crate::io::{ABI_INPUT_LEN, ABI_INPUT_READ, ABI_OUTPUT_WRITE, MAX_IO, MAX_OUTPUT};
    const MEM: u32 = 0;
    let violation = Fault::Trap(TrapCode::AbiViolation);
    match id {
        ABI_INPUT_LEN => {
            let blob = a.pop()? as u32;
            let len = a.input_len(blob)?.map_or(-1i64, |n| n as i64);
            a.push(len as u64 as Slot)
        }
        ABI_INPUT_READ => {
            let len = a.pop()? as u32;
            let dst = a.pop()? as u32;
            let offset = a.pop()? as u64 as i64;
            let blob = a.pop()? as u32;
            if len > MAX_IO || offset < 0 {
                return Err(violation);
            }
            let blob_len = a.input_len(blob)?.ok_or(violation)?;
            check_mem(a, MEM, dst as u64, len as u64)?;
            let offset = offset as u64;
            let n = if offset >= blob_len { 0 } else { (blob_len - offset).min(len as u64) as usize };
            if n > 0 {
                let mut buf = [0u8; MAX_IO as usize];
                a.input_read(blob, offset, &mut buf[..n])?;
                a.mem_write(MEM, dst as u64, &buf[..n])?;
            }
            a.push(n as Slot)
        }
        ABI_OUTPUT_WRITE => {
            let len = a.pop()? as u32;
            let src = a.pop()? as u32;
            if len > MAX_IO {
                return Err(violation);
            }
            check_mem(a, MEM, src as u64, len as u64)?;
            if a.output_len()? + len as u64 > MAX_OUTPUT {
                return Err(violation);
            }
            if len > 0 {
                let mut buf = [0u8; MAX_IO as usize];
                a.mem_read(MEM, src as u64, &mut buf[..len as usize])?;
                a.output_append(&buf[..len as usize])?;
            }
            Ok(())
        }
        _ => Err(Fault::Trap(TrapCode::UnsupportedImport)),
    }
}

/// Executes `op`, the instruction at `a.pc()`: the machine's one-step transition function.
#[inline(always)]
pub fn exec_op<A: Access>(a: &mut A, op: &Op) -> Acc<(), A::Error> {
    let pc = a.pc();
    a.jump(pc + 1);
    match *op {
        Op::Unreachable => return Err(Fault::Trap(TrapCode::Unreachable)),
        Op::Nop => {}
        Op::Br(b) => a.branch(b)?,
        Op::BrIf(b) => {
            if a.pop()? as u32 != 0 {
                a.branch(b)?;
            }
        }
        Op::BrUnless(target) => {
            if a.pop()? as u32 == 0 {
                a.jump(target);
            }
        }
        Op::BrTable { len } => {
            let i = a.pop()? as u32;
            a.jump(pc + 1 + i.min(len));
        }
        Op::Return { results } => a.ret(results)?,
        Op::Call(f) => match a.abi_id(f)? {
            Some(id) => abi_call(a, id)?,
            None => a.call(f)?,
        },
        Op::CallIndirect { type_id, table } => {
            let i = a.pop()? as u32;
            if i >= a.table_size(table)? {
                return Err(Fault::Trap(TrapCode::UndefinedElement));
            }
            let f = slot_to_ref(a.table_get(table, i)?).ok_or(TrapCode::UninitializedElement)?;
            if a.func_type_id(f)? != type_id {
                return Err(Fault::Trap(TrapCode::IndirectCallTypeMismatch));
            }
            match a.abi_id(f)? {
                Some(id) => abi_call(a, id)?,
                None => a.call(f)?,
            }
        }
        Op::Drop => {
            a.pop()?;
        }
        Op::Select => {
            let c = a.pop()? as u32;
            let b = a.pop()?;
            let v = a.pop()?;
            a.push(if c != 0 { v } else { b })?;
        }
        Op::LocalGet(i) => {
            let v = a.local(i)?;
            a.push(v)?;
        }
        Op::LocalSet(i) => {
            let v = a.pop()?;
            a.set_local(i, v)?;
        }
        Op::LocalTee(i) => {
            let v = a.pop()?;
            a.set_local(i, v)?;
            a.push(v)?;
        }
        Op::GlobalGet(g) => {
            let v = a.global(g)?;
            a.push(v)?;
        }
        Op::GlobalSet(g) => {
            let v = a.pop()?;
            a.set_global(g, v)?;
        }
        Op::Load { kind, mem, offset } => load(a, kind, mem, offset)?,
        Op::Store { kind, mem, offset } => store(a, kind, mem, offset)?,
        Op::LoadLane { bytes, lane, mem, offset } => {
            let v = a.pop()?;
            let addr = ea(a, offset)?;
            let n = bytes as usize;
            check_mem(a, mem, addr, n as u64)?;
            let mut buf = [0u8; 8];
            a.mem_read(mem, addr, &mut buf[..n])?;
            let mut out = v.to_le_bytes();
            let at = lane as usize * n;
            out[at..at + n].copy_from_slice(&buf[..n]);
            a.push(u128::from_le_bytes(out))?;
        }
        Op::StoreLane { bytes, lane, mem, offset } => {
            let v = a.pop()?;
            let addr = ea(a, offset)?;
            let n = bytes as usize;
            check_mem(a, mem, addr, n as u64)?;
            let at = lane as usize * n;
            a.mem_write(mem, addr, &v.to_le_bytes()[at..at + n])?;
        }
        Op::MemorySize(m) => {
            let p = a.mem_pages(m)?;
            a.push(p as Slot)?;
        }
        Op::MemoryGrow(m) => {
            let delta = a.pop()? as u32;
            let r = a.mem_grow(m, delta)?.unwrap_or(u32::MAX);
            a.push(r as Slot)?;
        }
        Op::MemoryFill(m) => {
            let (d, val, n) = bulk_operands(a)?;
            check_mem(a, m, d as u64, n as u64)?;
            let c = n.min(BULK_CHUNK);
            if c > 0 {
                let buf = [val as u8; BULK_CHUNK as usize];
                a.mem_write(m, d as u64, &buf[..c as usize])?;
            }
            bulk_continue(a, pc, d.wrapping_add(c), val, n - c)?;
        }
        Op::MemoryCopy { dst, src } => {
            let (d, s, n) = bulk_operands(a)?;
            let s = s as u32;
            check_mem(a, src, s as u64, n as u64)?;
            check_mem(a, dst, d as u64, n as u64)?;
            let c = n.min(BULK_CHUNK);
            // Copy backwards (last chunk first) when a same-memory overlap would clobber the
            // source; the remaining range then shrinks from its end.
            let backward = dst == src && d > s;
            let (from, to) = if backward { (s + n - c, d + n - c) } else { (s, d) };
            if c > 0 {
                let mut buf = [0u8; BULK_CHUNK as usize];
                a.mem_read(src, from as u64, &mut buf[..c as usize])?;
                a.mem_write(dst, to as u64, &buf[..c as usize])?;
            }
            if backward {
                bulk_continue(a, pc, d, s as Slot, n - c)?;
            } else {
                bulk_continue(a, pc, d + c, (s + c) as Slot, n - c)?;
            }
        }
        Op::MemoryInit { data, mem } => {
            let (d, s, n) = bulk_operands(a)?;
            let s = s as u32;
            if s as u64 + n as u64 > a.data_len(data)? as u64 {
                return Err(Fault::Trap(TrapCode::MemoryOutOfBounds));
            }
            check_mem(a, mem, d as u64, n as u64)?;
            let c = n.min(BULK_CHUNK);
            if c > 0 {
                let mut buf = [0u8; BULK_CHUNK as usize];
                a.data_read(data, s, &mut buf[..c as usize])?;
                a.mem_write(mem, d as u64, &buf[..c as usize])?;
            }
            bulk_continue(a, pc, d + c, (s + c) as Slot, n - c)?;
        }
        Op::DataDrop(d) => a.data_drop(d)?,
        Op::Const32(v) => a.push(v as Slot)?,
        Op::Const64(v) => a.push(v as Slot)?,
        Op::Num(n) => {
            let stack = a.operands(num_arity(n))?;
            num::exec(n, stack)?;
        }
        Op::Simd(s) => {
            let stack = a.operands(3)?;
            simd::exec(s, stack);
        }
        Op::RefNull => a.push(NULL_REF)?,
        Op::RefIsNull => {
            let r = a.pop()?;
            a.push((r == NULL_REF) as Slot)?;
        }
        Op::RefFunc(f) => a.push(ref_to_slot(Some(f)))?,
        Op::TableGet(t) => {
            let i = a.pop()? as u32;
            if i >= a.table_size(t)? {
                return Err(Fault::Trap(TrapCode::TableOutOfBounds));
            }
            let v = a.table_get(t, i)?;
            a.push(v)?;
        }
        Op::TableSet(t) => {
            let v = a.pop()?;
            let i = a.pop()? as u32;
            if i >= a.table_size(t)? {
                return Err(Fault::Trap(TrapCode::TableOutOfBounds));
            }
            a.table_set(t, i, v)?;
        }
        Op::TableSize(t) => {
            let n = a.table_size(t)?;
            a.push(n as Slot)?;
        }
        Op::TableGrow(t) => {
            let n = a.pop()? as u32;
            let init = a.pop()?;
            let r = a.table_grow(t, n, init)?.unwrap_or(u32::MAX);
            a.push(r as Slot)?;
        }
        Op::TableFill(t) => {
            let (d, val, n) = bulk_operands(a)?;
            if d as u64 + n as u64 > a.table_size(t)? as u64 {
                return Err(Fault::Trap(TrapCode::TableOutOfBounds));
            }
            let c = n.min(TABLE_CHUNK);
            for i in 0..c {
                a.table_set(t, d + i, val)?;
            }
            bulk_continue(a, pc, d.wrapping_add(c), val, n - c)?;
        }
        Op::TableCopy { dst, src } => {
            let (d, s, n) = bulk_operands(a)?;
            let s = s as u32;
            if d as u64 + n as u64 > a.table_size(dst)? as u64 || s as u64 + n as u64 > a.table_size(src)? as u64 {
                return Err(Fault::Trap(TrapCode::TableOutOfBounds));
            }
            let c = n.min(TABLE_CHUNK);
            let backward = dst == src && d > s;
            let (from, to) = if backward { (s + n - c, d + n - c) } else { (s, d) };
            // Element by element in the overlap-safe order.
            for k in 0..c {
                let i = if backward { c - 1 - k } else { k };
                let v = a.table_get(src, from + i)?;
                a.table_set(dst, to + i, v)?;
            }
            if backward {
                bulk_continue(a, pc, d, s as Slot, n - c)?;
            } else {
                bulk_continue(a, pc, d + c, (s + c) as Slot, n - c)?;
            }
        }
        Op::TableInit { elem, table } => {
            let (d, s, n) = bulk_operands(a)?;
            let s = s as u32;
            if s as u64 + n as u64 > a.elem_len(elem)? as u64 || d as u64 + n as u64 > a.table_size(table)? as u64 {
                return Err(Fault::Trap(TrapCode::TableOutOfBounds));
            }
            let c = n.min(TABLE_CHUNK);
            for i in 0..c {
                let v = a.elem_get(elem, s + i)?;
                a.table_set(table, d + i, v)?;
            }
            bulk_continue(a, pc, d + c, (s + c) as Slot, n - c)?;
        }
        Op::ElemDrop(e) => a.elem_drop(e)?,
        // Fused instructions: exactly the effect of their parts in order.
        Op::AddImm32(c) => {
            let v = a.pop()? as u32;
            a.push(v.wrapping_add(c) as Slot)?;
        }
        Op::LocalGet2(x, y) => {
            let v = a.local(x)?;
            a.push(v)?;
            let w = a.local(y)?;
            a.push(w)?;
        }
        Op::LocalGetConst32(x, c) => {
            let v = a.local(x)?;
            a.push(v)?;
            a.push(c as Slot)?;
        }
        Op::LocalAddImm32(x, c) => {
            let v = a.local(x)? as u32;
            a.push(v.wrapping_add(c) as Slot)?;
        }
        Op::AddImm32Tee(c, x) => {
            let v = (a.pop()? as u32).wrapping_add(c) as Slot;
            a.set_local(x, v)?;
            a.push(v)?;
        }
        Op::AddTee(x) => {
            let r = a.pop()? as u32;
            let l = a.pop()? as u32;
            let v = l.wrapping_add(r) as Slot;
            a.set_local(x, v)?;
            a.push(v)?;
        }
        Op::LocalAddImm32Tee(y, c, x) => {
            let v = (a.local(y)? as u32).wrapping_add(c) as Slot;
            a.set_local(x, v)?;
            a.push(v)?;
        }
        Op::LoadLocal { kind, local, mem, offset } => {
            let addr = a.local(local)? as u32 as u64 + offset as u64;
            load_at(a, kind, mem, addr)?;
        }
        Op::LoadAddImm { kind, imm, mem, offset } => {
            let addr = (a.pop()? as u32).wrapping_add(imm) as u64 + offset as u64;
            load_at(a, kind, mem, addr)?;
        }
    }
    Ok(())
}
