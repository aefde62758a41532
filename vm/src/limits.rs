//! The machine's documented limits. They are program semantics: exceeding one is a trap (or a failed
//! `memory.grow`/`table.grow`, which returns -1), identically in every engine that runs our programs.

/// Bytes per wasm page.
pub const WASM_PAGE: u64 = 65_536;

/// Limits of one machine. `Limits::default()` are the values opml-ic commits to (see docs/vm.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Maximum linear memory size in 64 KiB pages; `memory.grow` beyond it returns -1.
    pub max_memory_pages: u32,
    /// Maximum number of elements of a table; `table.grow` beyond it returns -1.
    pub max_table_elements: u32,
    /// Maximum number of active call frames; a call beyond it traps with `CallStackExhausted`.
    pub max_call_depth: u32,
    /// Maximum number of value-stack slots (locals plus operands of all frames); a call whose frame
    /// could exceed it traps with `ValueStackExhausted`.
    pub max_stack_slots: u32,
}

impl Limits {
    /// The committed defaults: 1 GiB memory, 1 Mi table elements, 16 Ki frames, 1 Mi slots.
    pub const DEFAULT: Limits = Limits {
        max_memory_pages: 16_384,
        max_table_elements: 1 << 20,
        max_call_depth: 16_384,
        max_stack_slots: 1 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
