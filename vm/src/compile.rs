//! Translation of one validated function body into the flat [`Op`] list.
//!
//! The body is validated operator by operator with wasmparser's `FuncValidator`, whose operand and
//! control stacks give the static stack heights that branches need: a branch keeps the label's
//! arity and drops everything between it and the label's entry height. Code after an unconditional
//! transfer (`br`, `return`, `unreachable`, ...) is validated but not emitted: it can never run.

use wasmparser::{BlockType, FrameKind, FuncValidator, FunctionBody, Operator, ValidatorResources};

use crate::error::ModuleError;
use crate::instr::{Branch, LoadKind, NumOp, Op, StoreKind};
use crate::module::Code;
use crate::simd::SimdOp;
use crate::value::{FuncType, ValType};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Block,
    Loop,
    If,
    Else,
    Func,
}

struct Ctrl {
    kind: Kind,
    /// For loops: the op index a branch to this label jumps to.
    loop_start: u32,
    /// Ops whose branch target is this label's end (patched at `end`).
    patches: Vec<usize>,
    /// For `if`: the `BrUnless` to patch to the `else` arm or the end.
    if_jump: Option<usize>,
    /// Entered in unreachable code: nothing inside is emitted.
    dead: bool,
}

struct Compiler<'a> {
    ops: Vec<Op>,
    /// The latest op index a branch, loop or `else` may jump to: an op emitted there must stay a
    /// separate op, so it is never fused into its predecessor.
    label: usize,
    ctrl: Vec<Ctrl>,
    types: &'a [FuncType],
    results: u32,
}

fn unsupported(message: String, offset: usize) -> ModuleError {
    ModuleError::Unsupported { message, offset }
}

impl Compiler<'_> {
    fn pc(&self) -> u32 {
        self.ops.len() as u32
    }

    fn block_arity(&self, bt: BlockType) -> (u32, u32) {
        match bt {
            BlockType::Empty => (0, 0),
            BlockType::Type(_) => (0, 1),
            BlockType::FuncType(idx) => {
                let t = &self.types[idx as usize];
                (t.params.len() as u32, t.results.len() as u32)
            }
        }
    }

    /// The branch for `br depth` taken when the operand stack is `height` slots high.
    fn branch(
        &mut self,
        fv: &FuncValidator<ValidatorResources>,
        depth: u32,
        height: u32,
        at: usize,
        offset: usize,
    ) -> Result<Branch, ModuleError> {
        let frame =
            fv.get_control_frame(depth as usize).ok_or_else(|| unsupported(format!("branch depth {depth}"), offset))?;
        let (params, results) = self.block_arity(frame.block_type);
        let keep = if frame.kind == FrameKind::Loop { params } else { results };
        let base = frame.height as u32;
        let drop = height
            .checked_sub(base + keep)
            .ok_or_else(|| unsupported("inconsistent branch stack height".into(), offset))?;
        let idx = self.ctrl.len() - 1 - depth as usize;
        let target = if self.ctrl[idx].kind == Kind::Loop {
            self.ctrl[idx].loop_start
        } else {
            self.ctrl[idx].patches.push(at);
            u32::MAX
        };
        Ok(Branch { target, drop, keep })
    }

    /// Marks the next op index as a branch target.
    fn bind_label(&mut self) {
        self.label = self.ops.len();
    }

    /// Appends `op`, fusing it into the previous op when they form one of the fused instructions
    /// (the op mix of compiled Rust is dominated by these pairs; fusing halves their steps).
    fn emit(&mut self, op: Op) {
        if self.ops.len() != self.label
            && let Some(prev) = self.ops.last_mut()
        {
            {
                let fused = match (*prev, op) {
                    (Op::Const32(c), Op::Num(NumOp::I32Add)) => Some(Op::AddImm32(c)),
                    (Op::LocalGetConst32(x, c), Op::Num(NumOp::I32Add)) => Some(Op::LocalAddImm32(x, c)),
                    (Op::LocalGet(x), Op::LocalGet(y)) => Some(Op::LocalGet2(x, y)),
                    (Op::LocalGet(x), Op::Const32(c)) => Some(Op::LocalGetConst32(x, c)),
                    (Op::AddImm32(c), Op::LocalTee(x)) => Some(Op::AddImm32Tee(c, x)),
                    (Op::Num(NumOp::I32Add), Op::LocalTee(x)) => Some(Op::AddTee(x)),
                    (Op::LocalAddImm32(y, c), Op::LocalTee(x)) => Some(Op::LocalAddImm32Tee(y, c, x)),
                    (Op::LocalGet(local), Op::Load { kind, mem, offset }) => {
                        Some(Op::LoadLocal { kind, local, mem, offset })
                    }
                    (Op::AddImm32(imm), Op::Load { kind, mem, offset }) => {
                        Some(Op::LoadAddImm { kind, imm, mem, offset })
                    }
                    _ => None,
                };
                if let Some(f) = fused {
                    *prev = f;
                    return;
                }
            }
        }
        self.ops.push(op);
    }

    fn patch(&mut self, at: usize, target: u32) {
        match &mut self.ops[at] {
            Op::Br(b) | Op::BrIf(b) => b.target = target,
            Op::BrUnless(t) => *t = target,
            _ => unreachable!("patching a non-branch op"),
        }
    }
}

/// Reads a body's local declarations into the validator; returns the runs of locals and their count.
fn read_locals(
    fv: &mut FuncValidator<ValidatorResources>,
    body: &FunctionBody<'_>,
) -> Result<(Vec<(u32, ValType)>, u32), ModuleError> {
    let mut locals = Vec::new();
    let mut num_locals: u32 = 0;
    let mut reader = body.get_locals_reader()?;
    for _ in 0..reader.get_count() {
        let offset = reader.original_position();
        let (count, t) = reader.read()?;
        fv.define_locals(offset, count, t)?;
        let vt = ValType::from_wasmparser(t).ok_or_else(|| unsupported(format!("local type {t:?}"), offset))?;
        num_locals = num_locals.checked_add(count).ok_or_else(|| unsupported("too many locals".into(), offset))?;
        if count > 0 {
            locals.push((count, vt));
        }
    }
    Ok((locals, num_locals))
}

/// WebAssembly 2.0 encodes the memory index of `memory.size`/`memory.grow` as one reserved 0x00 byte; wasmparser
/// reads a LEB128 (multi-memory), so an operator of `len` bytes longer than 2 is a longer encoding of 0: rejected.
fn check_memory_index(op: &Operator<'_>, len: usize, offset: usize) -> Result<(), ModuleError> {
    if matches!(op, Operator::MemorySize { .. } | Operator::MemoryGrow { .. }) && len != 2 {
        return Err(ModuleError::Invalid { message: "zero byte expected".into(), offset });
    }
    Ok(())
}

/// Validates and compiles one function body.
pub(crate) fn compile_body(
    fv: &mut FuncValidator<ValidatorResources>,
    body: &FunctionBody<'_>,
    ty: &FuncType,
    types: &[FuncType],
) -> Result<Code, ModuleError> {
    let (locals, num_locals) = read_locals(fv, body)?;
    let mut c = Compiler {
        ops: Vec::new(),
        label: 0,
        ctrl: vec![Ctrl { kind: Kind::Func, loop_start: 0, patches: Vec::new(), if_jump: None, dead: false }],
        types,
        results: ty.results.len() as u32,
    };
    let mut max_height: u32 = 0;
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        let (op, offset) = ops.read_with_offset()?;
        check_memory_index(&op, ops.original_position() - offset, offset)?;
        let height = fv.operand_stack_height();
        let unreachable = fv.get_control_frame(0).is_some_and(|f| f.unreachable);
        let dead = c.ctrl.last().is_some_and(|f| f.dead) || unreachable;
        // Branch info must be read before validation pops the frames/operands.
        let pre = if dead {
            None
        } else {
            match pre_branch(&mut c, fv, &op, height, offset) {
                Ok(pre) => pre,
                Err(e) => {
                    // An invalid branch (unknown label, wrong operand height): report the
                    // validator's error, not the compiler's inconsistency.
                    fv.op(offset, &op)?;
                    return Err(e);
                }
            }
        };
        fv.op(offset, &op)?;
        max_height = max_height.max(fv.operand_stack_height());
        translate(&mut c, op, pre, dead, unreachable, offset)?;
    }
    fv.finish(ops.original_position())?;
    Ok(Code {
        ops: c.ops,
        params: ty.params.len() as u32,
        locals,
        num_locals,
        results: ty.results.len() as u32,
        max_height,
    })
}

/// Validates one function body and measures its frame (parameters, locals, highest operand height) without
/// compiling it: what the stack-metering rewrite needs of the user's module, whose compiled code is never run (the
/// rewritten module is compiled instead). Reports the same errors as [`compile_body`] for every body the validator
/// rejects: local declarations, the reserved `memory.size`/`memory.grow` byte, then each operator in order. The
/// compiler's own rejections of validated operators (unsupported operators, a safety net: none of
/// [`crate::module::FEATURES`] reaches them) are left to the compilation of the rewritten module.
pub(crate) fn measure_body(
    fv: &mut FuncValidator<ValidatorResources>,
    body: &FunctionBody<'_>,
    ty: &FuncType,
) -> Result<Code, ModuleError> {
    let (locals, num_locals) = read_locals(fv, body)?;
    let mut max_height: u32 = 0;
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        let (op, offset) = ops.read_with_offset()?;
        check_memory_index(&op, ops.original_position() - offset, offset)?;
        fv.op(offset, &op)?;
        max_height = max_height.max(fv.operand_stack_height());
    }
    fv.finish(ops.original_position())?;
    Ok(Code {
        ops: Vec::new(),
        params: ty.params.len() as u32,
        locals,
        num_locals,
        results: ty.results.len() as u32,
        max_height,
    })
}

/// Branch ops emitted for one operator, computed from the pre-validation stacks.
enum Pre {
    One(Op),
    Table(Vec<Op>),
}

fn pre_branch(
    c: &mut Compiler<'_>,
    fv: &FuncValidator<ValidatorResources>,
    op: &Operator<'_>,
    height: u32,
    offset: usize,
) -> Result<Option<Pre>, ModuleError> {
    let at = c.ops.len();
    Ok(match op {
        Operator::Br { relative_depth } => Some(Pre::One(Op::Br(c.branch(fv, *relative_depth, height, at, offset)?))),
        Operator::BrIf { relative_depth } => {
            let h = height.saturating_sub(1);
            Some(Pre::One(Op::BrIf(c.branch(fv, *relative_depth, h, at, offset)?)))
        }
        Operator::BrTable { targets } => {
            let h = height.saturating_sub(1);
            let len = targets.len();
            let mut list = vec![Op::BrTable { len }];
            let mut at = at + 1;
            for t in targets.targets() {
                list.push(Op::Br(c.branch(fv, t?, h, at, offset)?));
                at += 1;
            }
            list.push(Op::Br(c.branch(fv, targets.default(), h, at, offset)?));
            Some(Pre::Table(list))
        }
        _ => None,
    })
}

fn translate(
    c: &mut Compiler<'_>,
    op: Operator<'_>,
    pre: Option<Pre>,
    dead: bool,
    unreachable_before: bool,
    offset: usize,
) -> Result<(), ModuleError> {
    use Operator as O;
    // Structure first: these are handled in dead code too.
    match op {
        O::Block { .. } => {
            c.ctrl.push(Ctrl { kind: Kind::Block, loop_start: 0, patches: Vec::new(), if_jump: None, dead });
            return Ok(());
        }
        O::Loop { .. } => {
            c.bind_label();
            let start = c.pc();
            c.ctrl.push(Ctrl { kind: Kind::Loop, loop_start: start, patches: Vec::new(), if_jump: None, dead });
            return Ok(());
        }
        O::If { .. } => {
            let if_jump = if dead {
                None
            } else {
                c.emit(Op::BrUnless(u32::MAX));
                Some(c.ops.len() - 1)
            };
            c.ctrl.push(Ctrl { kind: Kind::If, loop_start: 0, patches: Vec::new(), if_jump, dead });
            return Ok(());
        }
        O::Else => {
            let top = c.ctrl.len() - 1;
            if !c.ctrl[top].dead {
                if !unreachable_before {
                    let at = c.ops.len();
                    c.emit(Op::Br(Branch { target: u32::MAX, drop: 0, keep: 0 }));
                    c.ctrl[top].patches.push(at);
                }
                if let Some(j) = c.ctrl[top].if_jump.take() {
                    c.bind_label();
                    let pc = c.pc();
                    c.patch(j, pc);
                }
            }
            c.ctrl[top].kind = Kind::Else;
            return Ok(());
        }
        O::End => {
            let frame = c.ctrl.pop().ok_or_else(|| unsupported("unbalanced end".into(), offset))?;
            c.bind_label();
            if frame.kind == Kind::Func {
                let results = c.results;
                c.emit(Op::Return { results });
            }
            let end = if frame.kind == Kind::Func { c.pc() - 1 } else { c.pc() };
            for at in frame.patches {
                c.patch(at, end);
            }
            if let Some(j) = frame.if_jump {
                c.patch(j, end);
            }
            return Ok(());
        }
        _ => {}
    }
    if dead {
        return Ok(());
    }
    match pre {
        Some(Pre::One(op)) => {
            c.emit(op);
            return Ok(());
        }
        Some(Pre::Table(list)) => {
            c.ops.extend(list);
            return Ok(());
        }
        None => {}
    }
    let mem = |m: &wasmparser::MemArg| -> Result<(u32, u32), ModuleError> {
        let off = u32::try_from(m.offset).map_err(|_| unsupported("64-bit offset".into(), offset))?;
        Ok((m.memory, off))
    };
    macro_rules! load {
        ($m:expr, $k:ident) => {{
            let (mem, offset) = mem(&$m)?;
            Op::Load { kind: LoadKind::$k, mem, offset }
        }};
    }
    macro_rules! store {
        ($m:expr, $k:ident) => {{
            let (mem, offset) = mem(&$m)?;
            Op::Store { kind: StoreKind::$k, mem, offset }
        }};
    }
    macro_rules! lane {
        ($v:ident, $m:expr, $lane:expr, $bytes:expr) => {{
            let (mem, offset) = mem(&$m)?;
            Op::$v { bytes: $bytes, lane: $lane, mem, offset }
        }};
    }
    let compiled = match op {
        O::Unreachable => Op::Unreachable,
        O::Nop => Op::Nop,
        O::Return => Op::Return { results: c.results },
        O::Call { function_index } => Op::Call(function_index),
        O::CallIndirect { type_index, table_index } => Op::CallIndirect { type_id: type_index, table: table_index },
        O::Drop => Op::Drop,
        O::Select | O::TypedSelect { .. } => Op::Select,
        O::LocalGet { local_index } => Op::LocalGet(local_index),
        O::LocalSet { local_index } => Op::LocalSet(local_index),
        O::LocalTee { local_index } => Op::LocalTee(local_index),
        O::GlobalGet { global_index } => Op::GlobalGet(global_index),
        O::GlobalSet { global_index } => Op::GlobalSet(global_index),
        O::I32Load { memarg } | O::F32Load { memarg } => load!(memarg, I32),
        O::I64Load { memarg } | O::F64Load { memarg } => load!(memarg, I64),
        O::I32Load8S { memarg } => load!(memarg, I32_8S),
        O::I32Load8U { memarg } => load!(memarg, I32_8U),
        O::I32Load16S { memarg } => load!(memarg, I32_16S),
        O::I32Load16U { memarg } => load!(memarg, I32_16U),
        O::I64Load8S { memarg } => load!(memarg, I64_8S),
        O::I64Load8U { memarg } => load!(memarg, I64_8U),
        O::I64Load16S { memarg } => load!(memarg, I64_16S),
        O::I64Load16U { memarg } => load!(memarg, I64_16U),
        O::I64Load32S { memarg } => load!(memarg, I64_32S),
        O::I64Load32U { memarg } => load!(memarg, I64_32U),
        O::I32Store { memarg } | O::F32Store { memarg } | O::I64Store32 { memarg } => {
            store!(memarg, B4)
        }
        O::I64Store { memarg } | O::F64Store { memarg } => store!(memarg, B8),
        O::I32Store8 { memarg } | O::I64Store8 { memarg } => store!(memarg, B1),
        O::I32Store16 { memarg } | O::I64Store16 { memarg } => store!(memarg, B2),
        O::V128Load { memarg } => load!(memarg, V128),
        O::V128Load8x8S { memarg } => load!(memarg, V128_8x8S),
        O::V128Load8x8U { memarg } => load!(memarg, V128_8x8U),
        O::V128Load16x4S { memarg } => load!(memarg, V128_16x4S),
        O::V128Load16x4U { memarg } => load!(memarg, V128_16x4U),
        O::V128Load32x2S { memarg } => load!(memarg, V128_32x2S),
        O::V128Load32x2U { memarg } => load!(memarg, V128_32x2U),
        O::V128Load8Splat { memarg } => load!(memarg, V128Splat8),
        O::V128Load16Splat { memarg } => load!(memarg, V128Splat16),
        O::V128Load32Splat { memarg } => load!(memarg, V128Splat32),
        O::V128Load64Splat { memarg } => load!(memarg, V128Splat64),
        O::V128Load32Zero { memarg } => load!(memarg, V128Zero32),
        O::V128Load64Zero { memarg } => load!(memarg, V128Zero64),
        O::V128Store { memarg } => store!(memarg, B16),
        O::V128Load8Lane { memarg, lane } => lane!(LoadLane, memarg, lane, 1),
        O::V128Load16Lane { memarg, lane } => lane!(LoadLane, memarg, lane, 2),
        O::V128Load32Lane { memarg, lane } => lane!(LoadLane, memarg, lane, 4),
        O::V128Load64Lane { memarg, lane } => lane!(LoadLane, memarg, lane, 8),
        O::V128Store8Lane { memarg, lane } => lane!(StoreLane, memarg, lane, 1),
        O::V128Store16Lane { memarg, lane } => lane!(StoreLane, memarg, lane, 2),
        O::V128Store32Lane { memarg, lane } => lane!(StoreLane, memarg, lane, 4),
        O::V128Store64Lane { memarg, lane } => lane!(StoreLane, memarg, lane, 8),
        O::MemorySize { mem } => Op::MemorySize(mem),
        O::MemoryGrow { mem } => Op::MemoryGrow(mem),
        O::MemoryFill { mem } => Op::MemoryFill(mem),
        O::MemoryCopy { dst_mem, src_mem } => Op::MemoryCopy { dst: dst_mem, src: src_mem },
        O::MemoryInit { data_index, mem } => Op::MemoryInit { data: data_index, mem },
        O::DataDrop { data_index } => Op::DataDrop(data_index),
        O::I32Const { value } => Op::Const32(value as u32),
        O::F32Const { value } => Op::Const32(value.bits()),
        O::I64Const { value } => Op::Const64(value as u64),
        O::F64Const { value } => Op::Const64(value.bits()),
        O::RefNull { .. } => Op::RefNull,
        O::RefIsNull => Op::RefIsNull,
        O::RefFunc { function_index } => Op::RefFunc(function_index),
        O::TableGet { table } => Op::TableGet(table),
        O::TableSet { table } => Op::TableSet(table),
        O::TableSize { table } => Op::TableSize(table),
        O::TableGrow { table } => Op::TableGrow(table),
        O::TableFill { table } => Op::TableFill(table),
        O::TableCopy { dst_table, src_table } => Op::TableCopy { dst: dst_table, src: src_table },
        O::TableInit { elem_index, table } => Op::TableInit { elem: elem_index, table },
        O::ElemDrop { elem_index } => Op::ElemDrop(elem_index),
        ref other => {
            if let Some(n) = num_op(other) {
                Op::Num(n)
            } else if let Some(s) = SimdOp::from_operator(other) {
                Op::Simd(s)
            } else {
                return Err(unsupported(format!("operator {other:?} is not supported"), offset));
            }
        }
    };
    c.emit(compiled);
    Ok(())
}

fn num_op(op: &Operator<'_>) -> Option<NumOp> {
    macro_rules! map {
        ($($name:ident)*) => {
            match op {
                $(Operator::$name => Some(NumOp::$name),)*
                _ => None,
            }
        };
    }
    map! {
        I32Eqz I32Eq I32Ne I32LtS I32LtU I32GtS I32GtU I32LeS I32LeU I32GeS I32GeU
        I64Eqz I64Eq I64Ne I64LtS I64LtU I64GtS I64GtU I64LeS I64LeU I64GeS I64GeU
        F32Eq F32Ne F32Lt F32Gt F32Le F32Ge
        F64Eq F64Ne F64Lt F64Gt F64Le F64Ge
        I32Clz I32Ctz I32Popcnt I32Add I32Sub I32Mul I32DivS I32DivU I32RemS I32RemU
        I32And I32Or I32Xor I32Shl I32ShrS I32ShrU I32Rotl I32Rotr
        I64Clz I64Ctz I64Popcnt I64Add I64Sub I64Mul I64DivS I64DivU I64RemS I64RemU
        I64And I64Or I64Xor I64Shl I64ShrS I64ShrU I64Rotl I64Rotr
        F32Abs F32Neg F32Ceil F32Floor F32Trunc F32Nearest F32Sqrt
        F32Add F32Sub F32Mul F32Div F32Min F32Max F32Copysign
        F64Abs F64Neg F64Ceil F64Floor F64Trunc F64Nearest F64Sqrt
        F64Add F64Sub F64Mul F64Div F64Min F64Max F64Copysign
        I32WrapI64 I32TruncF32S I32TruncF32U I32TruncF64S I32TruncF64U
        I64ExtendI32S I64ExtendI32U I64TruncF32S I64TruncF32U I64TruncF64S I64TruncF64U
        F32ConvertI32S F32ConvertI32U F32ConvertI64S F32ConvertI64U F32DemoteF64
        F64ConvertI32S F64ConvertI32U F64ConvertI64S F64ConvertI64U F64PromoteF32
        I32ReinterpretF32 I64ReinterpretF64 F32ReinterpretI32 F64ReinterpretI64
        I32Extend8S I32Extend16S I64Extend8S I64Extend16S I64Extend32S
        I32TruncSatF32S I32TruncSatF32U I32TruncSatF64S I32TruncSatF64U
        I64TruncSatF32S I64TruncSatF32U I64TruncSatF64S I64TruncSatF64U
    }
}
