//! An in-process host of the guest ABI v1, for native (non-wasm32) builds of a guest's code.
//!
//! [`run`] installs the task's input blobs on the current thread, advances a [`Program`] segment by segment
//! until it is done, and returns the output. The SDK's wrappers ([`crate::read_at`], [`crate::write_output`], ...)
//! call this host instead of the `opml` imports, with the same limits: where the VM would trap, it panics.
//! Tests use it to run a model's code natively and compare with the same code run as a guest.

use std::cell::RefCell;
use std::vec::Vec;

use crate::{MAX_IO, MAX_OUTPUT, Program, Step};

struct Host {
    inputs: Vec<Vec<u8>>,
    output: Vec<u8>,
    reads: u64,
    bytes_read: u64,
}

std::thread_local! {
    static HOST: RefCell<Option<Host>> = const { RefCell::new(None) };
}

fn with_host<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|h| f(h.borrow_mut().as_mut().expect("no native opml host on this thread (use native::run)")))
}

pub(crate) fn input_len(blob: i32) -> i64 {
    with_host(|h| match usize::try_from(blob).ok().and_then(|b| h.inputs.get(b)) {
        Some(data) => data.len() as i64,
        None => -1,
    })
}

pub(crate) fn input_read(blob: i32, offset: i64, dst: &mut [u8]) -> i32 {
    with_host(|h| {
        assert!(dst.len() <= MAX_IO, "input_read: len {} > {MAX_IO}", dst.len());
        assert!(offset >= 0, "input_read: negative offset {offset}");
        let data = usize::try_from(blob)
            .ok()
            .and_then(|b| h.inputs.get(b))
            .unwrap_or_else(|| panic!("input_read: no input blob {blob}"));
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let n = dst.len().min(data.len() - start);
        dst[..n].copy_from_slice(&data[start..start + n]);
        h.reads += 1;
        h.bytes_read += n as u64;
        n as i32
    })
}

pub(crate) fn output_write(src: &[u8]) {
    with_host(|h| {
        assert!(src.len() <= MAX_IO, "output_write: len {} > {MAX_IO}", src.len());
        assert!(h.output.len() + src.len() <= MAX_OUTPUT, "output_write: output would exceed {MAX_OUTPUT} bytes");
        h.output.extend_from_slice(src);
    })
}

/// The result of a native [`run`].
#[derive(Debug)]
pub struct Run {
    /// The task output (what the guest wrote, in order).
    pub output: Vec<u8>,
    /// Number of segments (`step` calls).
    pub segments: u32,
    /// Number of `input_read` calls.
    pub reads: u64,
    /// Bytes delivered by those calls.
    pub bytes_read: u64,
    /// The input blobs, handed back.
    pub inputs: Vec<Vec<u8>>,
}

/// Removes the thread's host when a run ends, also by a panic.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        HOST.with(|h| h.borrow_mut().take());
    }
}

/// Runs a program natively to completion on input blobs `inputs` (blob `i` is `inputs[i]`), as the VM would:
/// `init()` then `step()` until [`Step::Done`]. Panics where the VM would trap.
pub fn run<P: Program>(inputs: Vec<Vec<u8>>, init: impl FnOnce() -> P) -> Run {
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        assert!(h.is_none(), "a native opml run is already in progress on this thread");
        *h = Some(Host { inputs, output: Vec::new(), reads: 0, bytes_read: 0 });
    });
    let installed = Installed;
    let mut program = init();
    let mut segments = 0;
    loop {
        segments += 1;
        if program.step() == Step::Done {
            break;
        }
    }
    drop(program);
    let host = HOST.with(|h| h.borrow_mut().take()).expect("host installed");
    drop(installed);
    Run { output: host.output, segments, reads: host.reads, bytes_read: host.bytes_read, inputs: host.inputs }
}
