//! A canister's stable memory: sparse 64 KiB pages with an undo journal, so a message that traps leaves it
//! exactly as it was without copying the whole memory before every message.

use std::collections::BTreeMap;

pub const PAGE: u64 = 65536;

/// Stable memory, grown in 64 KiB pages up to `max_pages`.
#[derive(Clone, Debug, Default)]
pub struct StableMemory {
    pages: BTreeMap<u64, Box<[u8]>>,
    size: u64,
    journal: Option<Journal>,
}

#[derive(Clone, Debug)]
struct Journal {
    size: u64,
    /// Original content of each page written since `begin` (`None`: it did not exist).
    pages: BTreeMap<u64, Option<Box<[u8]>>>,
}

impl StableMemory {
    /// Size in pages.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Starts recording changes; `rollback` undoes everything since.
    pub fn begin(&mut self) {
        self.journal = Some(Journal { size: self.size, pages: BTreeMap::new() });
    }

    pub fn commit(&mut self) {
        self.journal = None;
    }

    pub fn rollback(&mut self) {
        if let Some(j) = self.journal.take() {
            for (idx, old) in j.pages {
                match old {
                    Some(p) => {
                        self.pages.insert(idx, p);
                    }
                    None => {
                        self.pages.remove(&idx);
                    }
                }
            }
            self.size = j.size;
        }
    }

    /// Grows by `n` pages; returns the old size, or `None` past `max_pages`.
    pub fn grow(&mut self, n: u64, max_pages: u64) -> Option<u64> {
        let old = self.size;
        let new = old.checked_add(n)?;
        if new > max_pages {
            return None;
        }
        self.size = new;
        Some(old)
    }

    fn in_bounds(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.size * PAGE)
    }

    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        if !self.in_bounds(offset, buf.len() as u64) {
            return Err(format!(
                "stable memory out of bounds: read of {} bytes at {offset}, size {} bytes",
                buf.len(),
                self.size * PAGE
            ));
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (idx, within) = (pos / PAGE, (pos % PAGE) as usize);
            let n = (PAGE as usize - within).min(buf.len() - done);
            match self.pages.get(&idx) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), String> {
        if !self.in_bounds(offset, data.len() as u64) {
            return Err(format!(
                "stable memory out of bounds: write of {} bytes at {offset}, size {} bytes",
                data.len(),
                self.size * PAGE
            ));
        }
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let (idx, within) = (pos / PAGE, (pos % PAGE) as usize);
            let n = (PAGE as usize - within).min(data.len() - done);
            if let Some(j) = &mut self.journal {
                j.pages.entry(idx).or_insert_with(|| self.pages.get(&idx).cloned());
            }
            let page = self.pages.entry(idx).or_insert_with(|| vec![0u8; PAGE as usize].into_boxed_slice());
            page[within..within + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// SHA-256 of the size and the whole content (pages never written count as zeros), for "nothing changed"
    /// checks.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let zero = [0u8; PAGE as usize];
        let mut h = Sha256::new();
        h.update(self.size.to_le_bytes());
        for idx in 0..self.size {
            h.update(self.pages.get(&idx).map_or(&zero[..], |p| &p[..]));
        }
        h.finalize().into()
    }

    /// Bytes actually allocated (pages written at least once).
    pub fn resident_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_rolls_back_writes_and_growth() {
        let mut s = StableMemory::default();
        s.grow(2, 10).unwrap();
        s.write(65530, b"0123456789").unwrap();
        s.begin();
        s.write(65534, b"abcd").unwrap();
        s.grow(3, 10).unwrap();
        s.write(5 * PAGE - 1, b"z").unwrap();
        s.rollback();
        assert_eq!(s.size(), 2);
        let mut buf = [0u8; 10];
        s.read(65530, &mut buf).unwrap();
        assert_eq!(&buf, b"0123456789");
        assert!(s.read(2 * PAGE - 1, &mut [0u8; 2]).is_err());
        assert_eq!(s.grow(9, 10), None);
    }
}
