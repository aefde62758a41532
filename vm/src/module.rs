//! A validated, compiled module: everything instantiation needs, nothing that changes at run time.

use std::sync::Arc;

use wasmparser::{
    DataKind, ElementItems, ElementKind, ExternalKind, Parser, Payload, TypeRef, ValidPayload, Validator, WasmFeatures,
};

use crate::compile::{compile_body, measure_body};
use crate::error::ModuleError;
use crate::instr::Op;
use crate::value::{FuncType, Slot, ValType, ref_to_slot};

/// The exact feature set the machine accepts: WebAssembly 2.0 (MVP, sign-extension, bulk memory,
/// non-trapping float-to-int, multi-value, mutable globals, reference types, simd128).
pub const FEATURES: WasmFeatures = WasmFeatures::WASM2;

/// A table's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableType {
    /// `FuncRef` or `ExternRef`.
    pub elem: ValType,
    /// Initial size.
    pub min: u32,
    /// Declared maximum.
    pub max: Option<u32>,
}

/// A memory's type, in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryType {
    /// Initial size.
    pub min: u32,
    /// Declared maximum.
    pub max: Option<u32>,
}

/// A global's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalType {
    /// Value type.
    pub ty: ValType,
    /// Whether `global.set` is allowed.
    pub mutable: bool,
}

/// What an import or export refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternType {
    /// A function of the given type.
    Func(FuncType),
    /// A table.
    Table(TableType),
    /// A memory.
    Memory(MemoryType),
    /// A global.
    Global(GlobalType),
}

/// One import of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// Module name.
    pub module: String,
    /// Field name.
    pub name: String,
    /// What is imported.
    pub ty: ExternType,
}

/// A constant expression of WebAssembly 2.0 (one instruction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConstExpr {
    /// A number, vector or null reference, already as a slot.
    Slot(Slot),
    /// `global.get` of an (imported) global, module index.
    GlobalGet(u32),
    /// `ref.func`, module function index.
    RefFunc(u32),
}

/// The compiled body of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// The instructions.
    pub ops: Vec<Op>,
    /// Number of parameters.
    pub params: u32,
    /// Non-parameter locals as (count, type) runs, in declaration order.
    pub locals: Vec<(u32, ValType)>,
    /// Total non-parameter locals.
    pub num_locals: u32,
    /// Number of results.
    pub results: u32,
    /// Highest operand-stack height the body can reach (validated statically).
    pub max_height: u32,
}

/// Where an element or data segment goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentMode {
    /// Only used by `memory.init` / `table.init`.
    Passive,
    /// Copied at instantiation into memory/table `index` at `offset`, then dropped.
    Active {
        /// Memory or table index.
        index: u32,
        /// Offset expression.
        offset: ConstExpr,
    },
    /// Declarative element segment (dropped at instantiation).
    Declared,
}

/// An element segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElemSegment {
    /// Where it goes.
    pub mode: SegmentMode,
    /// Element type.
    pub ty: ValType,
    /// The element expressions.
    pub items: Vec<ConstExpr>,
}

/// A data segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSegment {
    /// Where it goes.
    pub mode: SegmentMode,
    /// The bytes.
    pub bytes: Arc<[u8]>,
}

/// A validated and compiled WebAssembly module.
#[derive(Clone, Debug)]
pub struct Module {
    pub(crate) types: Vec<FuncType>,
    pub(crate) imports: Vec<Import>,
    /// Type index of every function, imported ones first.
    pub(crate) func_types: Vec<u32>,
    pub(crate) num_imported_funcs: u32,
    /// Compiled bodies of the defined functions.
    pub(crate) code: Vec<Arc<Code>>,
    pub(crate) tables: Vec<TableType>,
    pub(crate) num_imported_tables: u32,
    pub(crate) memories: Vec<MemoryType>,
    pub(crate) num_imported_memories: u32,
    pub(crate) globals: Vec<GlobalType>,
    pub(crate) num_imported_globals: u32,
    pub(crate) global_inits: Vec<ConstExpr>,
    pub(crate) exports: Vec<(String, ExternKind)>,
    pub(crate) start: Option<u32>,
    pub(crate) elems: Vec<ElemSegment>,
    pub(crate) datas: Vec<DataSegment>,
}

/// The kind and module index of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternKind {
    /// Function index.
    Func(u32),
    /// Table index.
    Table(u32),
    /// Memory index.
    Memory(u32),
    /// Global index.
    Global(u32),
}

fn val_type(ty: wasmparser::ValType, offset: usize) -> Result<ValType, ModuleError> {
    ValType::from_wasmparser(ty).ok_or_else(|| ModuleError::Unsupported {
        message: format!("value type {ty:?} is outside WebAssembly 2.0"),
        offset,
    })
}

fn ref_type(ty: wasmparser::RefType, offset: usize) -> Result<ValType, ModuleError> {
    val_type(wasmparser::ValType::Ref(ty), offset)
}

fn limit32(v: u64, what: &str, offset: usize) -> Result<u32, ModuleError> {
    u32::try_from(v)
        .map_err(|_| ModuleError::Unsupported { message: format!("{what} {v} does not fit 32 bits"), offset })
}

fn table_type(t: &wasmparser::TableType, offset: usize) -> Result<TableType, ModuleError> {
    if t.table64 || t.shared {
        return Err(ModuleError::Unsupported { message: "64-bit or shared table".into(), offset });
    }
    Ok(TableType {
        elem: ref_type(t.element_type, offset)?,
        min: limit32(t.initial, "table minimum", offset)?,
        max: t.maximum.map(|m| limit32(m, "table maximum", offset)).transpose()?,
    })
}

fn memory_type(m: &wasmparser::MemoryType, offset: usize) -> Result<MemoryType, ModuleError> {
    if m.memory64 || m.shared || m.page_size_log2.is_some() {
        return Err(ModuleError::Unsupported { message: "memory64, shared or custom-page-size memory".into(), offset });
    }
    Ok(MemoryType {
        min: limit32(m.initial, "memory minimum", offset)?,
        max: m.maximum.map(|v| limit32(v, "memory maximum", offset)).transpose()?,
    })
}

fn global_type(g: &wasmparser::GlobalType, offset: usize) -> Result<GlobalType, ModuleError> {
    Ok(GlobalType { ty: val_type(g.content_type, offset)?, mutable: g.mutable })
}

fn const_expr(expr: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr, ModuleError> {
    use wasmparser::Operator as O;
    let mut reader = expr.get_operators_reader();
    let offset = reader.original_position();
    let op = reader.read()?;
    let value = match op {
        O::I32Const { value } => ConstExpr::Slot(value as u32 as Slot),
        O::I64Const { value } => ConstExpr::Slot(value as u64 as Slot),
        O::F32Const { value } => ConstExpr::Slot(value.bits() as Slot),
        O::F64Const { value } => ConstExpr::Slot(value.bits() as Slot),
        O::V128Const { value } => ConstExpr::Slot(u128::from_le_bytes(*value.bytes())),
        O::RefNull { .. } => ConstExpr::Slot(ref_to_slot(None)),
        O::RefFunc { function_index } => ConstExpr::RefFunc(function_index),
        O::GlobalGet { global_index } => ConstExpr::GlobalGet(global_index),
        other => {
            return Err(ModuleError::Unsupported { message: format!("constant expression {other:?}"), offset });
        }
    };
    match reader.read()? {
        O::End => Ok(value),
        other => Err(ModuleError::Unsupported { message: format!("extended constant expression ({other:?})"), offset }),
    }
}

impl Module {
    /// Parses, validates (exactly [`FEATURES`]) and compiles a binary module.
    pub fn new(wasm: &[u8]) -> Result<Module, ModuleError> {
        Self::parse(wasm, true)
    }

    /// Parses and validates a binary module like [`Module::new`], but leaves every body's `ops` empty (see
    /// [`crate::compile::measure_body`]): for the guest loader, which only needs the user's module's shape and frame
    /// sizes to rewrite it, and compiles the rewritten module. Compilation is most of the loader's cost, and
    /// registration on the IC pays for every instruction.
    pub(crate) fn new_uncompiled(wasm: &[u8]) -> Result<Module, ModuleError> {
        Self::parse(wasm, false)
    }

    fn parse(wasm: &[u8], compile: bool) -> Result<Module, ModuleError> {
        let mut validator = Validator::new_with_features(FEATURES);
        let mut m = Module {
            types: Vec::new(),
            imports: Vec::new(),
            func_types: Vec::new(),
            num_imported_funcs: 0,
            code: Vec::new(),
            tables: Vec::new(),
            num_imported_tables: 0,
            memories: Vec::new(),
            num_imported_memories: 0,
            globals: Vec::new(),
            num_imported_globals: 0,
            global_inits: Vec::new(),
            exports: Vec::new(),
            start: None,
            elems: Vec::new(),
            datas: Vec::new(),
        };
        let mut allocs = wasmparser::FuncValidatorAllocations::default();
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload?;
            if let ValidPayload::Func(func, body) = validator.payload(&payload)? {
                let mut fv = func.into_validator(std::mem::take(&mut allocs));
                let idx = m.num_imported_funcs as usize + m.code.len();
                let ty = m.types[m.func_types[idx] as usize].clone();
                let code = if compile {
                    compile_body(&mut fv, &body, &ty, &m.types)?
                } else {
                    measure_body(&mut fv, &body, &ty)?
                };
                allocs = fv.into_allocations();
                m.code.push(Arc::new(code));
                continue;
            }
            m.read_section(payload)?;
        }
        Ok(m)
    }

    fn read_section(&mut self, payload: Payload<'_>) -> Result<(), ModuleError> {
        match payload {
            Payload::TypeSection(reader) => {
                for group in reader.into_iter_with_offsets() {
                    let (offset, group) = group?;
                    for sub in group.into_types() {
                        let wasmparser::CompositeInnerType::Func(f) = &sub.composite_type.inner else {
                            return Err(ModuleError::Unsupported { message: "non-function type".into(), offset });
                        };
                        let params = f.params().iter().map(|t| val_type(*t, offset)).collect::<Result<_, _>>()?;
                        let results = f.results().iter().map(|t| val_type(*t, offset)).collect::<Result<_, _>>()?;
                        self.types.push(FuncType { params, results });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_iter_with_offsets() {
                    let (offset, import) = import?;
                    let ty = match import.ty {
                        TypeRef::Func(idx) => {
                            self.func_types.push(idx);
                            self.num_imported_funcs += 1;
                            ExternType::Func(self.types[idx as usize].clone())
                        }
                        TypeRef::Table(t) => {
                            let t = table_type(&t, offset)?;
                            self.tables.push(t);
                            self.num_imported_tables += 1;
                            ExternType::Table(t)
                        }
                        TypeRef::Memory(mt) => {
                            let mt = memory_type(&mt, offset)?;
                            self.memories.push(mt);
                            self.num_imported_memories += 1;
                            ExternType::Memory(mt)
                        }
                        TypeRef::Global(g) => {
                            let g = global_type(&g, offset)?;
                            self.globals.push(g);
                            self.num_imported_globals += 1;
                            ExternType::Global(g)
                        }
                        TypeRef::Tag(_) => {
                            return Err(ModuleError::Unsupported { message: "tag import".into(), offset });
                        }
                    };
                    self.imports.push(Import { module: import.module.to_string(), name: import.name.to_string(), ty });
                }
            }
            Payload::FunctionSection(reader) => {
                for idx in reader {
                    self.func_types.push(idx?);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader.into_iter_with_offsets() {
                    let (offset, table) = table?;
                    if !matches!(table.init, wasmparser::TableInit::RefNull) {
                        return Err(ModuleError::Unsupported {
                            message: "table initialiser expression".into(),
                            offset,
                        });
                    }
                    self.tables.push(table_type(&table.ty, offset)?);
                }
            }
            Payload::MemorySection(reader) => {
                for mem in reader.into_iter_with_offsets() {
                    let (offset, mem) = mem?;
                    self.memories.push(memory_type(&mem, offset)?);
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader.into_iter_with_offsets() {
                    let (offset, global) = global?;
                    self.globals.push(global_type(&global.ty, offset)?);
                    self.global_inits.push(const_expr(&global.init_expr)?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.into_iter_with_offsets() {
                    let (offset, export) = export?;
                    let kind = match export.kind {
                        ExternalKind::Func => ExternKind::Func(export.index),
                        ExternalKind::Table => ExternKind::Table(export.index),
                        ExternalKind::Memory => ExternKind::Memory(export.index),
                        ExternalKind::Global => ExternKind::Global(export.index),
                        ExternalKind::Tag => {
                            return Err(ModuleError::Unsupported { message: "tag export".into(), offset });
                        }
                    };
                    self.exports.push((export.name.to_string(), kind));
                }
            }
            Payload::StartSection { func, .. } => self.start = Some(func),
            Payload::ElementSection(reader) => {
                for elem in reader.into_iter_with_offsets() {
                    let (offset, elem) = elem?;
                    let mode = match elem.kind {
                        ElementKind::Passive => SegmentMode::Passive,
                        ElementKind::Declared => SegmentMode::Declared,
                        ElementKind::Active { table_index, offset_expr } => {
                            SegmentMode::Active { index: table_index.unwrap_or(0), offset: const_expr(&offset_expr)? }
                        }
                    };
                    let (ty, items) = match elem.items {
                        ElementItems::Functions(r) => {
                            let items =
                                r.into_iter().map(|f| f.map(ConstExpr::RefFunc)).collect::<Result<Vec<_>, _>>()?;
                            (ValType::FuncRef, items)
                        }
                        ElementItems::Expressions(rt, r) => {
                            let items = r
                                .into_iter()
                                .map(|e| e.map_err(ModuleError::from).and_then(|e| const_expr(&e)))
                                .collect::<Result<Vec<_>, _>>()?;
                            (ref_type(rt, offset)?, items)
                        }
                    };
                    self.elems.push(ElemSegment { mode, ty, items });
                }
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    let data = data?;
                    let mode = match data.kind {
                        DataKind::Passive => SegmentMode::Passive,
                        DataKind::Active { memory_index, offset_expr } => {
                            SegmentMode::Active { index: memory_index, offset: const_expr(&offset_expr)? }
                        }
                    };
                    self.datas.push(DataSegment { mode, bytes: Arc::from(data.data) });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The module's imports, in order; instantiation takes one [`crate::Extern`] per import.
    pub fn imports(&self) -> &[Import] {
        &self.imports
    }

    /// Names and kinds of the module's exports, in declaration order.
    pub fn exports(&self) -> impl Iterator<Item = (&str, ExternKind)> {
        self.exports.iter().map(|(n, k)| (n.as_str(), *k))
    }

    /// The type of function `index` (module index space).
    pub fn func_type(&self, index: u32) -> Option<&FuncType> {
        self.func_types.get(index as usize).map(|t| &self.types[*t as usize])
    }

    /// Total number of compiled instructions over all defined functions.
    pub fn op_count(&self) -> usize {
        self.code.iter().map(|c| c.ops.len()).sum()
    }
}
