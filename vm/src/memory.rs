//! Linear memory: 64 KiB wasm pages stored as copy-on-write 4 KiB chunks, so that cloning a machine
//! (a snapshot) costs one pointer per chunk and later writes copy only the chunks they touch.

use std::sync::Arc;

use crate::trap::TrapCode;

pub use crate::limits::WASM_PAGE;
/// Bytes per storage chunk (also the unit in which changes are tracked).
pub const CHUNK: usize = 4096;
const CHUNK_SHIFT: u32 = 12;
const CHUNKS_PER_PAGE: usize = (WASM_PAGE as usize) / CHUNK;

type Chunk = [u8; CHUNK];

/// One linear memory.
#[derive(Clone, Debug)]
pub struct Memory {
    chunks: Vec<Arc<Chunk>>,
    /// Size in bytes (kept alongside `pages` so bounds checks need no multiplication).
    len: u64,
    pages: u32,
    max_pages: Option<u32>,
    zero: Arc<Chunk>,
}

impl Memory {
    /// A zeroed memory of `pages` pages with an optional declared maximum.
    pub fn new(pages: u32, max_pages: Option<u32>) -> Self {
        let zero = Arc::new([0u8; CHUNK]);
        let chunks = vec![zero.clone(); pages as usize * CHUNKS_PER_PAGE];
        Self { chunks, len: pages as u64 * WASM_PAGE, pages, max_pages, zero }
    }

    /// Current size in wasm pages.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// The declared maximum in pages, if any.
    pub fn max_pages(&self) -> Option<u32> {
        self.max_pages
    }

    /// Current size in bytes.
    #[inline(always)]
    pub fn byte_len(&self) -> u64 {
        self.len
    }

    /// Grows by `delta` pages if the result stays within both the declared maximum and `limit`;
    /// returns the old size in pages, or `None` (the wasm result -1).
    pub fn grow(&mut self, delta: u32, limit: u32) -> Option<u32> {
        let old = self.pages;
        let new = crate::exec::memory_grow_to(old, delta, self.max_pages, limit)?;
        self.chunks.resize(new as usize * CHUNKS_PER_PAGE, self.zero.clone());
        self.pages = new;
        self.len = new as u64 * WASM_PAGE;
        Some(old)
    }

    #[inline(always)]
    fn check(&self, addr: u64, len: u64) -> Result<(), TrapCode> {
        if addr.saturating_add(len) <= self.len { Ok(()) } else { Err(TrapCode::MemoryOutOfBounds) }
    }

    /// Writes `N` bytes at `addr` (a store instruction's fast path).
    #[inline(always)]
    pub fn write_n<const N: usize>(&mut self, addr: u64, bytes: &[u8; N]) -> Result<(), TrapCode> {
        self.check(addr, N as u64)?;
        let idx = (addr >> CHUNK_SHIFT) as usize;
        let off = (addr as usize) & (CHUNK - 1);
        if off + N <= CHUNK {
            let chunk = Arc::make_mut(&mut self.chunks[idx]);
            chunk[off..off + N].copy_from_slice(bytes);
        } else {
            self.write_slow(addr, bytes);
        }
        Ok(())
    }

    /// Reads `N` bytes at `addr`.
    #[inline(always)]
    pub fn read<const N: usize>(&self, addr: u64) -> Result<[u8; N], TrapCode> {
        self.check(addr, N as u64)?;
        let idx = (addr >> CHUNK_SHIFT) as usize;
        let off = (addr as usize) & (CHUNK - 1);
        let mut out = [0u8; N];
        if off + N <= CHUNK {
            out.copy_from_slice(&self.chunks[idx][off..off + N]);
        } else {
            self.read_slow(addr, &mut out);
        }
        Ok(out)
    }

    /// Writes `bytes` at `addr`.
    #[inline]
    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), TrapCode> {
        self.check(addr, bytes.len() as u64)?;
        if bytes.is_empty() {
            // In bounds even at the very end of memory, where there is no chunk to index.
            return Ok(());
        }
        let idx = (addr >> CHUNK_SHIFT) as usize;
        let off = (addr as usize) & (CHUNK - 1);
        if off + bytes.len() <= CHUNK {
            Arc::make_mut(&mut self.chunks[idx])[off..off + bytes.len()].copy_from_slice(bytes);
        } else {
            self.write_slow(addr, bytes);
        }
        Ok(())
    }

    /// Copies `out.len()` bytes starting at `addr` into `out` (bounds already checked by callers of
    /// the public API through [`Memory::read_into`]).
    fn read_slow(&self, mut addr: u64, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let idx = (addr >> CHUNK_SHIFT) as usize;
            let off = (addr as usize) & (CHUNK - 1);
            let n = (CHUNK - off).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.chunks[idx][off..off + n]);
            done += n;
            addr += n as u64;
        }
    }

    fn write_slow(&mut self, mut addr: u64, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            let idx = (addr >> CHUNK_SHIFT) as usize;
            let off = (addr as usize) & (CHUNK - 1);
            let n = (CHUNK - off).min(bytes.len() - done);
            Arc::make_mut(&mut self.chunks[idx])[off..off + n].copy_from_slice(&bytes[done..done + n]);
            done += n;
            addr += n as u64;
        }
    }

    /// Reads `out.len()` bytes at `addr` (the caller has checked the range is in bounds).
    #[inline]
    pub(crate) fn read_unchecked(&self, addr: u64, out: &mut [u8]) {
        if out.is_empty() {
            return;
        }
        let idx = (addr >> CHUNK_SHIFT) as usize;
        let off = (addr as usize) & (CHUNK - 1);
        if off + out.len() <= CHUNK {
            out.copy_from_slice(&self.chunks[idx][off..off + out.len()]);
        } else {
            self.read_slow(addr, out);
        }
    }

    /// Writes `bytes` at `addr` (the caller has checked the range is in bounds).
    #[inline]
    pub(crate) fn write_unchecked(&mut self, addr: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let idx = (addr >> CHUNK_SHIFT) as usize;
        let off = (addr as usize) & (CHUNK - 1);
        if off + bytes.len() <= CHUNK {
            Arc::make_mut(&mut self.chunks[idx])[off..off + bytes.len()].copy_from_slice(bytes);
        } else {
            self.write_slow(addr, bytes);
        }
    }

    /// Reads `out.len()` bytes at `addr` into `out`.
    pub fn read_into(&self, addr: u64, out: &mut [u8]) -> Result<(), TrapCode> {
        self.check(addr, out.len() as u64)?;
        self.read_slow(addr, out);
        Ok(())
    }

    /// Fills `len` bytes at `addr` with `value`.
    pub fn fill(&mut self, addr: u64, value: u8, len: u64) -> Result<(), TrapCode> {
        self.check(addr, len)?;
        let mut a = addr;
        let end = addr + len;
        while a < end {
            let idx = (a >> CHUNK_SHIFT) as usize;
            let off = (a as usize) & (CHUNK - 1);
            let n = ((CHUNK - off) as u64).min(end - a) as usize;
            Arc::make_mut(&mut self.chunks[idx])[off..off + n].fill(value);
            a += n as u64;
        }
        Ok(())
    }

    /// The storage chunk with index `i` (bytes `i*4096 .. (i+1)*4096`), for hashing and inspection.
    pub fn chunk(&self, i: usize) -> Option<&[u8; CHUNK]> {
        self.chunks.get(i).map(|c| &**c)
    }

    /// Number of storage chunks.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// True if chunk `i` is still shared with `other` (unchanged since one was cloned from the
    /// other): the cheap way to find what a run changed.
    pub fn chunk_shared_with(&self, other: &Memory, i: usize) -> bool {
        match (self.chunks.get(i), other.chunks.get(i)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_across_chunks_and_bounds() {
        let mut m = Memory::new(1, None);
        m.write(4094, &[1, 2, 3, 4]).unwrap();
        assert_eq!(m.read::<4>(4094).unwrap(), [1, 2, 3, 4]);
        assert_eq!(m.read::<2>(4096).unwrap(), [3, 4]);
        assert_eq!(m.read::<4>(65_532).unwrap(), [0; 4]);
        assert_eq!(m.read::<4>(65_533), Err(TrapCode::MemoryOutOfBounds));
        assert_eq!(m.write(u64::MAX, &[1]), Err(TrapCode::MemoryOutOfBounds));
    }

    #[test]
    fn clone_is_copy_on_write() {
        let mut a = Memory::new(2, None);
        a.write(10, &[7]).unwrap();
        let b = a.clone();
        a.write(5000, &[9]).unwrap();
        assert!(a.chunk_shared_with(&b, 0));
        assert!(!a.chunk_shared_with(&b, 1));
        assert_eq!(b.read::<1>(5000).unwrap(), [0]);
        assert_eq!(a.read::<1>(10).unwrap(), [7]);
    }

    #[test]
    fn grow_respects_max_and_limit() {
        let mut m = Memory::new(1, Some(3));
        assert_eq!(m.grow(1, 100), Some(1));
        assert_eq!(m.grow(2, 100), None);
        assert_eq!(m.grow(1, 2), None);
        assert_eq!(m.grow(0, 2), Some(2));
        assert_eq!(m.pages(), 2);
    }
}
