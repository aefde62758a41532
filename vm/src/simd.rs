//! simd128 instructions that do not touch memory (the memory-accessing ones live in the core).
//!
//! Every value is one [`Slot`]: a `v128` is the whole `u128`, lane `i` of an `NxM` shape being the
//! `i`-th little-endian `N`-bit lane; scalars are zero-extended (`i32`/`f32` from 32 bits,
//! `i64`/`f64` from 64 bits). Scalar operands are read from their low bits only.
//!
//! Everything here is plain scalar Rust on integer lanes, so the results are bit-exact on every
//! host. Floating-point NaN results follow wasmi's `deterministic` profile: every arithmetic
//! operation (add, sub, mul, div, sqrt, min, max, ceil, floor, trunc, nearest, demote, promote)
//! turns a NaN result into the positive canonical NaN, while the bitwise ones (neg, abs, pmin,
//! pmax, splat, extract/replace lane) move bits unchanged.

use alloc::vec::Vec;

use crate::value::Slot;

/// The canonical `f32` NaN: positive, quiet, zero payload.
const CANONICAL_NAN_F32: u32 = 0x7FC0_0000;
/// The canonical `f64` NaN: positive, quiet, zero payload.
const CANONICAL_NAN_F64: u64 = 0x7FF8_0000_0000_0000;

/// Defines [`SimdOp`] with its operator translation, binary opcode and text name from one table.
macro_rules! define_simd_ops {
    (
        lane { $( $lname:ident = $lcode:literal $ltext:literal, )* }
        plain { $( $name:ident = $code:literal $text:literal, )* }
    ) => {
        /// A simd128 instruction without memory access, with its immediates.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum SimdOp {
            /// `v128.const`: the 16 bytes of the constant, little-endian.
            V128Const([u8; 16]),
            /// `i8x16.shuffle`: for each result byte, an index into the 32 bytes of `a ‖ b`.
            I8x16Shuffle([u8; 16]),
            $(
                #[doc = concat!("`", $ltext, "` with its lane index immediate.")]
                $lname(u8),
            )*
            $(
                #[doc = concat!("`", $text, "`.")]
                $name,
            )*
        }

        impl SimdOp {
            /// Translates a wasmparser operator; `None` if it is not a non-memory SIMD instruction.
            #[cfg(feature = "std")]
            pub fn from_operator(op: &wasmparser::Operator<'_>) -> Option<SimdOp> {
                use wasmparser::Operator as O;
                Some(match op {
                    O::V128Const { value } => SimdOp::V128Const(*value.bytes()),
                    O::I8x16Shuffle { lanes } => SimdOp::I8x16Shuffle(*lanes),
                    $( O::$lname { lane } => SimdOp::$lname(*lane), )*
                    $( O::$name => SimdOp::$name, )*
                    _ => return None,
                })
            }

            /// The sub-opcode after the 0xFD prefix in the binary format (spec numbering).
            pub fn opcode(&self) -> u32 {
                match self {
                    SimdOp::V128Const(_) => 0x0C,
                    SimdOp::I8x16Shuffle(_) => 0x0D,
                    $( SimdOp::$lname(_) => $lcode, )*
                    $( SimdOp::$name => $code, )*
                }
            }

            /// The fixed encoding used in program commitments: the sub-opcode byte (every
            /// simd128 sub-opcode is below 256), then 16 immediate bytes (the constant or shuffle
            /// lanes, or the lane index in byte 1), zero where unused.
            pub fn encode(&self) -> [u8; 17] {
                let mut out = [0u8; 17];
                out[0] = self.opcode() as u8;
                match self {
                    SimdOp::V128Const(b) | SimdOp::I8x16Shuffle(b) => out[1..].copy_from_slice(b),
                    $( SimdOp::$lname(l) => out[1] = *l, )*
                    _ => {}
                }
                out
            }

            /// Inverse of [`SimdOp::encode`]; `None` for an unknown opcode or a non-canonical
            /// encoding (stray immediate bytes).
            pub fn decode(bytes: &[u8; 17]) -> Option<SimdOp> {
                let mut imm = [0u8; 16];
                imm.copy_from_slice(&bytes[1..]);
                let op = match bytes[0] as u32 {
                    0x0C => SimdOp::V128Const(imm),
                    0x0D => SimdOp::I8x16Shuffle(imm),
                    $( $lcode => SimdOp::$lname(imm[0]), )*
                    $( $code => SimdOp::$name, )*
                    _ => return None,
                };
                (op.encode() == *bytes).then_some(op)
            }

            /// The instruction's name in the text format (without immediates).
            pub fn name(&self) -> &'static str {
                match self {
                    SimdOp::V128Const(_) => "v128.const",
                    SimdOp::I8x16Shuffle(_) => "i8x16.shuffle",
                    $( SimdOp::$lname(_) => $ltext, )*
                    $( SimdOp::$name => $text, )*
                }
            }
        }
    };
}

define_simd_ops! {
    lane {
        I8x16ExtractLaneS = 0x15 "i8x16.extract_lane_s",
        I8x16ExtractLaneU = 0x16 "i8x16.extract_lane_u",
        I8x16ReplaceLane = 0x17 "i8x16.replace_lane",
        I16x8ExtractLaneS = 0x18 "i16x8.extract_lane_s",
        I16x8ExtractLaneU = 0x19 "i16x8.extract_lane_u",
        I16x8ReplaceLane = 0x1A "i16x8.replace_lane",
        I32x4ExtractLane = 0x1B "i32x4.extract_lane",
        I32x4ReplaceLane = 0x1C "i32x4.replace_lane",
        I64x2ExtractLane = 0x1D "i64x2.extract_lane",
        I64x2ReplaceLane = 0x1E "i64x2.replace_lane",
        F32x4ExtractLane = 0x1F "f32x4.extract_lane",
        F32x4ReplaceLane = 0x20 "f32x4.replace_lane",
        F64x2ExtractLane = 0x21 "f64x2.extract_lane",
        F64x2ReplaceLane = 0x22 "f64x2.replace_lane",
    }
    plain {
        I8x16Swizzle = 0x0E "i8x16.swizzle",
        I8x16Splat = 0x0F "i8x16.splat",
        I16x8Splat = 0x10 "i16x8.splat",
        I32x4Splat = 0x11 "i32x4.splat",
        I64x2Splat = 0x12 "i64x2.splat",
        F32x4Splat = 0x13 "f32x4.splat",
        F64x2Splat = 0x14 "f64x2.splat",

        I8x16Eq = 0x23 "i8x16.eq",
        I8x16Ne = 0x24 "i8x16.ne",
        I8x16LtS = 0x25 "i8x16.lt_s",
        I8x16LtU = 0x26 "i8x16.lt_u",
        I8x16GtS = 0x27 "i8x16.gt_s",
        I8x16GtU = 0x28 "i8x16.gt_u",
        I8x16LeS = 0x29 "i8x16.le_s",
        I8x16LeU = 0x2A "i8x16.le_u",
        I8x16GeS = 0x2B "i8x16.ge_s",
        I8x16GeU = 0x2C "i8x16.ge_u",
        I16x8Eq = 0x2D "i16x8.eq",
        I16x8Ne = 0x2E "i16x8.ne",
        I16x8LtS = 0x2F "i16x8.lt_s",
        I16x8LtU = 0x30 "i16x8.lt_u",
        I16x8GtS = 0x31 "i16x8.gt_s",
        I16x8GtU = 0x32 "i16x8.gt_u",
        I16x8LeS = 0x33 "i16x8.le_s",
        I16x8LeU = 0x34 "i16x8.le_u",
        I16x8GeS = 0x35 "i16x8.ge_s",
        I16x8GeU = 0x36 "i16x8.ge_u",
        I32x4Eq = 0x37 "i32x4.eq",
        I32x4Ne = 0x38 "i32x4.ne",
        I32x4LtS = 0x39 "i32x4.lt_s",
        I32x4LtU = 0x3A "i32x4.lt_u",
        I32x4GtS = 0x3B "i32x4.gt_s",
        I32x4GtU = 0x3C "i32x4.gt_u",
        I32x4LeS = 0x3D "i32x4.le_s",
        I32x4LeU = 0x3E "i32x4.le_u",
        I32x4GeS = 0x3F "i32x4.ge_s",
        I32x4GeU = 0x40 "i32x4.ge_u",
        F32x4Eq = 0x41 "f32x4.eq",
        F32x4Ne = 0x42 "f32x4.ne",
        F32x4Lt = 0x43 "f32x4.lt",
        F32x4Gt = 0x44 "f32x4.gt",
        F32x4Le = 0x45 "f32x4.le",
        F32x4Ge = 0x46 "f32x4.ge",
        F64x2Eq = 0x47 "f64x2.eq",
        F64x2Ne = 0x48 "f64x2.ne",
        F64x2Lt = 0x49 "f64x2.lt",
        F64x2Gt = 0x4A "f64x2.gt",
        F64x2Le = 0x4B "f64x2.le",
        F64x2Ge = 0x4C "f64x2.ge",

        V128Not = 0x4D "v128.not",
        V128And = 0x4E "v128.and",
        V128AndNot = 0x4F "v128.andnot",
        V128Or = 0x50 "v128.or",
        V128Xor = 0x51 "v128.xor",
        V128Bitselect = 0x52 "v128.bitselect",
        V128AnyTrue = 0x53 "v128.any_true",

        F32x4DemoteF64x2Zero = 0x5E "f32x4.demote_f64x2_zero",
        F64x2PromoteLowF32x4 = 0x5F "f64x2.promote_low_f32x4",

        I8x16Abs = 0x60 "i8x16.abs",
        I8x16Neg = 0x61 "i8x16.neg",
        I8x16Popcnt = 0x62 "i8x16.popcnt",
        I8x16AllTrue = 0x63 "i8x16.all_true",
        I8x16Bitmask = 0x64 "i8x16.bitmask",
        I8x16NarrowI16x8S = 0x65 "i8x16.narrow_i16x8_s",
        I8x16NarrowI16x8U = 0x66 "i8x16.narrow_i16x8_u",
        F32x4Ceil = 0x67 "f32x4.ceil",
        F32x4Floor = 0x68 "f32x4.floor",
        F32x4Trunc = 0x69 "f32x4.trunc",
        F32x4Nearest = 0x6A "f32x4.nearest",
        I8x16Shl = 0x6B "i8x16.shl",
        I8x16ShrS = 0x6C "i8x16.shr_s",
        I8x16ShrU = 0x6D "i8x16.shr_u",
        I8x16Add = 0x6E "i8x16.add",
        I8x16AddSatS = 0x6F "i8x16.add_sat_s",
        I8x16AddSatU = 0x70 "i8x16.add_sat_u",
        I8x16Sub = 0x71 "i8x16.sub",
        I8x16SubSatS = 0x72 "i8x16.sub_sat_s",
        I8x16SubSatU = 0x73 "i8x16.sub_sat_u",
        F64x2Ceil = 0x74 "f64x2.ceil",
        F64x2Floor = 0x75 "f64x2.floor",
        I8x16MinS = 0x76 "i8x16.min_s",
        I8x16MinU = 0x77 "i8x16.min_u",
        I8x16MaxS = 0x78 "i8x16.max_s",
        I8x16MaxU = 0x79 "i8x16.max_u",
        F64x2Trunc = 0x7A "f64x2.trunc",
        I8x16AvgrU = 0x7B "i8x16.avgr_u",
        I16x8ExtAddPairwiseI8x16S = 0x7C "i16x8.extadd_pairwise_i8x16_s",
        I16x8ExtAddPairwiseI8x16U = 0x7D "i16x8.extadd_pairwise_i8x16_u",
        I32x4ExtAddPairwiseI16x8S = 0x7E "i32x4.extadd_pairwise_i16x8_s",
        I32x4ExtAddPairwiseI16x8U = 0x7F "i32x4.extadd_pairwise_i16x8_u",

        I16x8Abs = 0x80 "i16x8.abs",
        I16x8Neg = 0x81 "i16x8.neg",
        I16x8Q15MulrSatS = 0x82 "i16x8.q15mulr_sat_s",
        I16x8AllTrue = 0x83 "i16x8.all_true",
        I16x8Bitmask = 0x84 "i16x8.bitmask",
        I16x8NarrowI32x4S = 0x85 "i16x8.narrow_i32x4_s",
        I16x8NarrowI32x4U = 0x86 "i16x8.narrow_i32x4_u",
        I16x8ExtendLowI8x16S = 0x87 "i16x8.extend_low_i8x16_s",
        I16x8ExtendHighI8x16S = 0x88 "i16x8.extend_high_i8x16_s",
        I16x8ExtendLowI8x16U = 0x89 "i16x8.extend_low_i8x16_u",
        I16x8ExtendHighI8x16U = 0x8A "i16x8.extend_high_i8x16_u",
        I16x8Shl = 0x8B "i16x8.shl",
        I16x8ShrS = 0x8C "i16x8.shr_s",
        I16x8ShrU = 0x8D "i16x8.shr_u",
        I16x8Add = 0x8E "i16x8.add",
        I16x8AddSatS = 0x8F "i16x8.add_sat_s",
        I16x8AddSatU = 0x90 "i16x8.add_sat_u",
        I16x8Sub = 0x91 "i16x8.sub",
        I16x8SubSatS = 0x92 "i16x8.sub_sat_s",
        I16x8SubSatU = 0x93 "i16x8.sub_sat_u",
        F64x2Nearest = 0x94 "f64x2.nearest",
        I16x8Mul = 0x95 "i16x8.mul",
        I16x8MinS = 0x96 "i16x8.min_s",
        I16x8MinU = 0x97 "i16x8.min_u",
        I16x8MaxS = 0x98 "i16x8.max_s",
        I16x8MaxU = 0x99 "i16x8.max_u",
        I16x8AvgrU = 0x9B "i16x8.avgr_u",
        I16x8ExtMulLowI8x16S = 0x9C "i16x8.extmul_low_i8x16_s",
        I16x8ExtMulHighI8x16S = 0x9D "i16x8.extmul_high_i8x16_s",
        I16x8ExtMulLowI8x16U = 0x9E "i16x8.extmul_low_i8x16_u",
        I16x8ExtMulHighI8x16U = 0x9F "i16x8.extmul_high_i8x16_u",

        I32x4Abs = 0xA0 "i32x4.abs",
        I32x4Neg = 0xA1 "i32x4.neg",
        I32x4AllTrue = 0xA3 "i32x4.all_true",
        I32x4Bitmask = 0xA4 "i32x4.bitmask",
        I32x4ExtendLowI16x8S = 0xA7 "i32x4.extend_low_i16x8_s",
        I32x4ExtendHighI16x8S = 0xA8 "i32x4.extend_high_i16x8_s",
        I32x4ExtendLowI16x8U = 0xA9 "i32x4.extend_low_i16x8_u",
        I32x4ExtendHighI16x8U = 0xAA "i32x4.extend_high_i16x8_u",
        I32x4Shl = 0xAB "i32x4.shl",
        I32x4ShrS = 0xAC "i32x4.shr_s",
        I32x4ShrU = 0xAD "i32x4.shr_u",
        I32x4Add = 0xAE "i32x4.add",
        I32x4Sub = 0xB1 "i32x4.sub",
        I32x4Mul = 0xB5 "i32x4.mul",
        I32x4MinS = 0xB6 "i32x4.min_s",
        I32x4MinU = 0xB7 "i32x4.min_u",
        I32x4MaxS = 0xB8 "i32x4.max_s",
        I32x4MaxU = 0xB9 "i32x4.max_u",
        I32x4DotI16x8S = 0xBA "i32x4.dot_i16x8_s",
        I32x4ExtMulLowI16x8S = 0xBC "i32x4.extmul_low_i16x8_s",
        I32x4ExtMulHighI16x8S = 0xBD "i32x4.extmul_high_i16x8_s",
        I32x4ExtMulLowI16x8U = 0xBE "i32x4.extmul_low_i16x8_u",
        I32x4ExtMulHighI16x8U = 0xBF "i32x4.extmul_high_i16x8_u",

        I64x2Abs = 0xC0 "i64x2.abs",
        I64x2Neg = 0xC1 "i64x2.neg",
        I64x2AllTrue = 0xC3 "i64x2.all_true",
        I64x2Bitmask = 0xC4 "i64x2.bitmask",
        I64x2ExtendLowI32x4S = 0xC7 "i64x2.extend_low_i32x4_s",
        I64x2ExtendHighI32x4S = 0xC8 "i64x2.extend_high_i32x4_s",
        I64x2ExtendLowI32x4U = 0xC9 "i64x2.extend_low_i32x4_u",
        I64x2ExtendHighI32x4U = 0xCA "i64x2.extend_high_i32x4_u",
        I64x2Shl = 0xCB "i64x2.shl",
        I64x2ShrS = 0xCC "i64x2.shr_s",
        I64x2ShrU = 0xCD "i64x2.shr_u",
        I64x2Add = 0xCE "i64x2.add",
        I64x2Sub = 0xD1 "i64x2.sub",
        I64x2Mul = 0xD5 "i64x2.mul",
        I64x2Eq = 0xD6 "i64x2.eq",
        I64x2Ne = 0xD7 "i64x2.ne",
        I64x2LtS = 0xD8 "i64x2.lt_s",
        I64x2GtS = 0xD9 "i64x2.gt_s",
        I64x2LeS = 0xDA "i64x2.le_s",
        I64x2GeS = 0xDB "i64x2.ge_s",
        I64x2ExtMulLowI32x4S = 0xDC "i64x2.extmul_low_i32x4_s",
        I64x2ExtMulHighI32x4S = 0xDD "i64x2.extmul_high_i32x4_s",
        I64x2ExtMulLowI32x4U = 0xDE "i64x2.extmul_low_i32x4_u",
        I64x2ExtMulHighI32x4U = 0xDF "i64x2.extmul_high_i32x4_u",

        F32x4Abs = 0xE0 "f32x4.abs",
        F32x4Neg = 0xE1 "f32x4.neg",
        F32x4Sqrt = 0xE3 "f32x4.sqrt",
        F32x4Add = 0xE4 "f32x4.add",
        F32x4Sub = 0xE5 "f32x4.sub",
        F32x4Mul = 0xE6 "f32x4.mul",
        F32x4Div = 0xE7 "f32x4.div",
        F32x4Min = 0xE8 "f32x4.min",
        F32x4Max = 0xE9 "f32x4.max",
        F32x4PMin = 0xEA "f32x4.pmin",
        F32x4PMax = 0xEB "f32x4.pmax",
        F64x2Abs = 0xEC "f64x2.abs",
        F64x2Neg = 0xED "f64x2.neg",
        F64x2Sqrt = 0xEF "f64x2.sqrt",
        F64x2Add = 0xF0 "f64x2.add",
        F64x2Sub = 0xF1 "f64x2.sub",
        F64x2Mul = 0xF2 "f64x2.mul",
        F64x2Div = 0xF3 "f64x2.div",
        F64x2Min = 0xF4 "f64x2.min",
        F64x2Max = 0xF5 "f64x2.max",
        F64x2PMin = 0xF6 "f64x2.pmin",
        F64x2PMax = 0xF7 "f64x2.pmax",

        I32x4TruncSatF32x4S = 0xF8 "i32x4.trunc_sat_f32x4_s",
        I32x4TruncSatF32x4U = 0xF9 "i32x4.trunc_sat_f32x4_u",
        F32x4ConvertI32x4S = 0xFA "f32x4.convert_i32x4_s",
        F32x4ConvertI32x4U = 0xFB "f32x4.convert_i32x4_u",
        I32x4TruncSatF64x2SZero = 0xFC "i32x4.trunc_sat_f64x2_s_zero",
        I32x4TruncSatF64x2UZero = 0xFD "i32x4.trunc_sat_f64x2_u_zero",
        F64x2ConvertLowI32x4S = 0xFE "f64x2.convert_low_i32x4_s",
        F64x2ConvertLowI32x4U = 0xFF "f64x2.convert_low_i32x4_u",
    }
}

/// Executes one instruction: pops its operands from the end of `stack`, pushes its result.
///
/// The operands must be there with the instruction's types (validation guarantees it); a missing
/// operand reads as zero (see [`pop`]). Lane immediates are taken modulo the lane count and
/// shuffle indices modulo 32, which validation makes no-ops.
pub fn exec(op: SimdOp, stack: &mut Vec<Slot>) {
    use SimdOp as S;
    match op {
        S::V128Const(bytes) => stack.push(Slot::from_le_bytes(bytes)),
        S::I8x16Shuffle(indices) => binary(stack, |a, b| shuffle(a, b, indices)),
        S::I8x16Swizzle => binary(stack, swizzle),

        // Splat: the scalar's low bits into every lane.
        S::I8x16Splat => unary(stack, |x| splat(x as u8)),
        S::I16x8Splat => unary(stack, |x| splat(x as u16)),
        S::I32x4Splat | S::F32x4Splat => unary(stack, |x| splat(x as u32)),
        S::I64x2Splat | S::F64x2Splat => unary(stack, |x| splat(x as u64)),

        // Lanes.
        S::I8x16ExtractLaneS(l) => unary(stack, |v| zext32(extract::<u8>(v, l) as i8 as u32)),
        S::I8x16ExtractLaneU(l) => unary(stack, |v| Slot::from(extract::<u8>(v, l))),
        S::I16x8ExtractLaneS(l) => unary(stack, |v| zext32(extract::<u16>(v, l) as i16 as u32)),
        S::I16x8ExtractLaneU(l) => unary(stack, |v| Slot::from(extract::<u16>(v, l))),
        S::I32x4ExtractLane(l) | S::F32x4ExtractLane(l) => unary(stack, |v| Slot::from(extract::<u32>(v, l))),
        S::I64x2ExtractLane(l) | S::F64x2ExtractLane(l) => unary(stack, |v| Slot::from(extract::<u64>(v, l))),
        S::I8x16ReplaceLane(l) => binary(stack, |v, x| replace(v, l, x as u8)),
        S::I16x8ReplaceLane(l) => binary(stack, |v, x| replace(v, l, x as u16)),
        S::I32x4ReplaceLane(l) | S::F32x4ReplaceLane(l) => binary(stack, |v, x| replace(v, l, x as u32)),
        S::I64x2ReplaceLane(l) | S::F64x2ReplaceLane(l) => binary(stack, |v, x| replace(v, l, x as u64)),

        // Integer comparisons.
        S::I8x16Eq => binary(stack, |a, b| compare::<u8>(a, b, |x, y| x == y)),
        S::I8x16Ne => binary(stack, |a, b| compare::<u8>(a, b, |x, y| x != y)),
        S::I8x16LtS => binary(stack, |a, b| compare::<u8>(a, b, |x, y| (x as i8) < (y as i8))),
        S::I8x16LtU => binary(stack, |a, b| compare::<u8>(a, b, |x, y| x < y)),
        S::I8x16GtS => binary(stack, |a, b| compare::<u8>(a, b, |x, y| (x as i8) > (y as i8))),
        S::I8x16GtU => binary(stack, |a, b| compare::<u8>(a, b, |x, y| x > y)),
        S::I8x16LeS => binary(stack, |a, b| compare::<u8>(a, b, |x, y| (x as i8) <= (y as i8))),
        S::I8x16LeU => binary(stack, |a, b| compare::<u8>(a, b, |x, y| x <= y)),
        S::I8x16GeS => binary(stack, |a, b| compare::<u8>(a, b, |x, y| (x as i8) >= (y as i8))),
        S::I8x16GeU => binary(stack, |a, b| compare::<u8>(a, b, |x, y| x >= y)),
        S::I16x8Eq => binary(stack, |a, b| compare::<u16>(a, b, |x, y| x == y)),
        S::I16x8Ne => binary(stack, |a, b| compare::<u16>(a, b, |x, y| x != y)),
        S::I16x8LtS => binary(stack, |a, b| compare::<u16>(a, b, |x, y| (x as i16) < (y as i16))),
        S::I16x8LtU => binary(stack, |a, b| compare::<u16>(a, b, |x, y| x < y)),
        S::I16x8GtS => binary(stack, |a, b| compare::<u16>(a, b, |x, y| (x as i16) > (y as i16))),
        S::I16x8GtU => binary(stack, |a, b| compare::<u16>(a, b, |x, y| x > y)),
        S::I16x8LeS => binary(stack, |a, b| compare::<u16>(a, b, |x, y| (x as i16) <= (y as i16))),
        S::I16x8LeU => binary(stack, |a, b| compare::<u16>(a, b, |x, y| x <= y)),
        S::I16x8GeS => binary(stack, |a, b| compare::<u16>(a, b, |x, y| (x as i16) >= (y as i16))),
        S::I16x8GeU => binary(stack, |a, b| compare::<u16>(a, b, |x, y| x >= y)),
        S::I32x4Eq => binary(stack, |a, b| compare::<u32>(a, b, |x, y| x == y)),
        S::I32x4Ne => binary(stack, |a, b| compare::<u32>(a, b, |x, y| x != y)),
        S::I32x4LtS => binary(stack, |a, b| compare::<u32>(a, b, |x, y| (x as i32) < (y as i32))),
        S::I32x4LtU => binary(stack, |a, b| compare::<u32>(a, b, |x, y| x < y)),
        S::I32x4GtS => binary(stack, |a, b| compare::<u32>(a, b, |x, y| (x as i32) > (y as i32))),
        S::I32x4GtU => binary(stack, |a, b| compare::<u32>(a, b, |x, y| x > y)),
        S::I32x4LeS => binary(stack, |a, b| compare::<u32>(a, b, |x, y| (x as i32) <= (y as i32))),
        S::I32x4LeU => binary(stack, |a, b| compare::<u32>(a, b, |x, y| x <= y)),
        S::I32x4GeS => binary(stack, |a, b| compare::<u32>(a, b, |x, y| (x as i32) >= (y as i32))),
        S::I32x4GeU => binary(stack, |a, b| compare::<u32>(a, b, |x, y| x >= y)),
        S::I64x2Eq => binary(stack, |a, b| compare::<u64>(a, b, |x, y| x == y)),
        S::I64x2Ne => binary(stack, |a, b| compare::<u64>(a, b, |x, y| x != y)),
        S::I64x2LtS => binary(stack, |a, b| compare::<u64>(a, b, |x, y| (x as i64) < (y as i64))),
        S::I64x2GtS => binary(stack, |a, b| compare::<u64>(a, b, |x, y| (x as i64) > (y as i64))),
        S::I64x2LeS => binary(stack, |a, b| compare::<u64>(a, b, |x, y| (x as i64) <= (y as i64))),
        S::I64x2GeS => binary(stack, |a, b| compare::<u64>(a, b, |x, y| (x as i64) >= (y as i64))),

        // Float comparisons (IEEE: every comparison with a NaN is false, except `ne`).
        S::F32x4Eq => binary(stack, |a, b| fcompare::<f32>(a, b, |x, y| x == y)),
        S::F32x4Ne => binary(stack, |a, b| fcompare::<f32>(a, b, |x, y| x != y)),
        S::F32x4Lt => binary(stack, |a, b| fcompare::<f32>(a, b, |x, y| x < y)),
        S::F32x4Gt => binary(stack, |a, b| fcompare::<f32>(a, b, |x, y| x > y)),
        S::F32x4Le => binary(stack, |a, b| fcompare::<f32>(a, b, |x, y| x <= y)),
        S::F32x4Ge => binary(stack, |a, b| fcompare::<f32>(a, b, |x, y| x >= y)),
        S::F64x2Eq => binary(stack, |a, b| fcompare::<f64>(a, b, |x, y| x == y)),
        S::F64x2Ne => binary(stack, |a, b| fcompare::<f64>(a, b, |x, y| x != y)),
        S::F64x2Lt => binary(stack, |a, b| fcompare::<f64>(a, b, |x, y| x < y)),
        S::F64x2Gt => binary(stack, |a, b| fcompare::<f64>(a, b, |x, y| x > y)),
        S::F64x2Le => binary(stack, |a, b| fcompare::<f64>(a, b, |x, y| x <= y)),
        S::F64x2Ge => binary(stack, |a, b| fcompare::<f64>(a, b, |x, y| x >= y)),

        // Bitwise.
        S::V128Not => unary(stack, |a| !a),
        S::V128And => binary(stack, |a, b| a & b),
        S::V128AndNot => binary(stack, |a, b| a & !b),
        S::V128Or => binary(stack, |a, b| a | b),
        S::V128Xor => binary(stack, |a, b| a ^ b),
        S::V128Bitselect => ternary(stack, |v1, v2, c| (v1 & c) | (v2 & !c)),
        S::V128AnyTrue => unary(stack, |a| Slot::from(a != 0)),

        // Lane tests.
        S::I8x16AllTrue => unary(stack, all_true::<u8>),
        S::I16x8AllTrue => unary(stack, all_true::<u16>),
        S::I32x4AllTrue => unary(stack, all_true::<u32>),
        S::I64x2AllTrue => unary(stack, all_true::<u64>),
        S::I8x16Bitmask => unary(stack, bitmask::<u8>),
        S::I16x8Bitmask => unary(stack, bitmask::<u16>),
        S::I32x4Bitmask => unary(stack, bitmask::<u32>),
        S::I64x2Bitmask => unary(stack, bitmask::<u64>),

        // Integer unary.
        S::I8x16Abs => unary(stack, |a| map::<u8>(a, |x| (x as i8).wrapping_abs() as u8)),
        S::I16x8Abs => unary(stack, |a| map::<u16>(a, |x| (x as i16).wrapping_abs() as u16)),
        S::I32x4Abs => unary(stack, |a| map::<u32>(a, |x| (x as i32).wrapping_abs() as u32)),
        S::I64x2Abs => unary(stack, |a| map::<u64>(a, |x| (x as i64).wrapping_abs() as u64)),
        S::I8x16Neg => unary(stack, |a| map::<u8>(a, u8::wrapping_neg)),
        S::I16x8Neg => unary(stack, |a| map::<u16>(a, u16::wrapping_neg)),
        S::I32x4Neg => unary(stack, |a| map::<u32>(a, u32::wrapping_neg)),
        S::I64x2Neg => unary(stack, |a| map::<u64>(a, u64::wrapping_neg)),
        S::I8x16Popcnt => unary(stack, |a| map::<u8>(a, |x| x.count_ones() as u8)),

        // Shifts: the count is taken modulo the lane width.
        S::I8x16Shl => binary(stack, |a, n| shift::<u8>(a, n, |x, s| x << s)),
        S::I8x16ShrS => binary(stack, |a, n| shift::<u8>(a, n, |x, s| ((x as i8) >> s) as u8)),
        S::I8x16ShrU => binary(stack, |a, n| shift::<u8>(a, n, |x, s| x >> s)),
        S::I16x8Shl => binary(stack, |a, n| shift::<u16>(a, n, |x, s| x << s)),
        S::I16x8ShrS => binary(stack, |a, n| shift::<u16>(a, n, |x, s| ((x as i16) >> s) as u16)),
        S::I16x8ShrU => binary(stack, |a, n| shift::<u16>(a, n, |x, s| x >> s)),
        S::I32x4Shl => binary(stack, |a, n| shift::<u32>(a, n, |x, s| x << s)),
        S::I32x4ShrS => binary(stack, |a, n| shift::<u32>(a, n, |x, s| ((x as i32) >> s) as u32)),
        S::I32x4ShrU => binary(stack, |a, n| shift::<u32>(a, n, |x, s| x >> s)),
        S::I64x2Shl => binary(stack, |a, n| shift::<u64>(a, n, |x, s| x << s)),
        S::I64x2ShrS => binary(stack, |a, n| shift::<u64>(a, n, |x, s| ((x as i64) >> s) as u64)),
        S::I64x2ShrU => binary(stack, |a, n| shift::<u64>(a, n, |x, s| x >> s)),

        // Integer arithmetic.
        S::I8x16Add => binary(stack, |a, b| zip::<u8>(a, b, u8::wrapping_add)),
        S::I16x8Add => binary(stack, |a, b| zip::<u16>(a, b, u16::wrapping_add)),
        S::I32x4Add => binary(stack, |a, b| zip::<u32>(a, b, u32::wrapping_add)),
        S::I64x2Add => binary(stack, |a, b| zip::<u64>(a, b, u64::wrapping_add)),
        S::I8x16Sub => binary(stack, |a, b| zip::<u8>(a, b, u8::wrapping_sub)),
        S::I16x8Sub => binary(stack, |a, b| zip::<u16>(a, b, u16::wrapping_sub)),
        S::I32x4Sub => binary(stack, |a, b| zip::<u32>(a, b, u32::wrapping_sub)),
        S::I64x2Sub => binary(stack, |a, b| zip::<u64>(a, b, u64::wrapping_sub)),
        S::I16x8Mul => binary(stack, |a, b| zip::<u16>(a, b, u16::wrapping_mul)),
        S::I32x4Mul => binary(stack, |a, b| zip::<u32>(a, b, u32::wrapping_mul)),
        S::I64x2Mul => binary(stack, |a, b| zip::<u64>(a, b, u64::wrapping_mul)),
        S::I8x16AddSatS => binary(stack, |a, b| zip::<u8>(a, b, |x, y| (x as i8).saturating_add(y as i8) as u8)),
        S::I8x16AddSatU => binary(stack, |a, b| zip::<u8>(a, b, u8::saturating_add)),
        S::I8x16SubSatS => binary(stack, |a, b| zip::<u8>(a, b, |x, y| (x as i8).saturating_sub(y as i8) as u8)),
        S::I8x16SubSatU => binary(stack, |a, b| zip::<u8>(a, b, u8::saturating_sub)),
        S::I16x8AddSatS => binary(stack, |a, b| zip::<u16>(a, b, |x, y| (x as i16).saturating_add(y as i16) as u16)),
        S::I16x8AddSatU => binary(stack, |a, b| zip::<u16>(a, b, u16::saturating_add)),
        S::I16x8SubSatS => binary(stack, |a, b| zip::<u16>(a, b, |x, y| (x as i16).saturating_sub(y as i16) as u16)),
        S::I16x8SubSatU => binary(stack, |a, b| zip::<u16>(a, b, u16::saturating_sub)),
        S::I8x16MinS => binary(stack, |a, b| zip::<u8>(a, b, |x, y| (x as i8).min(y as i8) as u8)),
        S::I8x16MinU => binary(stack, |a, b| zip::<u8>(a, b, u8::min)),
        S::I8x16MaxS => binary(stack, |a, b| zip::<u8>(a, b, |x, y| (x as i8).max(y as i8) as u8)),
        S::I8x16MaxU => binary(stack, |a, b| zip::<u8>(a, b, u8::max)),
        S::I16x8MinS => binary(stack, |a, b| zip::<u16>(a, b, |x, y| (x as i16).min(y as i16) as u16)),
        S::I16x8MinU => binary(stack, |a, b| zip::<u16>(a, b, u16::min)),
        S::I16x8MaxS => binary(stack, |a, b| zip::<u16>(a, b, |x, y| (x as i16).max(y as i16) as u16)),
        S::I16x8MaxU => binary(stack, |a, b| zip::<u16>(a, b, u16::max)),
        S::I32x4MinS => binary(stack, |a, b| zip::<u32>(a, b, |x, y| (x as i32).min(y as i32) as u32)),
        S::I32x4MinU => binary(stack, |a, b| zip::<u32>(a, b, u32::min)),
        S::I32x4MaxS => binary(stack, |a, b| zip::<u32>(a, b, |x, y| (x as i32).max(y as i32) as u32)),
        S::I32x4MaxU => binary(stack, |a, b| zip::<u32>(a, b, u32::max)),
        S::I8x16AvgrU => binary(stack, |a, b| zip::<u8>(a, b, |x, y| ((u16::from(x) + u16::from(y) + 1) >> 1) as u8)),
        S::I16x8AvgrU => binary(stack, |a, b| zip::<u16>(a, b, |x, y| ((u32::from(x) + u32::from(y) + 1) >> 1) as u16)),
        S::I16x8Q15MulrSatS => binary(stack, |a, b| zip::<u16>(a, b, q15mulr_sat)),
        S::I32x4DotI16x8S => binary(stack, dot_i16x8_s),

        // Narrowing (signed inputs, saturated to the narrow signed or unsigned range).
        S::I8x16NarrowI16x8S => binary(stack, |a, b| narrow::<u16, u8>(a, b, -0x80, 0x7F)),
        S::I8x16NarrowI16x8U => binary(stack, |a, b| narrow::<u16, u8>(a, b, 0, 0xFF)),
        S::I16x8NarrowI32x4S => binary(stack, |a, b| narrow::<u32, u16>(a, b, -0x8000, 0x7FFF)),
        S::I16x8NarrowI32x4U => binary(stack, |a, b| narrow::<u32, u16>(a, b, 0, 0xFFFF)),

        // Widening.
        S::I16x8ExtendLowI8x16S => unary(stack, |a| extend::<u8, u16>(a, LOW, sext)),
        S::I16x8ExtendHighI8x16S => unary(stack, |a| extend::<u8, u16>(a, HIGH, sext)),
        S::I16x8ExtendLowI8x16U => unary(stack, |a| extend::<u8, u16>(a, LOW, zext)),
        S::I16x8ExtendHighI8x16U => unary(stack, |a| extend::<u8, u16>(a, HIGH, zext)),
        S::I32x4ExtendLowI16x8S => unary(stack, |a| extend::<u16, u32>(a, LOW, sext)),
        S::I32x4ExtendHighI16x8S => unary(stack, |a| extend::<u16, u32>(a, HIGH, sext)),
        S::I32x4ExtendLowI16x8U => unary(stack, |a| extend::<u16, u32>(a, LOW, zext)),
        S::I32x4ExtendHighI16x8U => unary(stack, |a| extend::<u16, u32>(a, HIGH, zext)),
        S::I64x2ExtendLowI32x4S => unary(stack, |a| extend::<u32, u64>(a, LOW, sext)),
        S::I64x2ExtendHighI32x4S => unary(stack, |a| extend::<u32, u64>(a, HIGH, sext)),
        S::I64x2ExtendLowI32x4U => unary(stack, |a| extend::<u32, u64>(a, LOW, zext)),
        S::I64x2ExtendHighI32x4U => unary(stack, |a| extend::<u32, u64>(a, HIGH, zext)),
        S::I16x8ExtMulLowI8x16S => binary(stack, |a, b| extmul::<u8, u16>(a, b, LOW, sext)),
        S::I16x8ExtMulHighI8x16S => binary(stack, |a, b| extmul::<u8, u16>(a, b, HIGH, sext)),
        S::I16x8ExtMulLowI8x16U => binary(stack, |a, b| extmul::<u8, u16>(a, b, LOW, zext)),
        S::I16x8ExtMulHighI8x16U => binary(stack, |a, b| extmul::<u8, u16>(a, b, HIGH, zext)),
        S::I32x4ExtMulLowI16x8S => binary(stack, |a, b| extmul::<u16, u32>(a, b, LOW, sext)),
        S::I32x4ExtMulHighI16x8S => binary(stack, |a, b| extmul::<u16, u32>(a, b, HIGH, sext)),
        S::I32x4ExtMulLowI16x8U => binary(stack, |a, b| extmul::<u16, u32>(a, b, LOW, zext)),
        S::I32x4ExtMulHighI16x8U => binary(stack, |a, b| extmul::<u16, u32>(a, b, HIGH, zext)),
        S::I64x2ExtMulLowI32x4S => binary(stack, |a, b| extmul::<u32, u64>(a, b, LOW, sext)),
        S::I64x2ExtMulHighI32x4S => binary(stack, |a, b| extmul::<u32, u64>(a, b, HIGH, sext)),
        S::I64x2ExtMulLowI32x4U => binary(stack, |a, b| extmul::<u32, u64>(a, b, LOW, zext)),
        S::I64x2ExtMulHighI32x4U => binary(stack, |a, b| extmul::<u32, u64>(a, b, HIGH, zext)),
        S::I16x8ExtAddPairwiseI8x16S => unary(stack, |a| extadd_pairwise::<u8, u16>(a, sext)),
        S::I16x8ExtAddPairwiseI8x16U => unary(stack, |a| extadd_pairwise::<u8, u16>(a, zext)),
        S::I32x4ExtAddPairwiseI16x8S => unary(stack, |a| extadd_pairwise::<u16, u32>(a, sext)),
        S::I32x4ExtAddPairwiseI16x8U => unary(stack, |a| extadd_pairwise::<u16, u32>(a, zext)),

        // Float sign operations: bitwise, NaN payloads kept.
        S::F32x4Abs => unary(stack, |a| map::<u32>(a, |x| x & !F32_SIGN)),
        S::F32x4Neg => unary(stack, |a| map::<u32>(a, |x| x ^ F32_SIGN)),
        S::F64x2Abs => unary(stack, |a| map::<u64>(a, |x| x & !F64_SIGN)),
        S::F64x2Neg => unary(stack, |a| map::<u64>(a, |x| x ^ F64_SIGN)),

        // Float arithmetic: NaN results canonicalized.
        S::F32x4Sqrt => unary(stack, |a| fmap::<f32>(a, crate::float::sqrt32)),
        S::F32x4Ceil => unary(stack, |a| fmap::<f32>(a, crate::float::ceil32)),
        S::F32x4Floor => unary(stack, |a| fmap::<f32>(a, crate::float::floor32)),
        S::F32x4Trunc => unary(stack, |a| fmap::<f32>(a, crate::float::trunc32)),
        S::F32x4Nearest => unary(stack, |a| fmap::<f32>(a, crate::float::nearest32)),
        S::F64x2Sqrt => unary(stack, |a| fmap::<f64>(a, crate::float::sqrt64)),
        S::F64x2Ceil => unary(stack, |a| fmap::<f64>(a, crate::float::ceil64)),
        S::F64x2Floor => unary(stack, |a| fmap::<f64>(a, crate::float::floor64)),
        S::F64x2Trunc => unary(stack, |a| fmap::<f64>(a, crate::float::trunc64)),
        S::F64x2Nearest => unary(stack, |a| fmap::<f64>(a, crate::float::nearest64)),
        S::F32x4Add => binary(stack, |a, b| fzip::<f32>(a, b, |x, y| x + y)),
        S::F32x4Sub => binary(stack, |a, b| fzip::<f32>(a, b, |x, y| x - y)),
        S::F32x4Mul => binary(stack, |a, b| fzip::<f32>(a, b, |x, y| x * y)),
        S::F32x4Div => binary(stack, |a, b| fzip::<f32>(a, b, |x, y| x / y)),
        S::F32x4Min => binary(stack, |a, b| fzip::<f32>(a, b, fmin)),
        S::F32x4Max => binary(stack, |a, b| fzip::<f32>(a, b, fmax)),
        S::F64x2Add => binary(stack, |a, b| fzip::<f64>(a, b, |x, y| x + y)),
        S::F64x2Sub => binary(stack, |a, b| fzip::<f64>(a, b, |x, y| x - y)),
        S::F64x2Mul => binary(stack, |a, b| fzip::<f64>(a, b, |x, y| x * y)),
        S::F64x2Div => binary(stack, |a, b| fzip::<f64>(a, b, |x, y| x / y)),
        S::F64x2Min => binary(stack, |a, b| fzip::<f64>(a, b, fmin)),
        S::F64x2Max => binary(stack, |a, b| fzip::<f64>(a, b, fmax)),

        // Pseudo-min/max: one of the operands, bit for bit.
        S::F32x4PMin => binary(stack, |a, b| fpick::<f32>(a, b, |x, y| y < x)),
        S::F32x4PMax => binary(stack, |a, b| fpick::<f32>(a, b, |x, y| x < y)),
        S::F64x2PMin => binary(stack, |a, b| fpick::<f64>(a, b, |x, y| y < x)),
        S::F64x2PMax => binary(stack, |a, b| fpick::<f64>(a, b, |x, y| x < y)),

        // Conversions. Rust's float-to-int `as` saturates and maps NaN to 0; int-to-float `as`
        // and f64-to-f32 `as` round to nearest, ties to even.
        S::I32x4TruncSatF32x4S => unary(stack, |a| map::<u32>(a, |x| f32::from_bits(x) as i32 as u32)),
        S::I32x4TruncSatF32x4U => unary(stack, |a| map::<u32>(a, |x| f32::from_bits(x) as u32)),
        S::F32x4ConvertI32x4S => unary(stack, |a| map::<u32>(a, |x| (x as i32 as f32).to_bits())),
        S::F32x4ConvertI32x4U => unary(stack, |a| map::<u32>(a, |x| (x as f32).to_bits())),
        S::I32x4TruncSatF64x2SZero => unary(stack, |a| low_or_zero::<u64, u32>(a, |x| f64::from_bits(x) as i32 as u32)),
        S::I32x4TruncSatF64x2UZero => unary(stack, |a| low_or_zero::<u64, u32>(a, |x| f64::from_bits(x) as u32)),
        S::F32x4DemoteF64x2Zero => {
            unary(stack, |a| low_or_zero::<u64, u32>(a, |x| canonical(f64::from_bits(x) as f32)))
        }
        S::F64x2ConvertLowI32x4S => {
            unary(stack, |a| extend::<u32, u64>(a, LOW, |x| (x as i32 as f64).to_bits().into()))
        }
        S::F64x2ConvertLowI32x4U => unary(stack, |a| extend::<u32, u64>(a, LOW, |x| (x as f64).to_bits().into())),
        S::F64x2PromoteLowF32x4 => {
            unary(stack, |a| extend::<u32, u64>(a, LOW, |x| canonical(f64::from(f32::from_bits(x))).into()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stack plumbing.

/// Pops one operand. Validated code always has it; the one-step verifier may run an instruction
/// on a state a malicious party made up, where a missing operand reads as zero instead of
/// panicking (the verifier has already demanded every operand the state really has).
fn pop(stack: &mut Vec<Slot>) -> Slot {
    stack.pop().unwrap_or(0)
}

/// Pops `a`, pushes `f(a)`.
fn unary(stack: &mut Vec<Slot>, f: impl FnOnce(Slot) -> Slot) {
    let a = pop(stack);
    stack.push(f(a));
}

/// Pops `b` (top), then `a`; pushes `f(a, b)`.
fn binary(stack: &mut Vec<Slot>, f: impl FnOnce(Slot, Slot) -> Slot) {
    let b = pop(stack);
    let a = pop(stack);
    stack.push(f(a, b));
}

/// Pops `c` (top), then `b`, then `a`; pushes `f(a, b, c)`.
fn ternary(stack: &mut Vec<Slot>, f: impl FnOnce(Slot, Slot, Slot) -> Slot) {
    let c = pop(stack);
    let b = pop(stack);
    let a = pop(stack);
    stack.push(f(a, b, c));
}

/// Zero-extends a 32-bit result into its slot.
fn zext32(x: u32) -> Slot {
    Slot::from(x)
}

// ---------------------------------------------------------------------------------------------
// Integer lanes.

/// An unsigned integer lane type (`u8`, `u16`, `u32`, `u64`); signed views are casts of these.
trait Lane: Copy + Eq {
    /// Lane width in bits.
    const BITS: u32;
    /// Lanes per `v128`.
    const COUNT: u32 = 128 / Self::BITS;
    /// The low `BITS` bits of `v`.
    fn truncate(v: u128) -> Self;
    /// Zero-extends to 128 bits.
    fn widen(self) -> u128;
}

macro_rules! impl_lane {
    ($($t:ty),*) => {$(
        impl Lane for $t {
            const BITS: u32 = <$t>::BITS;
            fn truncate(v: u128) -> Self {
                v as $t
            }
            fn widen(self) -> u128 {
                self as u128
            }
        }
    )*};
}
impl_lane!(u8, u16, u32, u64);

/// Lane `i` (`i < T::COUNT`) of `v`.
fn get<T: Lane>(v: Slot, i: u32) -> T {
    T::truncate(v >> (i * T::BITS))
}

/// The vector whose lane `i` is `f(i)`.
fn build<T: Lane>(mut f: impl FnMut(u32) -> T) -> Slot {
    let mut v = 0;
    for i in 0..T::COUNT {
        v |= f(i).widen() << (i * T::BITS);
    }
    v
}

/// Lane-wise `f(a)`.
fn map<T: Lane>(a: Slot, f: impl Fn(T) -> T) -> Slot {
    build(|i| f(get(a, i)))
}

/// Lane-wise `f(a, b)`.
fn zip<T: Lane>(a: Slot, b: Slot, f: impl Fn(T, T) -> T) -> Slot {
    build(|i| f(get(a, i), get(b, i)))
}

/// All ones if `b`, else zero.
fn mask<T: Lane>(b: bool) -> T {
    T::truncate(if b { u128::MAX } else { 0 })
}

/// Lane-wise comparison: all-ones lanes where `f(a, b)` holds, zero lanes elsewhere.
fn compare<T: Lane>(a: Slot, b: Slot, f: impl Fn(T, T) -> bool) -> Slot {
    build(|i| mask::<T>(f(get(a, i), get(b, i))))
}

/// The splat of `x`.
fn splat<T: Lane>(x: T) -> Slot {
    build(|_| x)
}

/// Lane `lane mod T::COUNT` of `v`.
fn extract<T: Lane>(v: Slot, lane: u8) -> T {
    get(v, u32::from(lane) % T::COUNT)
}

/// `v` with lane `lane mod T::COUNT` replaced by `x`.
fn replace<T: Lane>(v: Slot, lane: u8, x: T) -> Slot {
    let shift = (u32::from(lane) % T::COUNT) * T::BITS;
    let lane_mask = T::truncate(u128::MAX).widen() << shift;
    (v & !lane_mask) | (x.widen() << shift)
}

/// Lane-wise `f(x, n mod T::BITS)` where `n` is the i32 shift count.
fn shift<T: Lane>(a: Slot, n: Slot, f: impl Fn(T, u32) -> T) -> Slot {
    let s = (n as u32) % T::BITS;
    map(a, |x| f(x, s))
}

/// i32 1 if every lane is non-zero, else 0.
fn all_true<T: Lane>(a: Slot) -> Slot {
    Slot::from((0..T::COUNT).all(|i| get::<T>(a, i).widen() != 0))
}

/// i32 whose bit `i` is the top (sign) bit of lane `i`.
fn bitmask<T: Lane>(a: Slot) -> Slot {
    (0..T::COUNT).fold(0, |m, i| m | ((get::<T>(a, i).widen() >> (T::BITS - 1)) << i))
}

/// Sign-extends a lane to 128 bits.
fn sext<T: Lane>(x: T) -> u128 {
    let unused = 128 - T::BITS;
    (((x.widen() << unused) as i128) >> unused) as u128
}

/// Zero-extends a lane to 128 bits.
fn zext<T: Lane>(x: T) -> u128 {
    x.widen()
}

/// Selects the low or the high half of the narrow lanes in widening operations.
const LOW: bool = false;
/// See [`LOW`].
const HIGH: bool = true;

/// The index of the first narrow lane a widening operation reads (`W::COUNT` narrow lanes).
fn half_offset<W: Lane>(high: bool) -> u32 {
    if high { W::COUNT } else { 0 }
}

/// Widens the low or high half of the `N` lanes of `a` to `W` lanes with `ext`.
fn extend<N: Lane, W: Lane>(a: Slot, high: bool, ext: impl Fn(N) -> u128) -> Slot {
    let off = half_offset::<W>(high);
    build(|i| W::truncate(ext(get(a, i + off))))
}

/// Widening multiplication of the low or high halves of `a` and `b` (exact in `W`).
fn extmul<N: Lane, W: Lane>(a: Slot, b: Slot, high: bool, ext: impl Fn(N) -> u128) -> Slot {
    let off = half_offset::<W>(high);
    build(|i| W::truncate(ext(get(a, i + off)).wrapping_mul(ext(get(b, i + off)))))
}

/// Sums adjacent pairs of `N` lanes into `W` lanes (exact in `W`).
fn extadd_pairwise<N: Lane, W: Lane>(a: Slot, ext: impl Fn(N) -> u128) -> Slot {
    build(|i| W::truncate(ext(get(a, 2 * i)).wrapping_add(ext(get(a, 2 * i + 1)))))
}

/// Narrows the signed `W` lanes of `a` (low half of the result) and `b` (high half) to `N`
/// lanes, saturating to `lo..=hi`.
fn narrow<W: Lane, N: Lane>(a: Slot, b: Slot, lo: i128, hi: i128) -> Slot {
    build(|i| {
        let x = if i < W::COUNT { get::<W>(a, i) } else { get::<W>(b, i - W::COUNT) };
        N::truncate((sext(x) as i128).clamp(lo, hi) as u128)
    })
}

/// The two `W` lanes of `a` mapped by `f` into the low two `N` lanes; the other lanes zero.
fn low_or_zero<W: Lane, N: Lane>(a: Slot, f: impl Fn(W) -> N) -> Slot {
    build(|i| if i < W::COUNT { f(get(a, i)) } else { N::truncate(0) })
}

/// `i16x8.q15mulr_sat_s` on one lane: `(x * y + 2^14) >> 15`, saturated.
fn q15mulr_sat(x: u16, y: u16) -> u16 {
    let p = i32::from(x as i16) * i32::from(y as i16);
    ((p + (1 << 14)) >> 15).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as u16
}

/// `i32x4.dot_i16x8_s`: sums of products of adjacent signed i16 pairs, wrapping.
fn dot_i16x8_s(a: Slot, b: Slot) -> Slot {
    let product = |j: u32| i32::from(get::<u16>(a, j) as i16) * i32::from(get::<u16>(b, j) as i16);
    build(|i| product(2 * i).wrapping_add(product(2 * i + 1)) as u32)
}

/// `i8x16.swizzle`: lane `i` is `a[b[i]]`, or 0 where `b[i] >= 16`.
fn swizzle(a: Slot, b: Slot) -> Slot {
    build(|i| {
        let s = get::<u8>(b, i);
        if s < 16 { get::<u8>(a, u32::from(s)) } else { 0 }
    })
}

/// `i8x16.shuffle`: lane `i` is byte `indices[i]` of `a ‖ b`.
fn shuffle(a: Slot, b: Slot, indices: [u8; 16]) -> Slot {
    build(|i| {
        let s = u32::from(indices[i as usize] % 32);
        if s < 16 { get::<u8>(a, s) } else { get::<u8>(b, s - 16) }
    })
}

// ---------------------------------------------------------------------------------------------
// Float lanes.

/// Sign bit of an `f32`.
const F32_SIGN: u32 = 1 << 31;
/// Sign bit of an `f64`.
const F64_SIGN: u64 = 1 << 63;

/// `f32` or `f64`, stored in lanes as its IEEE bits.
trait Float: Copy + PartialOrd {
    /// The lane type holding the bits.
    type Bits: Lane;
    /// The canonical NaN's bits.
    const CANONICAL_NAN: Self::Bits;
    /// The float with these bits.
    fn from_lane(bits: Self::Bits) -> Self;
    /// The float's bits.
    fn to_lane(self) -> Self::Bits;
    /// True for every NaN.
    fn nan(self) -> bool;
    /// True if the sign bit is set.
    fn negative(self) -> bool;
}

macro_rules! impl_float {
    ($f:ty, $bits:ty, $canonical:expr) => {
        impl Float for $f {
            type Bits = $bits;
            const CANONICAL_NAN: $bits = $canonical;
            fn from_lane(bits: $bits) -> Self {
                <$f>::from_bits(bits)
            }
            fn to_lane(self) -> $bits {
                self.to_bits()
            }
            fn nan(self) -> bool {
                self.is_nan()
            }
            fn negative(self) -> bool {
                self.is_sign_negative()
            }
        }
    };
}
impl_float!(f32, u32, CANONICAL_NAN_F32);
impl_float!(f64, u64, CANONICAL_NAN_F64);

/// The bits of `x`, or of the canonical NaN if `x` is any NaN.
fn canonical<F: Float>(x: F) -> F::Bits {
    if x.nan() { F::CANONICAL_NAN } else { x.to_lane() }
}

/// Lane-wise arithmetic `f(a)` with NaN results canonicalized.
fn fmap<F: Float>(a: Slot, f: impl Fn(F) -> F) -> Slot {
    map::<F::Bits>(a, |x| canonical(f(F::from_lane(x))))
}

/// Lane-wise arithmetic `f(a, b)` with NaN results canonicalized.
fn fzip<F: Float>(a: Slot, b: Slot, f: impl Fn(F, F) -> F) -> Slot {
    zip::<F::Bits>(a, b, |x, y| canonical(f(F::from_lane(x), F::from_lane(y))))
}

/// Lane-wise float comparison producing all-ones/zero lanes.
fn fcompare<F: Float>(a: Slot, b: Slot, f: impl Fn(F, F) -> bool) -> Slot {
    compare::<F::Bits>(a, b, |x, y| f(F::from_lane(x), F::from_lane(y)))
}

/// Lane-wise: `b`'s lane where `f(a, b)` holds, else `a`'s lane, bits unchanged.
fn fpick<F: Float>(a: Slot, b: Slot, f: impl Fn(F, F) -> bool) -> Slot {
    zip::<F::Bits>(a, b, |x, y| if f(F::from_lane(x), F::from_lane(y)) { y } else { x })
}

/// Wasm `min`: NaN if either is NaN (canonicalized by the caller), and -0 < +0.
fn fmin<F: Float>(x: F, y: F) -> F {
    if x.nan() {
        x
    } else if y.nan() {
        y
    } else if x < y {
        x
    } else if y < x {
        y
    } else if x.negative() {
        // Equal: identical unless they are zeros of different signs; -0 wins.
        x
    } else {
        y
    }
}

/// Wasm `max`: NaN if either is NaN (canonicalized by the caller), and +0 > -0.
fn fmax<F: Float>(x: F, y: F) -> F {
    if x.nan() {
        x
    } else if y.nan() {
        y
    } else if x > y {
        x
    } else if y > x {
        y
    } else if x.negative() {
        // Equal: identical unless they are zeros of different signs; +0 wins.
        y
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SimdOp as S;

    // -----------------------------------------------------------------------------------------
    // Helpers.

    /// Runs `op` on `args` (last = top) and returns its single result.
    fn run(op: SimdOp, args: &[Slot]) -> Slot {
        let mut stack = vec![0xDEAD_BEEF];
        stack.extend_from_slice(args);
        exec(op, &mut stack);
        assert_eq!(stack.len(), 2, "{op:?} must pop {} operands and push one", args.len());
        assert_eq!(stack[0], 0xDEAD_BEEF, "{op:?} touched a slot below its operands");
        stack[1]
    }

    fn from_lanes<const N: usize>(bits: u32, lanes: [u128; N]) -> Slot {
        let lane_mask = u128::MAX >> (128 - bits);
        lanes.iter().enumerate().fold(0, |v, (i, &x)| v | ((x & lane_mask) << (i as u32 * bits)))
    }
    fn i8s(l: [i8; 16]) -> Slot {
        from_lanes(8, l.map(|x| x as u8 as u128))
    }
    fn u8s(l: [u8; 16]) -> Slot {
        from_lanes(8, l.map(u128::from))
    }
    fn i16s(l: [i16; 8]) -> Slot {
        from_lanes(16, l.map(|x| x as u16 as u128))
    }
    fn u16s(l: [u16; 8]) -> Slot {
        from_lanes(16, l.map(u128::from))
    }
    fn i32s(l: [i32; 4]) -> Slot {
        from_lanes(32, l.map(|x| x as u32 as u128))
    }
    fn u32s(l: [u32; 4]) -> Slot {
        from_lanes(32, l.map(u128::from))
    }
    fn i64s(l: [i64; 2]) -> Slot {
        from_lanes(64, l.map(|x| x as u64 as u128))
    }
    fn u64s(l: [u64; 2]) -> Slot {
        from_lanes(64, l.map(u128::from))
    }
    fn f32s(l: [f32; 4]) -> Slot {
        u32s(l.map(f32::to_bits))
    }
    fn f64s(l: [f64; 2]) -> Slot {
        u64s(l.map(f64::to_bits))
    }
    fn lanes<const N: usize>(v: Slot) -> [u128; N] {
        let bits = 128 / N as u32;
        let lane_mask = u128::MAX >> (128 - bits);
        std::array::from_fn(|i| (v >> (i as u32 * bits)) & lane_mask)
    }
    fn as_i8s(v: Slot) -> [i8; 16] {
        lanes::<16>(v).map(|x| x as i8)
    }
    fn as_i16s(v: Slot) -> [i16; 8] {
        lanes::<8>(v).map(|x| x as i16)
    }
    fn as_u16s(v: Slot) -> [u16; 8] {
        lanes::<8>(v).map(|x| x as u16)
    }
    fn as_i32s(v: Slot) -> [i32; 4] {
        lanes::<4>(v).map(|x| x as i32)
    }
    fn as_u32s(v: Slot) -> [u32; 4] {
        lanes::<4>(v).map(|x| x as u32)
    }
    fn as_i64s(v: Slot) -> [i64; 2] {
        lanes::<2>(v).map(|x| x as i64)
    }
    fn as_u64s(v: Slot) -> [u64; 2] {
        lanes::<2>(v).map(|x| x as u64)
    }
    fn as_f32s(v: Slot) -> [f32; 4] {
        as_u32s(v).map(f32::from_bits)
    }
    fn as_f64s(v: Slot) -> [f64; 2] {
        as_u64s(v).map(f64::from_bits)
    }

    const NAN32_PAYLOAD: u32 = 0x7FA0_0001; // signalling, with payload
    const NAN32_NEG: u32 = 0xFFC0_0002;
    const NAN64_PAYLOAD: u64 = 0x7FF4_0000_0000_0001; // signalling, with payload
    const NAN64_NEG: u64 = 0xFFF8_0000_0000_0002;
    const ALL: Slot = u128::MAX;

    // -----------------------------------------------------------------------------------------
    // Shape and interface.

    #[test]
    fn simd_op_is_small() {
        assert!(std::mem::size_of::<SimdOp>() <= 17, "{}", std::mem::size_of::<SimdOp>());
        assert_eq!(std::mem::align_of::<SimdOp>(), 1);
    }

    // -----------------------------------------------------------------------------------------
    // Constants, lanes, shuffles.

    #[test]
    fn v128_const_is_little_endian() {
        let bytes: [u8; 16] = std::array::from_fn(|i| i as u8 * 3 + 1);
        let v = run(S::V128Const(bytes), &[]);
        assert_eq!(v.to_le_bytes(), bytes);
        assert_eq!(v & 0xFF, 1);
    }

    #[test]
    fn shuffle_picks_from_both_operands() {
        let a = u8s(std::array::from_fn(|i| i as u8));
        let b = u8s(std::array::from_fn(|i| 0x80 + i as u8));
        let idx = [0, 17, 2, 19, 31, 16, 15, 30, 8, 8, 24, 7, 0, 31, 1, 18];
        let want = [0, 0x81, 2, 0x83, 0x8F, 0x80, 15, 0x8E, 8, 8, 0x88, 7, 0, 0x8F, 1, 0x82];
        assert_eq!(run(S::I8x16Shuffle(idx), &[a, b]), u8s(want));
    }

    #[test]
    fn swizzle_zeroes_out_of_range_indices() {
        let a = u8s(std::array::from_fn(|i| 0x10 + i as u8));
        let s = u8s([0, 15, 16, 255, 3, 0x80, 17, 14, 1, 1, 32, 0x7F, 5, 9, 0xF0, 2]);
        let want = [0x10, 0x1F, 0, 0, 0x13, 0, 0, 0x1E, 0x11, 0x11, 0, 0, 0x15, 0x19, 0, 0x12];
        assert_eq!(run(S::I8x16Swizzle, &[a, s]), u8s(want));
    }

    #[test]
    fn splat_reads_only_the_low_scalar_bits() {
        let junk = 0xABCD_u128 << 64;
        assert_eq!(run(S::I8x16Splat, &[junk | 0x1_23]), u8s([0x23; 16]));
        assert_eq!(run(S::I16x8Splat, &[junk | 0x1_8001]), u16s([0x8001; 8]));
        assert_eq!(run(S::I32x4Splat, &[0xFFFF_FFFF]), ALL);
        assert_eq!(run(S::I64x2Splat, &[(7 << 64) | 0x8000_0000_0000_0001]), u64s([0x8000_0000_0000_0001; 2]));
        // f32/f64 splats move bits: NaN payloads survive.
        assert_eq!(run(S::F32x4Splat, &[NAN32_PAYLOAD.into()]), u32s([NAN32_PAYLOAD; 4]));
        assert_eq!(run(S::F64x2Splat, &[NAN64_PAYLOAD.into()]), u64s([NAN64_PAYLOAD; 2]));
    }

    #[test]
    fn extract_lane_results_are_canonical_scalars() {
        let v = i8s([0, 1, 2, 3, 4, -3, 6, 7, 8, 9, 10, 11, 12, 13, 14, -128]);
        assert_eq!(run(S::I8x16ExtractLaneS(5), &[v]), 0xFFFF_FFFD);
        assert_eq!(run(S::I8x16ExtractLaneU(5), &[v]), 0xFD);
        assert_eq!(run(S::I8x16ExtractLaneS(15), &[v]), 0xFFFF_FF80);
        assert_eq!(run(S::I8x16ExtractLaneS(4), &[v]), 4);
        let v = i16s([1, -2, 3, 4, 5, 6, 7, i16::MIN]);
        assert_eq!(run(S::I16x8ExtractLaneS(1), &[v]), 0xFFFF_FFFE);
        assert_eq!(run(S::I16x8ExtractLaneU(1), &[v]), 0xFFFE);
        assert_eq!(run(S::I16x8ExtractLaneS(7), &[v]), 0xFFFF_8000);
        assert_eq!(run(S::I16x8ExtractLaneU(7), &[v]), 0x8000);
        let v = u32s([1, 2, 0xFFFF_FFFF, NAN32_PAYLOAD]);
        assert_eq!(run(S::I32x4ExtractLane(2), &[v]), 0xFFFF_FFFF);
        assert_eq!(run(S::F32x4ExtractLane(3), &[v]), NAN32_PAYLOAD.into());
        let v = u64s([u64::MAX, NAN64_PAYLOAD]);
        assert_eq!(run(S::I64x2ExtractLane(0), &[v]), u64::MAX.into());
        assert_eq!(run(S::F64x2ExtractLane(1), &[v]), NAN64_PAYLOAD.into());
    }

    #[test]
    fn replace_lane_touches_one_lane() {
        let v = u8s(std::array::from_fn(|i| i as u8));
        let mut want: [u8; 16] = std::array::from_fn(|i| i as u8);
        want[15] = 0xAB;
        assert_eq!(run(S::I8x16ReplaceLane(15), &[v, 0xFFFF_01AB]), u8s(want));
        want[15] = 15;
        want[0] = 0x7F;
        assert_eq!(run(S::I8x16ReplaceLane(0), &[v, 0x7F]), u8s(want));
        let v = u16s([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(run(S::I16x8ReplaceLane(3), &[v, 0x1_FFFF]), u16s([1, 2, 3, 0xFFFF, 5, 6, 7, 8]));
        let v = u32s([1, 2, 3, 4]);
        assert_eq!(run(S::I32x4ReplaceLane(1), &[v, (1 << 100) | 9]), u32s([1, 9, 3, 4]));
        assert_eq!(run(S::F32x4ReplaceLane(2), &[v, NAN32_NEG.into()]), u32s([1, 2, NAN32_NEG, 4]));
        let v = u64s([1, 2]);
        assert_eq!(run(S::I64x2ReplaceLane(1), &[v, u64::MAX.into()]), u64s([1, u64::MAX]));
        assert_eq!(run(S::F64x2ReplaceLane(0), &[v, NAN64_PAYLOAD.into()]), u64s([NAN64_PAYLOAD, 2]));
    }

    // -----------------------------------------------------------------------------------------
    // Bitwise and lane tests.

    #[test]
    fn bitwise_operations_and_operand_order() {
        let a = 0xFF00_FF00_1234_5678_0000_FFFF_AAAA_5555_u128;
        let b = 0x0F0F_0F0F_FFFF_0000_1111_2222_3333_4444_u128;
        assert_eq!(run(S::V128Not, &[a]), !a);
        assert_eq!(run(S::V128And, &[a, b]), a & b);
        assert_eq!(run(S::V128AndNot, &[a, b]), a & !b);
        assert_eq!(run(S::V128Or, &[a, b]), a | b);
        assert_eq!(run(S::V128Xor, &[a, b]), a ^ b);
        let c = 0xFFFF_FFFF_0000_0000_FFFF_0000_F0F0_0F0F_u128;
        assert_eq!(run(S::V128Bitselect, &[a, b, c]), (a & c) | (b & !c));
        assert_eq!(run(S::V128Bitselect, &[a, b, ALL]), a);
        assert_eq!(run(S::V128Bitselect, &[a, b, 0]), b);
    }

    #[test]
    fn any_true_all_true_bitmask() {
        assert_eq!(run(S::V128AnyTrue, &[0]), 0);
        assert_eq!(run(S::V128AnyTrue, &[1 << 127]), 1);
        assert_eq!(run(S::I8x16AllTrue, &[u8s([1; 16])]), 1);
        let mut l = [0x80u8; 16];
        l[9] = 0;
        assert_eq!(run(S::I8x16AllTrue, &[u8s(l)]), 0);
        assert_eq!(run(S::I16x8AllTrue, &[u16s([0x100; 8])]), 1);
        assert_eq!(run(S::I16x8AllTrue, &[u8s([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0])]), 0);
        assert_eq!(run(S::I32x4AllTrue, &[u32s([1 << 31, 1, 1 << 16, 1 << 8])]), 1);
        assert_eq!(run(S::I32x4AllTrue, &[u32s([1, 1, 0, 1])]), 0);
        assert_eq!(run(S::I64x2AllTrue, &[u64s([1 << 63, 1 << 32])]), 1);
        assert_eq!(run(S::I64x2AllTrue, &[u64s([0, 5])]), 0);

        let mut l = [0x7Fu8; 16];
        l[0] = 0x80;
        l[3] = 0xFF;
        l[15] = 0x90;
        assert_eq!(run(S::I8x16Bitmask, &[u8s(l)]), 0x8009);
        assert_eq!(run(S::I8x16Bitmask, &[ALL]), 0xFFFF);
        assert_eq!(run(S::I16x8Bitmask, &[i16s([-1, 1, 0, i16::MIN, 0x7FFF, 0, 0, -5])]), 0b1000_1001);
        assert_eq!(run(S::I32x4Bitmask, &[i32s([0, -1, 5, i32::MIN])]), 0b1010);
        assert_eq!(run(S::I64x2Bitmask, &[i64s([-1, 1])]), 1);
        assert_eq!(run(S::I64x2Bitmask, &[ALL]), 3);
    }

    // -----------------------------------------------------------------------------------------
    // Integer comparisons.

    #[test]
    fn integer_comparisons() {
        let t8 = 0xFF;
        let a = i8s([-1, 1, 0, 5, -128, 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = i8s([1, -1, 0, 5, 127, -128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let lanes8 = |v: Slot| lanes::<16>(v);
        assert_eq!(lanes8(run(S::I8x16Eq, &[a, b]))[..6], [0, 0, t8, t8, 0, 0]);
        assert_eq!(lanes8(run(S::I8x16Ne, &[a, b]))[..6], [t8, t8, 0, 0, t8, t8]);
        assert_eq!(lanes8(run(S::I8x16LtS, &[a, b]))[..6], [t8, 0, 0, 0, t8, 0]);
        assert_eq!(lanes8(run(S::I8x16LtU, &[a, b]))[..6], [0, t8, 0, 0, 0, t8]);
        assert_eq!(lanes8(run(S::I8x16GtS, &[a, b]))[..6], [0, t8, 0, 0, 0, t8]);
        assert_eq!(lanes8(run(S::I8x16GtU, &[a, b]))[..6], [t8, 0, 0, 0, t8, 0]);
        assert_eq!(lanes8(run(S::I8x16LeS, &[a, b]))[..6], [t8, 0, t8, t8, t8, 0]);
        assert_eq!(lanes8(run(S::I8x16LeU, &[a, b]))[..6], [0, t8, t8, t8, 0, t8]);
        assert_eq!(lanes8(run(S::I8x16GeS, &[a, b]))[..6], [0, t8, t8, t8, 0, t8]);
        assert_eq!(lanes8(run(S::I8x16GeU, &[a, b]))[..6], [t8, 0, t8, t8, t8, 0]);
        assert_eq!(lanes8(run(S::I8x16Eq, &[a, b]))[15], 0);

        let t16 = 0xFFFF;
        let a = i16s([-1, 1, 7, i16::MIN, 0, 0, 0, 0]);
        let b = i16s([1, -1, 7, i16::MAX, 0, 0, 0, 0]);
        assert_eq!(lanes::<8>(run(S::I16x8Eq, &[a, b]))[..4], [0, 0, t16, 0]);
        assert_eq!(lanes::<8>(run(S::I16x8Ne, &[a, b]))[..4], [t16, t16, 0, t16]);
        assert_eq!(lanes::<8>(run(S::I16x8LtS, &[a, b]))[..4], [t16, 0, 0, t16]);
        assert_eq!(lanes::<8>(run(S::I16x8LtU, &[a, b]))[..4], [0, t16, 0, 0]);
        assert_eq!(lanes::<8>(run(S::I16x8GtS, &[a, b]))[..4], [0, t16, 0, 0]);
        assert_eq!(lanes::<8>(run(S::I16x8GtU, &[a, b]))[..4], [t16, 0, 0, t16]);
        assert_eq!(lanes::<8>(run(S::I16x8LeS, &[a, b]))[..4], [t16, 0, t16, t16]);
        assert_eq!(lanes::<8>(run(S::I16x8LeU, &[a, b]))[..4], [0, t16, t16, 0]);
        assert_eq!(lanes::<8>(run(S::I16x8GeS, &[a, b]))[..4], [0, t16, t16, 0]);
        assert_eq!(lanes::<8>(run(S::I16x8GeU, &[a, b]))[..4], [t16, 0, t16, t16]);

        let t32 = 0xFFFF_FFFF;
        let a = i32s([-1, 1, 7, i32::MIN]);
        let b = i32s([1, -1, 7, i32::MAX]);
        assert_eq!(lanes::<4>(run(S::I32x4Eq, &[a, b])), [0, 0, t32, 0]);
        assert_eq!(lanes::<4>(run(S::I32x4Ne, &[a, b])), [t32, t32, 0, t32]);
        assert_eq!(lanes::<4>(run(S::I32x4LtS, &[a, b])), [t32, 0, 0, t32]);
        assert_eq!(lanes::<4>(run(S::I32x4LtU, &[a, b])), [0, t32, 0, 0]);
        assert_eq!(lanes::<4>(run(S::I32x4GtS, &[a, b])), [0, t32, 0, 0]);
        assert_eq!(lanes::<4>(run(S::I32x4GtU, &[a, b])), [t32, 0, 0, t32]);
        assert_eq!(lanes::<4>(run(S::I32x4LeS, &[a, b])), [t32, 0, t32, t32]);
        assert_eq!(lanes::<4>(run(S::I32x4LeU, &[a, b])), [0, t32, t32, 0]);
        assert_eq!(lanes::<4>(run(S::I32x4GeS, &[a, b])), [0, t32, t32, 0]);
        assert_eq!(lanes::<4>(run(S::I32x4GeU, &[a, b])), [t32, 0, t32, t32]);

        let t64 = u64::MAX as u128;
        let a = i64s([-1, 7]);
        let b = i64s([1, 7]);
        assert_eq!(lanes::<2>(run(S::I64x2Eq, &[a, b])), [0, t64]);
        assert_eq!(lanes::<2>(run(S::I64x2Ne, &[a, b])), [t64, 0]);
        assert_eq!(lanes::<2>(run(S::I64x2LtS, &[a, b])), [t64, 0]);
        assert_eq!(lanes::<2>(run(S::I64x2GtS, &[a, b])), [0, 0]);
        assert_eq!(lanes::<2>(run(S::I64x2LeS, &[a, b])), [t64, t64]);
        assert_eq!(lanes::<2>(run(S::I64x2GeS, &[a, b])), [0, t64]);
        let a = i64s([i64::MIN, i64::MAX]);
        let b = i64s([i64::MAX, i64::MIN]);
        assert_eq!(lanes::<2>(run(S::I64x2LtS, &[a, b])), [t64, 0]);
        assert_eq!(lanes::<2>(run(S::I64x2GtS, &[a, b])), [0, t64]);
    }

    // -----------------------------------------------------------------------------------------
    // Integer arithmetic.

    #[test]
    fn wrapping_add_sub_mul_neg_abs() {
        let a = i8s([127, -128, 1, -1, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = i8s([1, -1, -1, -1, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(as_i8s(run(S::I8x16Add, &[a, b]))[..5], [-128, 127, 0, -2, -56]);
        assert_eq!(as_i8s(run(S::I8x16Sub, &[a, b]))[..5], [126, -127, 2, 0, 0]);
        let a = i16s([i16::MAX, 300, -2, 0, 0, 0, 0, 1]);
        let b = i16s([1, 300, 3, 0, 0, 0, 0, i16::MIN]);
        assert_eq!(as_i16s(run(S::I16x8Add, &[a, b])), [i16::MIN, 600, 1, 0, 0, 0, 0, -32767]);
        assert_eq!(as_i16s(run(S::I16x8Sub, &[a, b])), [32766, 0, -5, 0, 0, 0, 0, -32767]);
        assert_eq!(as_i16s(run(S::I16x8Mul, &[a, b])), [i16::MAX, 24464, -6, 0, 0, 0, 0, i16::MIN]);
        let a = i32s([i32::MAX, 65536, -7, 3]);
        let b = i32s([1, 65536, 6, -1]);
        assert_eq!(as_i32s(run(S::I32x4Add, &[a, b])), [i32::MIN, 131072, -1, 2]);
        assert_eq!(as_i32s(run(S::I32x4Sub, &[a, b])), [i32::MAX - 1, 0, -13, 4]);
        assert_eq!(as_i32s(run(S::I32x4Mul, &[a, b])), [i32::MAX, 0, -42, -3]);
        let a = i64s([i64::MAX, 1 << 32]);
        let b = i64s([2, 1 << 32]);
        assert_eq!(as_i64s(run(S::I64x2Add, &[a, b])), [i64::MIN + 1, 1 << 33]);
        assert_eq!(as_i64s(run(S::I64x2Sub, &[a, b])), [i64::MAX - 2, 0]);
        assert_eq!(as_i64s(run(S::I64x2Mul, &[a, b])), [-2, 0]);

        let v = i8s([-128, -5, 5, 0, 127, -127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(as_i8s(run(S::I8x16Abs, &[v]))[..6], [-128, 5, 5, 0, 127, 127]);
        assert_eq!(as_i8s(run(S::I8x16Neg, &[v]))[..6], [-128, 5, -5, 0, -127, 127]);
        let v = i16s([i16::MIN, -5, 5, 0, 0, 0, 0, 0]);
        assert_eq!(as_i16s(run(S::I16x8Abs, &[v]))[..3], [i16::MIN, 5, 5]);
        assert_eq!(as_i16s(run(S::I16x8Neg, &[v]))[..3], [i16::MIN, 5, -5]);
        let v = i32s([i32::MIN, -5, 5, i32::MAX]);
        assert_eq!(as_i32s(run(S::I32x4Abs, &[v])), [i32::MIN, 5, 5, i32::MAX]);
        assert_eq!(as_i32s(run(S::I32x4Neg, &[v])), [i32::MIN, 5, -5, -i32::MAX]);
        let v = i64s([i64::MIN, -5]);
        assert_eq!(as_i64s(run(S::I64x2Abs, &[v])), [i64::MIN, 5]);
        assert_eq!(as_i64s(run(S::I64x2Neg, &[v])), [i64::MIN, 5]);
    }

    #[test]
    fn saturating_min_max_avgr_popcnt() {
        let a = i8s([100, -100, 127, -128, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = i8s([100, -100, -1, 1, -10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(as_i8s(run(S::I8x16AddSatS, &[a, b]))[..5], [127, -128, 126, -127, -5]);
        assert_eq!(as_i8s(run(S::I8x16SubSatS, &[a, b]))[..5], [0, 0, 127, -128, 15]);
        let a = u8s([200, 5, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = u8s([100, 10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(lanes::<16>(run(S::I8x16AddSatU, &[a, b]))[..3], [255, 15, 255]);
        assert_eq!(lanes::<16>(run(S::I8x16SubSatU, &[a, b]))[..3], [100, 0, 254]);
        let a = i16s([30000, -30000, 1, 0, 0, 0, 0, 0]);
        let b = i16s([30000, -30000, -2, 0, 0, 0, 0, 0]);
        assert_eq!(as_i16s(run(S::I16x8AddSatS, &[a, b]))[..3], [i16::MAX, i16::MIN, -1]);
        assert_eq!(as_i16s(run(S::I16x8SubSatS, &[a, b]))[..3], [0, 0, 3]);
        let a = u16s([60000, 5, 0, 0, 0, 0, 0, 0]);
        let b = u16s([10000, 10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(as_u16s(run(S::I16x8AddSatU, &[a, b]))[..2], [65535, 15]);
        assert_eq!(as_u16s(run(S::I16x8SubSatU, &[a, b]))[..2], [50000, 0]);

        let a = i8s([-1, 1, -128, 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = i8s([1, -1, 127, -128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(as_i8s(run(S::I8x16MinS, &[a, b]))[..4], [-1, -1, -128, -128]);
        assert_eq!(as_i8s(run(S::I8x16MaxS, &[a, b]))[..4], [1, 1, 127, 127]);
        assert_eq!(as_i8s(run(S::I8x16MinU, &[a, b]))[..4], [1, 1, 127, 127]);
        assert_eq!(as_i8s(run(S::I8x16MaxU, &[a, b]))[..4], [-1, -1, -128, -128]);
        let a = i16s([-1, 1, 0, 0, 0, 0, 0, 0]);
        let b = i16s([1, -1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(as_i16s(run(S::I16x8MinS, &[a, b]))[..2], [-1, -1]);
        assert_eq!(as_i16s(run(S::I16x8MaxS, &[a, b]))[..2], [1, 1]);
        assert_eq!(as_i16s(run(S::I16x8MinU, &[a, b]))[..2], [1, 1]);
        assert_eq!(as_i16s(run(S::I16x8MaxU, &[a, b]))[..2], [-1, -1]);
        let a = i32s([-1, 1, i32::MIN, 4]);
        let b = i32s([1, -1, i32::MAX, 4]);
        assert_eq!(as_i32s(run(S::I32x4MinS, &[a, b])), [-1, -1, i32::MIN, 4]);
        assert_eq!(as_i32s(run(S::I32x4MaxS, &[a, b])), [1, 1, i32::MAX, 4]);
        assert_eq!(as_i32s(run(S::I32x4MinU, &[a, b])), [1, 1, i32::MAX, 4]);
        assert_eq!(as_i32s(run(S::I32x4MaxU, &[a, b])), [-1, -1, i32::MIN, 4]);

        let a = u8s([255, 0, 1, 254, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = u8s([255, 1, 2, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(lanes::<16>(run(S::I8x16AvgrU, &[a, b]))[..4], [255, 1, 2, 255]);
        let a = u16s([65535, 0, 1, 65534, 0, 0, 0, 0]);
        let b = u16s([65535, 1, 2, 65535, 0, 0, 0, 0]);
        assert_eq!(as_u16s(run(S::I16x8AvgrU, &[a, b]))[..4], [65535, 1, 2, 65535]);

        let v = u8s([0xFF, 0x0F, 0, 0x80, 0x55, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F]);
        let want = u8s([8, 4, 0, 1, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(run(S::I8x16Popcnt, &[v]), want);
    }

    #[test]
    fn q15mulr_and_dot() {
        let a = i16s([i16::MIN, 16384, i16::MIN, 1, 128, -1, i16::MAX, -16384]);
        let b = i16s([i16::MIN, 16384, i16::MAX, 1, 128, 1, i16::MAX, 3]);
        // -1.0 * -1.0 saturates; 0.5 * 0.5 = 0.25; rounding is (x * y + 2^14) >> 15.
        let want = [i16::MAX, 8192, -32767, 0, 1, 0, 32766, -1];
        assert_eq!(as_i16s(run(S::I16x8Q15MulrSatS, &[a, b])), want);

        let a = i16s([1, 2, 3, 4, i16::MIN, i16::MIN, -7, 100]);
        let b = i16s([5, 6, 7, 8, i16::MIN, i16::MIN, 3, -2]);
        // (-32768)^2 * 2 = 2^31 wraps to i32::MIN.
        assert_eq!(as_i32s(run(S::I32x4DotI16x8S, &[a, b])), [17, 53, i32::MIN, -221]);
    }

    #[test]
    fn shifts_take_count_modulo_lane_width() {
        let v = u8s([0x81, 0x80, 0x7F, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF]);
        let l = |op, n: Slot| lanes::<16>(run(op, &[v, n]));
        assert_eq!(l(S::I8x16Shl, 9)[..4], [0x02, 0x00, 0xFE, 0x02]);
        assert_eq!(l(S::I8x16Shl, 8)[..4], [0x81, 0x80, 0x7F, 1]);
        assert_eq!(l(S::I8x16ShrS, 1)[..4], [0xC0, 0xC0, 0x3F, 0]);
        assert_eq!(l(S::I8x16ShrS, 15)[..4], [0xFF, 0xFF, 0, 0]);
        assert_eq!(l(S::I8x16ShrU, 1)[..4], [0x40, 0x40, 0x3F, 0]);
        // The count is an i32: the upper slot bits do not exist; negative counts wrap modulo 8.
        assert_eq!(l(S::I8x16ShrU, (1 << 40) | 1)[..4], [0x40, 0x40, 0x3F, 0]);
        assert_eq!(l(S::I8x16ShrU, 0xFFFF_FFFF)[..4], [1, 1, 0, 0]);

        let v = i16s([i16::MIN, 1, -1, 0x4000, 0, 0, 0, 0]);
        assert_eq!(as_i16s(run(S::I16x8Shl, &[v, 17]))[..4], [0, 2, -2, i16::MIN]);
        assert_eq!(as_i16s(run(S::I16x8ShrS, &[v, 15]))[..4], [-1, 0, -1, 0]);
        assert_eq!(as_i16s(run(S::I16x8ShrU, &[v, 15]))[..4], [1, 0, 1, 0]);
        assert_eq!(as_i16s(run(S::I16x8ShrU, &[v, 16]))[..4], [i16::MIN, 1, -1, 0x4000]);

        let v = i32s([i32::MIN, 1, -8, 3]);
        assert_eq!(as_i32s(run(S::I32x4Shl, &[v, 33])), [0, 2, -16, 6]);
        assert_eq!(as_i32s(run(S::I32x4ShrS, &[v, 33])), [-(1 << 30), 0, -4, 1]);
        assert_eq!(as_i32s(run(S::I32x4ShrU, &[v, 33])), [1 << 30, 0, 0x7FFF_FFFC, 1]);
        assert_eq!(as_i32s(run(S::I32x4ShrS, &[v, 32])), [i32::MIN, 1, -8, 3]);

        let v = i64s([i64::MIN, -8]);
        assert_eq!(as_i64s(run(S::I64x2Shl, &[v, 64])), [i64::MIN, -8]);
        assert_eq!(as_i64s(run(S::I64x2Shl, &[v, 65])), [0, -16]);
        assert_eq!(as_i64s(run(S::I64x2ShrS, &[v, 63])), [-1, -1]);
        assert_eq!(as_i64s(run(S::I64x2ShrU, &[v, 127])), [1, 1]);
    }

    #[test]
    fn narrowing_saturates() {
        let a = i16s([300, -300, 127, -128, 128, -129, 0, 1]);
        let b = i16s([-1, 255, 256, i16::MIN, i16::MAX, 2, 3, 4]);
        let s = [127, -128, 127, -128, 127, -128, 0, 1, -1, 127, 127, -128, 127, 2, 3, 4];
        assert_eq!(as_i8s(run(S::I8x16NarrowI16x8S, &[a, b])), s);
        let u = [255, 0, 127, 0, 128, 0, 0, 1, 0, 255, 255, 0, 255, 2, 3, 4];
        assert_eq!(lanes::<16>(run(S::I8x16NarrowI16x8U, &[a, b])), u.map(|x: u8| x as u128));

        let a = i32s([70000, -70000, 65535, -1]);
        let b = i32s([i32::MAX, i32::MIN, 32768, -32769]);
        let s = [32767, -32768, 32767, -1, 32767, -32768, 32767, -32768];
        assert_eq!(as_i16s(run(S::I16x8NarrowI32x4S, &[a, b])), s);
        let u = [65535, 0, 65535, 0, 65535, 0, 32768, 0];
        assert_eq!(as_u16s(run(S::I16x8NarrowI32x4U, &[a, b])), u);
    }

    #[test]
    fn widening_extend_extmul_extadd() {
        let v = i8s([-1, 2, -128, 127, 0, 0, 0, 5, -2, 3, 0, 0, 0, 0, 0, -7]);
        assert_eq!(as_i16s(run(S::I16x8ExtendLowI8x16S, &[v])), [-1, 2, -128, 127, 0, 0, 0, 5]);
        assert_eq!(as_i16s(run(S::I16x8ExtendHighI8x16S, &[v])), [-2, 3, 0, 0, 0, 0, 0, -7]);
        assert_eq!(as_u16s(run(S::I16x8ExtendLowI8x16U, &[v])), [255, 2, 128, 127, 0, 0, 0, 5]);
        assert_eq!(as_u16s(run(S::I16x8ExtendHighI8x16U, &[v])), [254, 3, 0, 0, 0, 0, 0, 249]);
        let v = i16s([-1, 2, i16::MIN, 4, -5, 6, 7, -8]);
        assert_eq!(as_i32s(run(S::I32x4ExtendLowI16x8S, &[v])), [-1, 2, -32768, 4]);
        assert_eq!(as_i32s(run(S::I32x4ExtendHighI16x8S, &[v])), [-5, 6, 7, -8]);
        assert_eq!(as_i32s(run(S::I32x4ExtendLowI16x8U, &[v])), [65535, 2, 32768, 4]);
        assert_eq!(as_i32s(run(S::I32x4ExtendHighI16x8U, &[v])), [65531, 6, 7, 65528]);
        let v = i32s([-1, 2, i32::MIN, 4]);
        assert_eq!(as_i64s(run(S::I64x2ExtendLowI32x4S, &[v])), [-1, 2]);
        assert_eq!(as_i64s(run(S::I64x2ExtendHighI32x4S, &[v])), [-(1 << 31), 4]);
        assert_eq!(as_i64s(run(S::I64x2ExtendLowI32x4U, &[v])), [0xFFFF_FFFF, 2]);
        assert_eq!(as_i64s(run(S::I64x2ExtendHighI32x4U, &[v])), [1 << 31, 4]);

        let a = i8s([-128, -1, 3, 0, 0, 0, 0, 0, -1, 127, 0, 0, 0, 0, 0, 2]);
        let b = i8s([-128, 5, -3, 0, 0, 0, 0, 0, -1, -128, 0, 0, 0, 0, 0, 2]);
        assert_eq!(as_i16s(run(S::I16x8ExtMulLowI8x16S, &[a, b]))[..3], [16384, -5, -9]);
        assert_eq!(as_i16s(run(S::I16x8ExtMulHighI8x16S, &[a, b])), [1, -16256, 0, 0, 0, 0, 0, 4]);
        assert_eq!(as_u16s(run(S::I16x8ExtMulLowI8x16U, &[a, b]))[..3], [16384, 1275, 759]);
        assert_eq!(as_u16s(run(S::I16x8ExtMulHighI8x16U, &[a, b]))[..2], [65025, 16256]);
        let a = i16s([i16::MIN, -1, 2, 3, -1, i16::MIN, 0, 0]);
        let b = i16s([i16::MIN, 7, 2, -3, -1, i16::MAX, 0, 0]);
        assert_eq!(as_i32s(run(S::I32x4ExtMulLowI16x8S, &[a, b])), [1 << 30, -7, 4, -9]);
        assert_eq!(as_i32s(run(S::I32x4ExtMulHighI16x8S, &[a, b])), [1, -32768 * 32767, 0, 0]);
        assert_eq!(as_u32s(run(S::I32x4ExtMulLowI16x8U, &[a, b]))[..2], [1 << 30, 65535 * 7]);
        assert_eq!(as_u32s(run(S::I32x4ExtMulHighI16x8U, &[a, b]))[..2], [0xFFFE_0001, 32768 * 32767]);
        let a = i32s([i32::MIN, -1, -1, 3]);
        let b = i32s([i32::MIN, 2, -1, -3]);
        assert_eq!(as_i64s(run(S::I64x2ExtMulLowI32x4S, &[a, b])), [1 << 62, -2]);
        assert_eq!(as_i64s(run(S::I64x2ExtMulHighI32x4S, &[a, b])), [1, -9]);
        assert_eq!(as_u64s(run(S::I64x2ExtMulLowI32x4U, &[a, b])), [1 << 62, 0x1_FFFF_FFFE]);
        assert_eq!(as_u64s(run(S::I64x2ExtMulHighI32x4U, &[a, b]))[0], 0xFFFF_FFFE_0000_0001);

        let v = i8s([-128, -128, 127, 127, -1, 1, 0, -5, 0, 0, 0, 0, 0, 0, -1, -1]);
        assert_eq!(as_i16s(run(S::I16x8ExtAddPairwiseI8x16S, &[v])), [-256, 254, 0, -5, 0, 0, 0, -2]);
        assert_eq!(as_u16s(run(S::I16x8ExtAddPairwiseI8x16U, &[v])), [256, 254, 256, 251, 0, 0, 0, 510]);
        let v = i16s([i16::MIN, i16::MIN, i16::MAX, i16::MAX, -1, -1, 5, -6]);
        assert_eq!(as_i32s(run(S::I32x4ExtAddPairwiseI16x8S, &[v])), [-65536, 65534, -2, -1]);
        assert_eq!(as_i32s(run(S::I32x4ExtAddPairwiseI16x8U, &[v])), [65536, 65534, 131070, 65535]);
    }

    // -----------------------------------------------------------------------------------------
    // Floats.

    #[test]
    fn float_sign_ops_keep_nan_payloads() {
        let v = u32s([NAN32_PAYLOAD, NAN32_NEG, 0, 0xBF80_0000]);
        assert_eq!(run(S::F32x4Neg, &[v]), u32s([0xFFA0_0001, 0x7FC0_0002, 0x8000_0000, 0x3F80_0000]));
        assert_eq!(run(S::F32x4Abs, &[v]), u32s([NAN32_PAYLOAD, 0x7FC0_0002, 0, 0x3F80_0000]));
        let v = u64s([NAN64_PAYLOAD, NAN64_NEG]);
        assert_eq!(run(S::F64x2Neg, &[v]), u64s([0xFFF4_0000_0000_0001, 0x7FF8_0000_0000_0002]));
        assert_eq!(run(S::F64x2Abs, &[v]), u64s([NAN64_PAYLOAD, 0x7FF8_0000_0000_0002]));
        assert_eq!(run(S::F64x2Neg, &[f64s([0.0, -1.5])]), f64s([-0.0, 1.5]));
    }

    #[test]
    fn float_arithmetic_canonicalizes_nans() {
        let canon = CANONICAL_NAN_F32;
        let inf = f32::INFINITY;
        let a = u32s([NAN32_PAYLOAD, inf.to_bits(), 1.5f32.to_bits(), 0]);
        let b = u32s([NAN32_NEG, (-inf).to_bits(), 2.25f32.to_bits(), NAN32_NEG]);
        assert_eq!(as_u32s(run(S::F32x4Add, &[a, b])), [canon, canon, 3.75f32.to_bits(), canon]);
        assert_eq!(as_u32s(run(S::F32x4Sub, &[a, b])), [canon, inf.to_bits(), (-0.75f32).to_bits(), canon]);
        let a = f32s([0.0, inf, -3.0, 1.0]);
        let b = f32s([inf, 0.0, 0.5, 0.0]);
        assert_eq!(as_u32s(run(S::F32x4Mul, &[a, b])), [canon, canon, (-1.5f32).to_bits(), 0]);
        assert_eq!(as_u32s(run(S::F32x4Div, &[a, b])), [0, inf.to_bits(), (-6.0f32).to_bits(), inf.to_bits()]);
        let a = f32s([0.0, -0.0, 1.0, 0.0]);
        let b = f32s([0.0, 0.0, -0.0, -0.0]);
        assert_eq!(as_u32s(run(S::F32x4Div, &[a, b]))[..2], [canon, canon]);
        assert_eq!(as_f32s(run(S::F32x4Div, &[a, b]))[2], f32::NEG_INFINITY);

        let canon = CANONICAL_NAN_F64;
        let a = u64s([NAN64_PAYLOAD, f64::INFINITY.to_bits()]);
        let b = u64s([NAN64_NEG, f64::NEG_INFINITY.to_bits()]);
        assert_eq!(as_u64s(run(S::F64x2Add, &[a, b])), [canon, canon]);
        assert_eq!(as_u64s(run(S::F64x2Sub, &[a, b])), [canon, f64::INFINITY.to_bits()]);
        assert_eq!(as_u64s(run(S::F64x2Mul, &[a, f64s([0.0, 0.0])])), [canon, canon]);
        assert_eq!(as_u64s(run(S::F64x2Div, &[b, a])), [canon, canon]);
        let (x, y) = (f64s([0.1, 1e308]), f64s([0.2, 10.0]));
        assert_eq!(as_f64s(run(S::F64x2Add, &[x, y])), [0.1 + 0.2, 1e308 + 10.0]);
        assert_eq!(as_f64s(run(S::F64x2Mul, &[x, y])), [0.1 * 0.2, f64::INFINITY]);
        assert_eq!(as_f64s(run(S::F64x2Div, &[x, y])), [0.5, 1e307]);
        assert_eq!(as_f64s(run(S::F64x2Sub, &[x, y])), [0.1 - 0.2, 1e308]);
    }

    #[test]
    fn sqrt_and_rounding() {
        let canon = CANONICAL_NAN_F32;
        let v = u32s([NAN32_PAYLOAD, (-1.0f32).to_bits(), 4.0f32.to_bits(), 0x8000_0000]);
        assert_eq!(as_u32s(run(S::F32x4Sqrt, &[v])), [canon, canon, 2.0f32.to_bits(), 0x8000_0000]);
        let v = f64s([2.0, -0.5]);
        let r = as_u64s(run(S::F64x2Sqrt, &[v]));
        assert_eq!(r, [std::f64::consts::SQRT_2.to_bits(), CANONICAL_NAN_F64]);

        let v = f32s([2.5, 3.5, -2.5, -0.4]);
        assert_eq!(as_u32s(run(S::F32x4Nearest, &[v])), f32s_bits([2.0, 4.0, -2.0, -0.0]));
        let v = f32s([-0.5, 1.1, -1.7, 8388609.0]);
        assert_eq!(as_u32s(run(S::F32x4Ceil, &[v])), f32s_bits([-0.0, 2.0, -1.0, 8388609.0]));
        assert_eq!(as_u32s(run(S::F32x4Floor, &[v])), f32s_bits([-1.0, 1.0, -2.0, 8388609.0]));
        assert_eq!(as_u32s(run(S::F32x4Trunc, &[v])), f32s_bits([-0.0, 1.0, -1.0, 8388609.0]));
        let v = u32s([NAN32_PAYLOAD, NAN32_NEG, f32::INFINITY.to_bits(), 0x8000_0000]);
        for op in [S::F32x4Ceil, S::F32x4Floor, S::F32x4Trunc, S::F32x4Nearest] {
            let want = [canon, canon, f32::INFINITY.to_bits(), 0x8000_0000];
            assert_eq!(as_u32s(run(op, &[v])), want, "{op:?}");
        }

        let v = f64s([0.5, 1.5]);
        assert_eq!(as_u64s(run(S::F64x2Nearest, &[v])), [0, 2.0f64.to_bits()]);
        let v = f64s([-0.5, 4503599627370497.0]);
        assert_eq!(as_u64s(run(S::F64x2Nearest, &[v])), [(-0.0f64).to_bits(), 4503599627370497.0f64.to_bits()]);
        let v = f64s([-0.5, 2.7]);
        assert_eq!(as_f64s(run(S::F64x2Ceil, &[v])), [-0.0, 3.0]);
        assert!(as_f64s(run(S::F64x2Ceil, &[v]))[0].is_sign_negative());
        assert_eq!(as_f64s(run(S::F64x2Floor, &[v])), [-1.0, 2.0]);
        assert_eq!(as_f64s(run(S::F64x2Trunc, &[v])), [-0.0, 2.0]);
        let v = u64s([NAN64_PAYLOAD, NAN64_NEG]);
        for op in [S::F64x2Ceil, S::F64x2Floor, S::F64x2Trunc, S::F64x2Nearest, S::F64x2Sqrt] {
            assert_eq!(as_u64s(run(op, &[v])), [CANONICAL_NAN_F64; 2], "{op:?}");
        }
    }

    fn f32s_bits(l: [f32; 4]) -> [u32; 4] {
        l.map(f32::to_bits)
    }

    #[test]
    fn min_max_follow_wasm_semantics() {
        let canon = CANONICAL_NAN_F32;
        let a = u32s([(-0.0f32).to_bits(), 0, 1.0f32.to_bits(), NAN32_PAYLOAD]);
        let b = u32s([0, (-0.0f32).to_bits(), NAN32_NEG, 1.0f32.to_bits()]);
        assert_eq!(as_u32s(run(S::F32x4Min, &[a, b])), [0x8000_0000, 0x8000_0000, canon, canon]);
        assert_eq!(as_u32s(run(S::F32x4Max, &[a, b])), [0, 0, canon, canon]);
        let a = f32s([1.0, 2.0, f32::NEG_INFINITY, -5.0]);
        let b = f32s([2.0, 1.0, 3.0, f32::INFINITY]);
        assert_eq!(as_f32s(run(S::F32x4Min, &[a, b])), [1.0, 1.0, f32::NEG_INFINITY, -5.0]);
        assert_eq!(as_f32s(run(S::F32x4Max, &[a, b])), [2.0, 2.0, 3.0, f32::INFINITY]);

        let a = f64s([-0.0, 0.0]);
        let b = f64s([0.0, -0.0]);
        assert_eq!(as_u64s(run(S::F64x2Min, &[a, b])), [1 << 63, 1 << 63]);
        assert_eq!(as_u64s(run(S::F64x2Max, &[a, b])), [0, 0]);
        let a = u64s([NAN64_PAYLOAD, 7.0f64.to_bits()]);
        let b = u64s([1.0f64.to_bits(), NAN64_NEG]);
        assert_eq!(as_u64s(run(S::F64x2Min, &[a, b])), [CANONICAL_NAN_F64; 2]);
        assert_eq!(as_u64s(run(S::F64x2Max, &[a, b])), [CANONICAL_NAN_F64; 2]);
        assert_eq!(as_f64s(run(S::F64x2Max, &[f64s([-1.0, 3.0]), f64s([-2.0, 4.0])])), [-1.0, 4.0]);
    }

    #[test]
    fn pmin_pmax_return_an_operand_bit_for_bit() {
        let one = 1.0f32.to_bits();
        let neg0 = 0x8000_0000;
        let a = u32s([NAN32_PAYLOAD, one, neg0, 2.0f32.to_bits()]);
        let b = u32s([one, NAN32_NEG, 0, one]);
        // pmin(a, b) = b < a ? b : a; pmax(a, b) = a < b ? b : a.
        assert_eq!(as_u32s(run(S::F32x4PMin, &[a, b])), [NAN32_PAYLOAD, one, neg0, one]);
        assert_eq!(as_u32s(run(S::F32x4PMax, &[a, b])), [NAN32_PAYLOAD, one, neg0, 2.0f32.to_bits()]);
        assert_eq!(as_u32s(run(S::F32x4PMin, &[b, a])), [one, NAN32_NEG, 0, one]);
        assert_eq!(as_u32s(run(S::F32x4PMax, &[b, a])), [one, NAN32_NEG, 0, 2.0f32.to_bits()]);

        let a = u64s([NAN64_PAYLOAD, 1 << 63]);
        let b = u64s([1.0f64.to_bits(), 0]);
        assert_eq!(as_u64s(run(S::F64x2PMin, &[a, b])), [NAN64_PAYLOAD, 1 << 63]);
        assert_eq!(as_u64s(run(S::F64x2PMax, &[a, b])), [NAN64_PAYLOAD, 1 << 63]);
        assert_eq!(as_u64s(run(S::F64x2PMin, &[b, a])), [1.0f64.to_bits(), 0]);
        let (x, y) = (f64s([1.0, 5.0]), f64s([2.0, -5.0]));
        assert_eq!(as_f64s(run(S::F64x2PMin, &[x, y])), [1.0, -5.0]);
        assert_eq!(as_f64s(run(S::F64x2PMax, &[x, y])), [2.0, 5.0]);
    }

    #[test]
    fn float_comparisons_with_nan_and_zeros() {
        let t = 0xFFFF_FFFF;
        let a = u32s([NAN32_PAYLOAD, 0, 1.0f32.to_bits(), 2.0f32.to_bits()]);
        let b = u32s([NAN32_PAYLOAD, 0x8000_0000, 2.0f32.to_bits(), 1.0f32.to_bits()]);
        assert_eq!(lanes::<4>(run(S::F32x4Eq, &[a, b])), [0, t, 0, 0]);
        assert_eq!(lanes::<4>(run(S::F32x4Ne, &[a, b])), [t, 0, t, t]);
        assert_eq!(lanes::<4>(run(S::F32x4Lt, &[a, b])), [0, 0, t, 0]);
        assert_eq!(lanes::<4>(run(S::F32x4Gt, &[a, b])), [0, 0, 0, t]);
        assert_eq!(lanes::<4>(run(S::F32x4Le, &[a, b])), [0, t, t, 0]);
        assert_eq!(lanes::<4>(run(S::F32x4Ge, &[a, b])), [0, t, 0, t]);

        let t = u64::MAX as u128;
        let a = u64s([NAN64_PAYLOAD, 1 << 63]);
        let b = u64s([1.0f64.to_bits(), 0]);
        assert_eq!(lanes::<2>(run(S::F64x2Eq, &[a, b])), [0, t]);
        assert_eq!(lanes::<2>(run(S::F64x2Ne, &[a, b])), [t, 0]);
        assert_eq!(lanes::<2>(run(S::F64x2Lt, &[a, b])), [0, 0]);
        assert_eq!(lanes::<2>(run(S::F64x2Gt, &[a, b])), [0, 0]);
        assert_eq!(lanes::<2>(run(S::F64x2Le, &[a, b])), [0, t]);
        assert_eq!(lanes::<2>(run(S::F64x2Ge, &[a, b])), [0, t]);
        let (x, y) = (f64s([1.0, 3.0]), f64s([2.0, -3.0]));
        assert_eq!(lanes::<2>(run(S::F64x2Lt, &[x, y])), [t, 0]);
        assert_eq!(lanes::<2>(run(S::F64x2Gt, &[x, y])), [0, t]);
    }

    #[test]
    fn conversions() {
        let v = u32s([NAN32_PAYLOAD, 1e10f32.to_bits(), (-1e10f32).to_bits(), (-1.9f32).to_bits()]);
        assert_eq!(as_i32s(run(S::I32x4TruncSatF32x4S, &[v])), [0, i32::MAX, i32::MIN, -1]);
        let v = f32s([2147483520.0, -2147483648.0, f32::INFINITY, f32::NEG_INFINITY]);
        assert_eq!(as_i32s(run(S::I32x4TruncSatF32x4S, &[v])), [2147483520, i32::MIN, i32::MAX, i32::MIN]);
        let v = u32s([NAN32_NEG, 1e10f32.to_bits(), (-5.0f32).to_bits(), 3.9f32.to_bits()]);
        assert_eq!(as_u32s(run(S::I32x4TruncSatF32x4U, &[v])), [0, u32::MAX, 0, 3]);
        let v = f32s([4294967040.0, -0.9, 0.0, f32::INFINITY]);
        assert_eq!(as_u32s(run(S::I32x4TruncSatF32x4U, &[v])), [4294967040, 0, 0, u32::MAX]);

        let v = i32s([-1, i32::MIN, 16777217, 16777219]);
        assert_eq!(as_f32s(run(S::F32x4ConvertI32x4S, &[v])), [-1.0, -2147483648.0, 16777216.0, 16777220.0]);
        let v = u32s([u32::MAX, 0, 16777217, 0x8000_0080]);
        assert_eq!(as_f32s(run(S::F32x4ConvertI32x4U, &[v])), [4294967296.0, 0.0, 16777216.0, 2147483648.0]);

        let v = u64s([NAN64_PAYLOAD, 1e10f64.to_bits()]);
        assert_eq!(as_i32s(run(S::I32x4TruncSatF64x2SZero, &[v])), [0, i32::MAX, 0, 0]);
        let v = f64s([-3.7, -1e300]);
        assert_eq!(as_i32s(run(S::I32x4TruncSatF64x2SZero, &[v])), [-3, i32::MIN, 0, 0]);
        let v = f64s([-2147483648.9, 2147483647.9]);
        assert_eq!(as_i32s(run(S::I32x4TruncSatF64x2SZero, &[v])), [i32::MIN, i32::MAX, 0, 0]);
        let v = f64s([-1.0, 4294967295.9]);
        assert_eq!(as_u32s(run(S::I32x4TruncSatF64x2UZero, &[v])), [0, u32::MAX, 0, 0]);
        let v = u64s([NAN64_NEG, 5e9f64.to_bits()]);
        assert_eq!(as_u32s(run(S::I32x4TruncSatF64x2UZero, &[v])), [0, u32::MAX, 0, 0]);

        let v = i32s([-1, i32::MIN, 77, 88]);
        assert_eq!(as_f64s(run(S::F64x2ConvertLowI32x4S, &[v])), [-1.0, -2147483648.0]);
        assert_eq!(as_f64s(run(S::F64x2ConvertLowI32x4U, &[v])), [4294967295.0, 2147483648.0]);
    }

    #[test]
    fn demote_and_promote_canonicalize_nans() {
        let v = u64s([NAN64_PAYLOAD, 0.1f64.to_bits()]);
        assert_eq!(as_u32s(run(S::F32x4DemoteF64x2Zero, &[v])), [CANONICAL_NAN_F32, 0.1f32.to_bits(), 0, 0]);
        let v = f64s([1e300, -1e-300]);
        assert_eq!(as_u32s(run(S::F32x4DemoteF64x2Zero, &[v])), [f32::INFINITY.to_bits(), 0x8000_0000, 0, 0]);
        // Halfway between two f32s: ties to even.
        let v = f64s([1.0 + f64::from(f32::EPSILON) / 2.0, 1.0 + 1.5 * f64::from(f32::EPSILON)]);
        assert_eq!(as_f32s(run(S::F32x4DemoteF64x2Zero, &[v]))[..2], [1.0, 1.0 + 2.0 * f32::EPSILON]);

        let v = u32s([NAN32_PAYLOAD, 1.5f32.to_bits(), 0xFFFF_FFFF, 0x1234_5678]);
        assert_eq!(as_u64s(run(S::F64x2PromoteLowF32x4, &[v])), [CANONICAL_NAN_F64, 1.5f64.to_bits()]);
        let v = u32s([NAN32_NEG, 0x8000_0001, 0, 0]);
        let r = as_u64s(run(S::F64x2PromoteLowF32x4, &[v]));
        assert_eq!(r, [CANONICAL_NAN_F64, f64::from(f32::from_bits(0x8000_0001)).to_bits()]);
    }

    // -----------------------------------------------------------------------------------------
    // Operator coverage against the text and binary formats.

    /// Every non-memory simd128 instruction, one per line: `params:results text-with-immediates`
    /// (`v` v128, `i` i32, `I` i64, `f` f32, `F` f64, `_` none).
    const OPS: &str = "
        _:v v128.const i32x4 1 -2 0x7fffffff 4
        vv:v i8x16.shuffle 0 17 2 19 4 21 6 23 8 25 10 27 12 29 14 31
        vv:v i8x16.swizzle
        i:v i8x16.splat
        i:v i16x8.splat
        i:v i32x4.splat
        I:v i64x2.splat
        f:v f32x4.splat
        F:v f64x2.splat
        v:i i8x16.extract_lane_s 15
        v:i i8x16.extract_lane_u 1
        vi:v i8x16.replace_lane 2
        v:i i16x8.extract_lane_s 7
        v:i i16x8.extract_lane_u 3
        vi:v i16x8.replace_lane 4
        v:i i32x4.extract_lane 3
        vi:v i32x4.replace_lane 0
        v:I i64x2.extract_lane 1
        vI:v i64x2.replace_lane 1
        v:f f32x4.extract_lane 2
        vf:v f32x4.replace_lane 3
        v:F f64x2.extract_lane 0
        vF:v f64x2.replace_lane 1
        vv:v i8x16.eq
        vv:v i8x16.ne
        vv:v i8x16.lt_s
        vv:v i8x16.lt_u
        vv:v i8x16.gt_s
        vv:v i8x16.gt_u
        vv:v i8x16.le_s
        vv:v i8x16.le_u
        vv:v i8x16.ge_s
        vv:v i8x16.ge_u
        vv:v i16x8.eq
        vv:v i16x8.ne
        vv:v i16x8.lt_s
        vv:v i16x8.lt_u
        vv:v i16x8.gt_s
        vv:v i16x8.gt_u
        vv:v i16x8.le_s
        vv:v i16x8.le_u
        vv:v i16x8.ge_s
        vv:v i16x8.ge_u
        vv:v i32x4.eq
        vv:v i32x4.ne
        vv:v i32x4.lt_s
        vv:v i32x4.lt_u
        vv:v i32x4.gt_s
        vv:v i32x4.gt_u
        vv:v i32x4.le_s
        vv:v i32x4.le_u
        vv:v i32x4.ge_s
        vv:v i32x4.ge_u
        vv:v f32x4.eq
        vv:v f32x4.ne
        vv:v f32x4.lt
        vv:v f32x4.gt
        vv:v f32x4.le
        vv:v f32x4.ge
        vv:v f64x2.eq
        vv:v f64x2.ne
        vv:v f64x2.lt
        vv:v f64x2.gt
        vv:v f64x2.le
        vv:v f64x2.ge
        v:v v128.not
        vv:v v128.and
        vv:v v128.andnot
        vv:v v128.or
        vv:v v128.xor
        vvv:v v128.bitselect
        v:i v128.any_true
        v:v f32x4.demote_f64x2_zero
        v:v f64x2.promote_low_f32x4
        v:v i8x16.abs
        v:v i8x16.neg
        v:v i8x16.popcnt
        v:i i8x16.all_true
        v:i i8x16.bitmask
        vv:v i8x16.narrow_i16x8_s
        vv:v i8x16.narrow_i16x8_u
        v:v f32x4.ceil
        v:v f32x4.floor
        v:v f32x4.trunc
        v:v f32x4.nearest
        vi:v i8x16.shl
        vi:v i8x16.shr_s
        vi:v i8x16.shr_u
        vv:v i8x16.add
        vv:v i8x16.add_sat_s
        vv:v i8x16.add_sat_u
        vv:v i8x16.sub
        vv:v i8x16.sub_sat_s
        vv:v i8x16.sub_sat_u
        v:v f64x2.ceil
        v:v f64x2.floor
        vv:v i8x16.min_s
        vv:v i8x16.min_u
        vv:v i8x16.max_s
        vv:v i8x16.max_u
        v:v f64x2.trunc
        vv:v i8x16.avgr_u
        v:v i16x8.extadd_pairwise_i8x16_s
        v:v i16x8.extadd_pairwise_i8x16_u
        v:v i32x4.extadd_pairwise_i16x8_s
        v:v i32x4.extadd_pairwise_i16x8_u
        v:v i16x8.abs
        v:v i16x8.neg
        vv:v i16x8.q15mulr_sat_s
        v:i i16x8.all_true
        v:i i16x8.bitmask
        vv:v i16x8.narrow_i32x4_s
        vv:v i16x8.narrow_i32x4_u
        v:v i16x8.extend_low_i8x16_s
        v:v i16x8.extend_high_i8x16_s
        v:v i16x8.extend_low_i8x16_u
        v:v i16x8.extend_high_i8x16_u
        vi:v i16x8.shl
        vi:v i16x8.shr_s
        vi:v i16x8.shr_u
        vv:v i16x8.add
        vv:v i16x8.add_sat_s
        vv:v i16x8.add_sat_u
        vv:v i16x8.sub
        vv:v i16x8.sub_sat_s
        vv:v i16x8.sub_sat_u
        v:v f64x2.nearest
        vv:v i16x8.mul
        vv:v i16x8.min_s
        vv:v i16x8.min_u
        vv:v i16x8.max_s
        vv:v i16x8.max_u
        vv:v i16x8.avgr_u
        vv:v i16x8.extmul_low_i8x16_s
        vv:v i16x8.extmul_high_i8x16_s
        vv:v i16x8.extmul_low_i8x16_u
        vv:v i16x8.extmul_high_i8x16_u
        v:v i32x4.abs
        v:v i32x4.neg
        v:i i32x4.all_true
        v:i i32x4.bitmask
        v:v i32x4.extend_low_i16x8_s
        v:v i32x4.extend_high_i16x8_s
        v:v i32x4.extend_low_i16x8_u
        v:v i32x4.extend_high_i16x8_u
        vi:v i32x4.shl
        vi:v i32x4.shr_s
        vi:v i32x4.shr_u
        vv:v i32x4.add
        vv:v i32x4.sub
        vv:v i32x4.mul
        vv:v i32x4.min_s
        vv:v i32x4.min_u
        vv:v i32x4.max_s
        vv:v i32x4.max_u
        vv:v i32x4.dot_i16x8_s
        vv:v i32x4.extmul_low_i16x8_s
        vv:v i32x4.extmul_high_i16x8_s
        vv:v i32x4.extmul_low_i16x8_u
        vv:v i32x4.extmul_high_i16x8_u
        v:v i64x2.abs
        v:v i64x2.neg
        v:i i64x2.all_true
        v:i i64x2.bitmask
        v:v i64x2.extend_low_i32x4_s
        v:v i64x2.extend_high_i32x4_s
        v:v i64x2.extend_low_i32x4_u
        v:v i64x2.extend_high_i32x4_u
        vi:v i64x2.shl
        vi:v i64x2.shr_s
        vi:v i64x2.shr_u
        vv:v i64x2.add
        vv:v i64x2.sub
        vv:v i64x2.mul
        vv:v i64x2.eq
        vv:v i64x2.ne
        vv:v i64x2.lt_s
        vv:v i64x2.gt_s
        vv:v i64x2.le_s
        vv:v i64x2.ge_s
        vv:v i64x2.extmul_low_i32x4_s
        vv:v i64x2.extmul_high_i32x4_s
        vv:v i64x2.extmul_low_i32x4_u
        vv:v i64x2.extmul_high_i32x4_u
        v:v f32x4.abs
        v:v f32x4.neg
        v:v f32x4.sqrt
        vv:v f32x4.add
        vv:v f32x4.sub
        vv:v f32x4.mul
        vv:v f32x4.div
        vv:v f32x4.min
        vv:v f32x4.max
        vv:v f32x4.pmin
        vv:v f32x4.pmax
        v:v f64x2.abs
        v:v f64x2.neg
        v:v f64x2.sqrt
        vv:v f64x2.add
        vv:v f64x2.sub
        vv:v f64x2.mul
        vv:v f64x2.div
        vv:v f64x2.min
        vv:v f64x2.max
        vv:v f64x2.pmin
        vv:v f64x2.pmax
        v:v i32x4.trunc_sat_f32x4_s
        v:v i32x4.trunc_sat_f32x4_u
        v:v f32x4.convert_i32x4_s
        v:v f32x4.convert_i32x4_u
        v:v i32x4.trunc_sat_f64x2_s_zero
        v:v i32x4.trunc_sat_f64x2_u_zero
        v:v f64x2.convert_low_i32x4_s
        v:v f64x2.convert_low_i32x4_u
    ";

    /// The parsed [`OPS`] lines: (params, results, instruction text).
    fn op_lines() -> Vec<(&'static str, &'static str, &'static str)> {
        OPS.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (sig, text) = l.split_once(' ').unwrap();
                let (params, results) = sig.split_once(':').unwrap();
                (params.trim_matches('_'), results.trim_matches('_'), text)
            })
            .collect()
    }

    fn wat_type(c: char) -> &'static str {
        match c {
            'v' => "v128",
            'i' => "i32",
            'I' => "i64",
            'f' => "f32",
            'F' => "f64",
            _ => panic!("bad type code {c}"),
        }
    }

    /// A module with one function per line of `lines`, applying the instruction to its params.
    fn module_for(lines: &[(&str, &str, &str)]) -> Vec<u8> {
        let mut wat = String::from("(module (memory 1)\n");
        for (params, results, text) in lines {
            wat.push_str("(func");
            for c in params.chars() {
                wat.push_str(&format!(" (param {})", wat_type(c)));
            }
            for c in results.chars() {
                wat.push_str(&format!(" (result {})", wat_type(c)));
            }
            for i in 0..params.len() {
                wat.push_str(&format!(" local.get {i}"));
            }
            wat.push_str(&format!(" {text})\n"));
        }
        wat.push(')');
        let bytes = wat::parse_str(&wat).expect("test module must parse");
        wasmparser::Validator::new().validate_all(&bytes).expect("test module must validate");
        bytes
    }

    /// For each function body of `bytes`: its single non-`local.get`/`end` operator, with the
    /// LEB128 sub-opcode that follows a 0xFD prefix at its position (or `None`).
    fn body_ops(bytes: &[u8]) -> Vec<(wasmparser::Operator<'_>, Option<u32>)> {
        let mut out = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() else {
                continue;
            };
            let mut found = Vec::new();
            let mut reader = body.get_operators_reader().unwrap();
            while !reader.eof() {
                let (op, pos) = reader.read_with_offset().unwrap();
                if matches!(op, wasmparser::Operator::LocalGet { .. } | wasmparser::Operator::End) {
                    continue;
                }
                let sub = (bytes[pos] == 0xFD).then(|| {
                    let (mut value, mut shift, mut at) = (0u32, 0, pos + 1);
                    loop {
                        let byte = bytes[at];
                        value |= u32::from(byte & 0x7F) << shift;
                        at += 1;
                        shift += 7;
                        if byte & 0x80 == 0 {
                            break value;
                        }
                    }
                });
                found.push((op, sub));
            }
            assert_eq!(found.len(), 1, "one instruction per test function");
            out.push(found.pop().unwrap());
        }
        out
    }

    /// `i8x16.extract_lane_s` → `i8x16extractlanes`, comparable with a variant name lowercased.
    fn squash(name: &str) -> String {
        name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
    }

    #[test]
    fn from_operator_opcode_and_name_cover_every_non_memory_simd_instruction() {
        let lines = op_lines();
        assert_eq!(lines.len(), 214, "wasmparser 0.228 has 236 simd operators, 22 access memory");
        let bytes = module_for(&lines);
        let ops = body_ops(&bytes);
        assert_eq!(ops.len(), lines.len());
        let mut opcodes = std::collections::BTreeSet::new();
        for ((params, results, text), (op, sub)) in lines.iter().zip(&ops) {
            let simd = SimdOp::from_operator(op).unwrap_or_else(|| panic!("{text}: {op:?} not translated"));
            // The binary encoding that `wat` produced for the text instruction.
            assert_eq!(Some(simd.opcode()), *sub, "{text}: opcode");
            assert!(opcodes.insert(simd.opcode()), "{text}: duplicate opcode");
            // The commitment encoding round-trips and rejects stray immediate bytes.
            assert_eq!(SimdOp::decode(&simd.encode()), Some(simd), "{text}: encoding");
            let mut stray = simd.encode();
            stray[16] ^= 1;
            if !matches!(simd, SimdOp::V128Const(_) | SimdOp::I8x16Shuffle(_)) {
                assert_eq!(SimdOp::decode(&stray), None, "{text}: stray immediate accepted");
            }
            // The wasmparser operator maps to the variant of the same name.
            let mnemonic = text.split(' ').next().unwrap();
            assert_eq!(simd.name(), mnemonic);
            let variant = format!("{simd:?}");
            let variant = variant.split('(').next().unwrap();
            assert_eq!(squash(variant), squash(mnemonic), "{text}: variant {variant}");
            let operator = format!("{op:?}");
            let operator = operator.split([' ', '{']).next().unwrap();
            assert_eq!(operator, variant, "{text}: wasmparser operator and variant names differ");

            // Stack effect and canonical results: all-ones operands of the declared types.
            let args: Vec<Slot> = params
                .chars()
                .map(|c| match c {
                    'v' => u128::MAX,
                    'i' | 'f' => u32::MAX.into(),
                    _ => u64::MAX.into(),
                })
                .collect();
            let r = run(simd, &args);
            match *results {
                "i" | "f" => assert!(r <= u32::MAX.into(), "{text}: non-canonical result {r:#x}"),
                "I" | "F" => assert!(r <= u64::MAX.into(), "{text}: non-canonical result {r:#x}"),
                _ => {}
            }
        }
        assert_eq!(opcodes.len(), 214);
    }

    #[test]
    fn immediates_are_translated() {
        let lines = [
            ("", "v", "v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -1"),
            ("vv", "v", "i8x16.shuffle 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16"),
            ("v", "i", "i8x16.extract_lane_u 13"),
            ("vI", "v", "i64x2.replace_lane 1"),
        ];
        let bytes = module_for(&lines);
        let got: Vec<SimdOp> = body_ops(&bytes).iter().map(|(op, _)| SimdOp::from_operator(op).unwrap()).collect();
        let mut c: [u8; 16] = std::array::from_fn(|i| i as u8 + 1);
        c[15] = 0xFF;
        let s: [u8; 16] = std::array::from_fn(|i| 31 - i as u8);
        assert_eq!(got, [S::V128Const(c), S::I8x16Shuffle(s), S::I8x16ExtractLaneU(13), S::I64x2ReplaceLane(1)]);
    }

    #[test]
    fn memory_and_non_simd_operators_are_not_translated() {
        let lines = [
            ("i", "v", "v128.load"),
            ("i", "v", "v128.load8x8_s"),
            ("i", "v", "v128.load8x8_u"),
            ("i", "v", "v128.load16x4_s"),
            ("i", "v", "v128.load16x4_u"),
            ("i", "v", "v128.load32x2_s"),
            ("i", "v", "v128.load32x2_u"),
            ("i", "v", "v128.load8_splat"),
            ("i", "v", "v128.load16_splat"),
            ("i", "v", "v128.load32_splat"),
            ("i", "v", "v128.load64_splat"),
            ("i", "v", "v128.load32_zero"),
            ("i", "v", "v128.load64_zero"),
            ("iv", "", "v128.store"),
            ("iv", "v", "v128.load8_lane 1"),
            ("iv", "v", "v128.load16_lane 1"),
            ("iv", "v", "v128.load32_lane 1"),
            ("iv", "v", "v128.load64_lane 1"),
            ("iv", "", "v128.store8_lane 1"),
            ("iv", "", "v128.store16_lane 1"),
            ("iv", "", "v128.store32_lane 1"),
            ("iv", "", "v128.store64_lane 1"),
            ("ii", "i", "i32.add"),
            ("F", "F", "f64.neg"),
            ("", "", "nop"),
        ];
        let bytes = module_for(&lines);
        let ops = body_ops(&bytes);
        assert_eq!(ops.len(), lines.len());
        for (op, _) in &ops {
            assert_eq!(SimdOp::from_operator(op), None, "{op:?}");
        }
    }
}
