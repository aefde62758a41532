//! A guest's program commitment computed in bounded stages, for registration on the IC: one update message may
//! execute at most 40B instructions, and hashing the code tree of 2 MiB of code (two SHA3-256 permutations per
//! op) takes more than that. [`StagedCommitment`] keeps the loaded machine and the code tree's left frontier
//! between stages; each [`StagedCommitment::advance`] hashes a bounded number of ops. The result is the
//! commitment [`crate::guest::GuestProgram::commitment`] gives (a test checks it for every stage size).

use crate::guest::GuestProgram;
use crate::hash::{MerkleFrontier, depth_for, empties};
use crate::machine::Machine;
use crate::program::{ProgramCommitment, code_empty_leaf, index_around_code, instr_leaf};
use crate::root::StateHeader;

/// A program commitment in progress: the instantiated guest, its initial header, and the code hashed so far.
#[derive(Debug)]
pub struct StagedCommitment {
    machine: Machine,
    header: StateHeader,
    /// The next op to hash: its function's index and its index in the function.
    func: usize,
    op: usize,
    total: u64,
    code: MerkleFrontier,
}

impl StagedCommitment {
    /// Starts from a freshly instantiated guest machine (see [`GuestProgram::new_staged`]).
    pub(crate) fn new(machine: Machine) -> Self {
        let header = GuestProgram::header_of(&machine);
        let total = machine.program.funcs.iter().map(|f| f.code.ops.len() as u64).sum();
        Self { machine, header, func: 0, op: 0, total, code: MerkleFrontier::new() }
    }

    /// Ops in the program's code tree.
    pub fn ops_total(&self) -> u64 {
        self.total
    }

    /// Ops hashed so far.
    pub fn ops_done(&self) -> u64 {
        self.code.len()
    }

    /// Whether every op is hashed (then [`StagedCommitment::finish`] answers).
    pub fn is_complete(&self) -> bool {
        self.ops_done() == self.total
    }

    /// Hashes up to `max_ops` more ops into the code tree; returns how many it hashed.
    pub fn advance(&mut self, max_ops: u64) -> u64 {
        let funcs = &self.machine.program.funcs;
        let mut hashed = 0;
        while hashed < max_ops && self.func < funcs.len() {
            let ops = &funcs[self.func].code.ops;
            let take = (ops.len() - self.op).min(usize::try_from(max_ops - hashed).unwrap_or(usize::MAX));
            for op in &ops[self.op..self.op + take] {
                self.code.push(instr_leaf(&op.encode()));
            }
            self.op += take;
            hashed += take as u64;
            if self.op == ops.len() {
                self.func += 1;
                self.op = 0;
            }
        }
        hashed
    }

    /// The program commitment and the initial header (I/O left empty, as
    /// [`GuestProgram::initial_header`]) once every op is hashed; `None` before.
    pub fn finish(&self) -> Option<(ProgramCommitment, StateHeader)> {
        if !self.is_complete() {
            return None;
        }
        let depth = depth_for(self.total);
        let code_root = self.code.root(depth, &empties(code_empty_leaf(), depth))?;
        let (funcs, datas, elems, shape) = self.machine.store_parts();
        let lens: Vec<_> = funcs.iter().map(|(e, ops)| (*e, ops.len() as u32)).collect();
        let (commitment, ..) = index_around_code(&lens, &datas, &elems, shape, code_root);
        Some((commitment, self.header))
    }
}

#[cfg(test)]
mod tests {
    use crate::guest::GuestProgram;
    use crate::limits::Limits;

    const GUEST: &str = r#"(module
      (import "opml" "output_write" (func $out (param i32 i32)))
      (memory (export "memory") 1)
      (global $g (mut i32) (i32.const 3))
      (data (i32.const 16) "hello")
      (func $sq (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
      (func (export "opml_step") (result i32)
        (global.set $g (call $sq (global.get $g)))
        (call $out (i32.const 16) (i32.const 5))
        (i32.const 0)))"#;

    #[test]
    fn every_stage_size_gives_the_guests_commitment() {
        let wasm = wat::parse_str(GUEST).unwrap();
        for limits in [Limits::default(), Limits { max_call_depth: 77, ..Limits::default() }] {
            let program = GuestProgram::new(&wasm).unwrap();
            let want = (program.commitment(limits).unwrap(), program.initial_header(limits).unwrap());
            for stage in [1, 2, 3, 7, 1000] {
                let (_, mut s) = GuestProgram::new_staged(&wasm, limits).unwrap();
                let total = s.ops_total();
                assert!(total > 10, "the guest has {total} ops");
                let mut stages = 0;
                while !s.is_complete() {
                    assert_eq!(s.finish(), None, "no commitment before the last op");
                    let before = s.ops_done();
                    assert_eq!(s.advance(stage), stage.min(total - before));
                    stages += 1;
                }
                assert_eq!(stages, total.div_ceil(stage), "stage size {stage}");
                assert_eq!(s.advance(stage), 0, "nothing left to hash");
                assert_eq!(s.finish(), Some(want), "stage size {stage}");
            }
        }
    }
}
