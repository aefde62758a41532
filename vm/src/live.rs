//! [`Access`] over a full [`Machine`]: the fast stepping path.

use core::convert::Infallible;

use crate::exec::{Acc, Access, Fault};
use crate::host::Host;
use crate::instr::Branch;
use crate::machine::{Frame, Machine, Status};
use crate::trap::TrapCode;
use crate::value::{Slot, Value};

/// A machine together with the host that serves its imports, for one step.
pub(crate) struct Live<'a> {
    pub m: &'a mut Machine,
    pub host: &'a mut dyn Host,
    /// Set by calls and returns (the current function or the status may have changed), so the
    /// interpreter loop checks one flag per step instead of re-reading both.
    pub changed: bool,
}

impl Access for Live<'_> {
    type Error = Infallible;

    #[inline(always)]
    fn pc(&self) -> u32 {
        self.m.pc
    }

    #[inline(always)]
    fn jump(&mut self, pc: u32) {
        self.m.pc = pc;
    }

    #[inline(always)]
    fn pop(&mut self) -> Acc<Slot, Infallible> {
        Ok(self.m.stack.pop().expect("validated: operand present"))
    }

    #[inline(always)]
    fn push(&mut self, v: Slot) -> Acc<(), Infallible> {
        self.m.stack.push(v);
        Ok(())
    }

    #[inline(always)]
    fn operands(&mut self, _n: usize) -> Acc<&mut Vec<Slot>, Infallible> {
        Ok(&mut self.m.stack)
    }

    #[inline(always)]
    fn branch(&mut self, b: Branch) -> Acc<(), Infallible> {
        if b.drop > 0 {
            let stack = &mut self.m.stack;
            let len = stack.len();
            let keep = b.keep as usize;
            let drop = b.drop as usize;
            stack.copy_within(len - keep..len, len - keep - drop);
            stack.truncate(len - drop);
        }
        self.m.pc = b.target;
        Ok(())
    }

    #[inline(always)]
    fn local(&mut self, i: u32) -> Acc<Slot, Infallible> {
        Ok(self.m.stack[self.m.fp as usize + i as usize])
    }

    #[inline(always)]
    fn set_local(&mut self, i: u32, v: Slot) -> Acc<(), Infallible> {
        let fp = self.m.fp as usize;
        self.m.stack[fp + i as usize] = v;
        Ok(())
    }

    #[inline(always)]
    fn global(&mut self, g: u32) -> Acc<Slot, Infallible> {
        Ok(self.m.globals[g as usize])
    }

    #[inline(always)]
    fn set_global(&mut self, g: u32, v: Slot) -> Acc<(), Infallible> {
        self.m.globals[g as usize] = v;
        Ok(())
    }

    #[inline(always)]
    fn mem_pages(&mut self, m: u32) -> Acc<u32, Infallible> {
        Ok(self.m.memories[m as usize].pages())
    }

    #[inline(always)]
    fn mem_read(&mut self, m: u32, addr: u64, out: &mut [u8]) -> Acc<(), Infallible> {
        self.m.memories[m as usize].read_unchecked(addr, out);
        Ok(())
    }

    #[inline(always)]
    fn mem_write(&mut self, m: u32, addr: u64, data: &[u8]) -> Acc<(), Infallible> {
        self.m.memories[m as usize].write_unchecked(addr, data);
        Ok(())
    }

    #[inline(always)]
    fn load_n<const N: usize>(&mut self, m: u32, addr: u64) -> Acc<[u8; N], Infallible> {
        self.m.memories[m as usize].read::<N>(addr).map_err(Fault::Trap)
    }

    #[inline(always)]
    fn store_n<const N: usize>(&mut self, m: u32, addr: u64, bytes: &[u8; N]) -> Acc<(), Infallible> {
        self.m.memories[m as usize].write_n::<N>(addr, bytes).map_err(Fault::Trap)
    }

    fn mem_grow(&mut self, m: u32, delta: u32) -> Acc<Option<u32>, Infallible> {
        let limit = self.m.limits.max_memory_pages;
        Ok(self.m.memories[m as usize].grow(delta, limit))
    }

    fn table_size(&mut self, t: u32) -> Acc<u32, Infallible> {
        Ok(self.m.tables[t as usize].size())
    }

    fn table_get(&mut self, t: u32, i: u32) -> Acc<Slot, Infallible> {
        Ok(self.m.tables[t as usize].elems[i as usize])
    }

    fn table_set(&mut self, t: u32, i: u32, v: Slot) -> Acc<(), Infallible> {
        self.m.tables[t as usize].elems[i as usize] = v;
        Ok(())
    }

    fn table_grow(&mut self, t: u32, n: u32, init: Slot) -> Acc<Option<u32>, Infallible> {
        let limit = self.m.limits.max_table_elements;
        Ok(self.m.tables[t as usize].grow(n, init, limit))
    }

    fn data_len(&mut self, d: u32) -> Acc<u32, Infallible> {
        let len = if self.m.data_dropped[d as usize] { 0 } else { self.m.program.datas[d as usize].len() };
        Ok(len as u32)
    }

    fn data_read(&mut self, d: u32, offset: u32, out: &mut [u8]) -> Acc<(), Infallible> {
        let o = offset as usize;
        out.copy_from_slice(&self.m.program.datas[d as usize][o..o + out.len()]);
        Ok(())
    }

    fn data_drop(&mut self, d: u32) -> Acc<(), Infallible> {
        self.m.data_dropped[d as usize] = true;
        Ok(())
    }

    fn elem_len(&mut self, e: u32) -> Acc<u32, Infallible> {
        let len = if self.m.elem_dropped[e as usize] { 0 } else { self.m.program.elems[e as usize].len() };
        Ok(len as u32)
    }

    fn elem_get(&mut self, e: u32, i: u32) -> Acc<Slot, Infallible> {
        Ok(self.m.program.elems[e as usize][i as usize])
    }

    fn elem_drop(&mut self, e: u32) -> Acc<(), Infallible> {
        self.m.elem_dropped[e as usize] = true;
        Ok(())
    }

    #[inline(always)]
    fn abi_id(&mut self, f: u32) -> Acc<Option<u32>, Infallible> {
        Ok(self.m.program.funcs[f as usize].host.filter(|id| *id >= crate::io::ABI_BASE))
    }

    fn input_len(&mut self, blob: u32) -> Acc<Option<u64>, Infallible> {
        let io = self.m.io.as_ref().ok_or(Fault::Trap(TrapCode::HostError))?;
        Ok(io.inputs.blobs.get(blob as usize).map(|b| b.bytes.len() as u64))
    }

    fn input_read(&mut self, blob: u32, offset: u64, out: &mut [u8]) -> Acc<(), Infallible> {
        let io = self.m.io.as_ref().ok_or(Fault::Trap(TrapCode::HostError))?;
        let o = offset as usize;
        out.copy_from_slice(&io.inputs.blobs[blob as usize].bytes[o..o + out.len()]);
        Ok(())
    }

    fn output_len(&mut self) -> Acc<u64, Infallible> {
        let io = self.m.io.as_ref().ok_or(Fault::Trap(TrapCode::HostError))?;
        Ok(io.output.len() as u64)
    }

    fn output_append(&mut self, bytes: &[u8]) -> Acc<(), Infallible> {
        let io = self.m.io.as_mut().ok_or(Fault::Trap(TrapCode::HostError))?;
        io.output.extend_from_slice(bytes);
        Ok(())
    }

    fn func_type_id(&mut self, f: u32) -> Acc<u32, Infallible> {
        Ok(self.m.program.funcs[f as usize].type_id)
    }

    fn call(&mut self, func: u32) -> Acc<(), Infallible> {
        let m = &mut *self.m;
        let f = &m.program.funcs[func as usize];
        if let Some(id) = f.host {
            let ty = &m.program.types[f.type_id as usize];
            let base = m.stack.len() - ty.params.len();
            let args: Vec<Value> =
                ty.params.iter().zip(&m.stack[base..]).map(|(t, s)| Value::from_slot(*t, *s)).collect();
            let results = self.host.call(id, &args, &mut m.memories)?;
            let ty = &m.program.types[m.program.funcs[func as usize].type_id as usize];
            if results.len() != ty.results.len() || results.iter().zip(&ty.results).any(|(v, t)| v.ty() != *t) {
                return Err(Fault::Trap(TrapCode::HostError));
            }
            m.stack.truncate(base);
            m.stack.extend(results.iter().map(|v| v.to_slot()));
            return Ok(());
        }
        if m.frames.len() as u64 + 1 >= m.limits.max_call_depth as u64 {
            return Err(Fault::Trap(TrapCode::CallStackExhausted));
        }
        let code = &f.code;
        let fp = m.stack.len() - code.params as usize;
        let needed = fp as u64 + code.params as u64 + code.num_locals as u64 + code.max_height as u64;
        if needed > m.limits.max_stack_slots as u64 {
            return Err(Fault::Trap(TrapCode::ValueStackExhausted));
        }
        let grow = code.num_locals as usize;
        m.stack.reserve(grow + code.max_height as usize);
        m.stack.resize(m.stack.len() + grow, 0);
        m.frames.push(Frame { func: m.func, pc: m.pc, fp: m.fp });
        m.func = func;
        m.pc = 0;
        m.fp = fp as u32;
        self.changed = true;
        Ok(())
    }

    fn ret(&mut self, results: u32) -> Acc<(), Infallible> {
        self.changed = true;
        let m = &mut *self.m;
        let fp = m.fp as usize;
        let len = m.stack.len();
        let results = results as usize;
        if len - results != fp {
            m.stack.copy_within(len - results..len, fp);
            m.stack.truncate(fp + results);
        }
        match m.frames.pop() {
            Some(frame) => {
                m.func = frame.func;
                m.pc = frame.pc;
                m.fp = frame.fp;
            }
            None => match m.io.as_mut() {
                // A guest's `opml_step` returned: the segment ends.
                Some(io) => {
                    let more = m.stack.pop().unwrap_or(0) as u32 != 0;
                    m.stack.clear();
                    io.segment += 1;
                    m.status = if more { Status::Idle } else { Status::Halted };
                }
                None => m.status = Status::Returned,
            },
        }
        Ok(())
    }
}

impl Machine {
    /// Executes up to `max_steps` instructions of a running machine, stopping early when the
    /// invocation returns or traps. This is the interpreter loop: the current function's ops are
    /// held in a local borrow of the shared program and refreshed only when a call or return
    /// changes the function.
    pub(crate) fn run_inner(&mut self, host: &mut dyn Host, max_steps: u64) {
        let program = self.program.clone();
        let mut func = self.func;
        let mut ops: &[crate::instr::Op] = &program.funcs[func as usize].code.ops;
        let mut live = Live { m: self, host, changed: false };
        let mut done = 0u64;
        while done < max_steps {
            done += 1;
            let op = &ops[live.m.pc as usize];
            if let Err(fault) = crate::exec::exec_op(&mut live, op) {
                let trap = match fault {
                    Fault::Trap(t) => t,
                    Fault::Access(never) => match never {},
                };
                live.m.status = Status::Trapped(trap);
                break;
            }
            if live.changed {
                live.changed = false;
                if live.m.status != Status::Running {
                    break;
                }
                func = live.m.func;
                ops = &program.funcs[func as usize].code.ops;
            }
        }
        live.m.steps += done;
    }
}
