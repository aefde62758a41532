//! Tables of references.

use crate::value::{Slot, ValType};

/// One table: its element type, elements (reference slots) and declared maximum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// `FuncRef` or `ExternRef`.
    pub ty: ValType,
    /// The elements, as reference slots.
    pub elems: Vec<Slot>,
    /// The declared maximum, if any.
    pub max: Option<u32>,
}

impl Table {
    /// Current size.
    pub fn size(&self) -> u32 {
        self.elems.len() as u32
    }

    /// Grows by `delta` elements set to `init` if the result stays within the declared maximum and
    /// `limit`; returns the old size or `None` (the wasm result -1).
    pub fn grow(&mut self, delta: u32, init: Slot, limit: u32) -> Option<u32> {
        let old = self.size();
        let new = crate::exec::table_grow_to(old, delta, self.max, limit)?;
        self.elems.resize(new as usize, init);
        Some(old)
    }
}
