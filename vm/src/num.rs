//! Scalar numeric instructions (MVP, sign-extension, saturating truncation) on slots.
//!
//! Floats follow wasmi's `deterministic` profile bit for bit: every arithmetic result that is NaN
//! (add, sub, mul, div, sqrt, min, max, ceil, floor, trunc, nearest, demote, promote) is the
//! canonical NaN (sign 0, quiet bit only); sign operations (neg, abs, copysign) and reinterpretations
//! keep payloads, as the spec requires of them.

use crate::instr::NumOp;
use crate::trap::TrapCode;
use alloc::vec::Vec;

use crate::value::Slot;

/// The canonical f32 NaN.
pub const CANONICAL_NAN_F32: u32 = 0x7FC0_0000;
/// The canonical f64 NaN.
pub const CANONICAL_NAN_F64: u64 = 0x7FF8_0000_0000_0000;

/// Canonicalises an f32 arithmetic result.
#[inline]
pub fn canon32(x: f32) -> u32 {
    if x.is_nan() { CANONICAL_NAN_F32 } else { x.to_bits() }
}

/// Canonicalises an f64 arithmetic result.
#[inline]
pub fn canon64(x: f64) -> u64 {
    if x.is_nan() { CANONICAL_NAN_F64 } else { x.to_bits() }
}

/// wasm `fmin` on f32 (NaN if either operand is NaN, -0 below +0).
#[inline]
pub fn fmin32(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == b {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// wasm `fmax` on f32.
#[inline]
pub fn fmax32(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == b {
        if a.is_sign_positive() { a } else { b }
    } else if a > b {
        a
    } else {
        b
    }
}

/// wasm `fmin` on f64.
#[inline]
pub fn fmin64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// wasm `fmax` on f64.
#[inline]
pub fn fmax64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_positive() { a } else { b }
    } else if a > b {
        a
    } else {
        b
    }
}

#[inline]
fn f32v(s: Slot) -> f32 {
    f32::from_bits(s as u32)
}

#[inline]
fn f64v(s: Slot) -> f64 {
    f64::from_bits(s as u64)
}

/// Truncates `x` (already known not NaN) towards zero and checks it lies in `[lo, hi)`.
#[inline]
fn trunc_checked(x: f64, lo: f64, hi: f64) -> Result<f64, TrapCode> {
    if x.is_nan() {
        return Err(TrapCode::InvalidConversionToInteger);
    }
    let t = crate::float::trunc64(x);
    if t >= lo && t < hi { Ok(t) } else { Err(TrapCode::IntegerOverflow) }
}

const TWO31: f64 = 2_147_483_648.0;
const TWO32: f64 = 4_294_967_296.0;
const TWO63: f64 = 9_223_372_036_854_775_808.0;
const TWO64: f64 = 18_446_744_073_709_551_616.0;

/// Executes a scalar numeric instruction on the top of `stack`.
#[inline(always)]
pub fn exec(op: NumOp, stack: &mut Vec<Slot>) -> Result<(), TrapCode> {
    use NumOp::*;
    macro_rules! un {
        (|$a:ident| $e:expr) => {{
            let top = stack.last_mut().expect("validated: operand present");
            let $a = *top;
            *top = $e;
        }};
    }
    macro_rules! bin {
        (|$a:ident, $b:ident| $e:expr) => {{
            let $b = stack.pop().expect("validated: operand present");
            let top = stack.last_mut().expect("validated: operand present");
            let $a = *top;
            *top = $e;
        }};
    }
    macro_rules! bin_try {
        (|$a:ident, $b:ident| $e:expr) => {{
            let $b = stack.pop().expect("validated: operand present");
            let top = stack.last_mut().expect("validated: operand present");
            let $a = *top;
            *top = $e?;
        }};
    }
    macro_rules! un_try {
        (|$a:ident| $e:expr) => {{
            let top = stack.last_mut().expect("validated: operand present");
            let $a = *top;
            *top = $e?;
        }};
    }
    let b32 = |c: bool| c as Slot;
    match op {
        I32Eqz => un!(|a| b32(a as u32 == 0)),
        I32Eq => bin!(|a, b| b32(a as u32 == b as u32)),
        I32Ne => bin!(|a, b| b32(a as u32 != b as u32)),
        I32LtS => bin!(|a, b| b32((a as i32) < (b as i32))),
        I32LtU => bin!(|a, b| b32((a as u32) < (b as u32))),
        I32GtS => bin!(|a, b| b32((a as i32) > (b as i32))),
        I32GtU => bin!(|a, b| b32((a as u32) > (b as u32))),
        I32LeS => bin!(|a, b| b32((a as i32) <= (b as i32))),
        I32LeU => bin!(|a, b| b32((a as u32) <= (b as u32))),
        I32GeS => bin!(|a, b| b32((a as i32) >= (b as i32))),
        I32GeU => bin!(|a, b| b32((a as u32) >= (b as u32))),
        I64Eqz => un!(|a| b32(a as u64 == 0)),
        I64Eq => bin!(|a, b| b32(a as u64 == b as u64)),
        I64Ne => bin!(|a, b| b32(a as u64 != b as u64)),
        I64LtS => bin!(|a, b| b32((a as i64) < (b as i64))),
        I64LtU => bin!(|a, b| b32((a as u64) < (b as u64))),
        I64GtS => bin!(|a, b| b32((a as i64) > (b as i64))),
        I64GtU => bin!(|a, b| b32((a as u64) > (b as u64))),
        I64LeS => bin!(|a, b| b32((a as i64) <= (b as i64))),
        I64LeU => bin!(|a, b| b32((a as u64) <= (b as u64))),
        I64GeS => bin!(|a, b| b32((a as i64) >= (b as i64))),
        I64GeU => bin!(|a, b| b32((a as u64) >= (b as u64))),
        F32Eq => bin!(|a, b| b32(f32v(a) == f32v(b))),
        F32Ne => bin!(|a, b| b32(f32v(a) != f32v(b))),
        F32Lt => bin!(|a, b| b32(f32v(a) < f32v(b))),
        F32Gt => bin!(|a, b| b32(f32v(a) > f32v(b))),
        F32Le => bin!(|a, b| b32(f32v(a) <= f32v(b))),
        F32Ge => bin!(|a, b| b32(f32v(a) >= f32v(b))),
        F64Eq => bin!(|a, b| b32(f64v(a) == f64v(b))),
        F64Ne => bin!(|a, b| b32(f64v(a) != f64v(b))),
        F64Lt => bin!(|a, b| b32(f64v(a) < f64v(b))),
        F64Gt => bin!(|a, b| b32(f64v(a) > f64v(b))),
        F64Le => bin!(|a, b| b32(f64v(a) <= f64v(b))),
        F64Ge => bin!(|a, b| b32(f64v(a) >= f64v(b))),

        I32Clz => un!(|a| (a as u32).leading_zeros() as Slot),
        I32Ctz => un!(|a| (a as u32).trailing_zeros() as Slot),
        I32Popcnt => un!(|a| (a as u32).count_ones() as Slot),
        I32Add => bin!(|a, b| (a as u32).wrapping_add(b as u32) as Slot),
        I32Sub => bin!(|a, b| (a as u32).wrapping_sub(b as u32) as Slot),
        I32Mul => bin!(|a, b| (a as u32).wrapping_mul(b as u32) as Slot),
        I32DivS => bin_try!(|a, b| {
            let (a, b) = (a as i32, b as i32);
            if b == 0 {
                Err(TrapCode::IntegerDivideByZero)
            } else if a == i32::MIN && b == -1 {
                Err(TrapCode::IntegerOverflow)
            } else {
                Ok((a / b) as u32 as Slot)
            }
        }),
        I32DivU => bin_try!(|a, b| {
            let (a, b) = (a as u32, b as u32);
            a.checked_div(b).map(|q| q as Slot).ok_or(TrapCode::IntegerDivideByZero)
        }),
        I32RemS => bin_try!(|a, b| {
            let (a, b) = (a as i32, b as i32);
            if b == 0 { Err(TrapCode::IntegerDivideByZero) } else { Ok(a.wrapping_rem(b) as u32 as Slot) }
        }),
        I32RemU => bin_try!(|a, b| {
            let (a, b) = (a as u32, b as u32);
            if b == 0 { Err(TrapCode::IntegerDivideByZero) } else { Ok((a % b) as Slot) }
        }),
        I32And => bin!(|a, b| (a as u32 & b as u32) as Slot),
        I32Or => bin!(|a, b| (a as u32 | b as u32) as Slot),
        I32Xor => bin!(|a, b| (a as u32 ^ b as u32) as Slot),
        I32Shl => bin!(|a, b| (a as u32).wrapping_shl(b as u32) as Slot),
        I32ShrS => bin!(|a, b| (a as i32).wrapping_shr(b as u32) as u32 as Slot),
        I32ShrU => bin!(|a, b| (a as u32).wrapping_shr(b as u32) as Slot),
        I32Rotl => bin!(|a, b| (a as u32).rotate_left(b as u32 % 32) as Slot),
        I32Rotr => bin!(|a, b| (a as u32).rotate_right(b as u32 % 32) as Slot),

        I64Clz => un!(|a| (a as u64).leading_zeros() as Slot),
        I64Ctz => un!(|a| (a as u64).trailing_zeros() as Slot),
        I64Popcnt => un!(|a| (a as u64).count_ones() as Slot),
        I64Add => bin!(|a, b| (a as u64).wrapping_add(b as u64) as Slot),
        I64Sub => bin!(|a, b| (a as u64).wrapping_sub(b as u64) as Slot),
        I64Mul => bin!(|a, b| (a as u64).wrapping_mul(b as u64) as Slot),
        I64DivS => bin_try!(|a, b| {
            let (a, b) = (a as i64, b as i64);
            if b == 0 {
                Err(TrapCode::IntegerDivideByZero)
            } else if a == i64::MIN && b == -1 {
                Err(TrapCode::IntegerOverflow)
            } else {
                Ok((a / b) as u64 as Slot)
            }
        }),
        I64DivU => bin_try!(|a, b| {
            let (a, b) = (a as u64, b as u64);
            a.checked_div(b).map(|q| q as Slot).ok_or(TrapCode::IntegerDivideByZero)
        }),
        I64RemS => bin_try!(|a, b| {
            let (a, b) = (a as i64, b as i64);
            if b == 0 { Err(TrapCode::IntegerDivideByZero) } else { Ok(a.wrapping_rem(b) as u64 as Slot) }
        }),
        I64RemU => bin_try!(|a, b| {
            let (a, b) = (a as u64, b as u64);
            if b == 0 { Err(TrapCode::IntegerDivideByZero) } else { Ok((a % b) as Slot) }
        }),
        I64And => bin!(|a, b| (a as u64 & b as u64) as Slot),
        I64Or => bin!(|a, b| (a as u64 | b as u64) as Slot),
        I64Xor => bin!(|a, b| (a as u64 ^ b as u64) as Slot),
        I64Shl => bin!(|a, b| (a as u64).wrapping_shl(b as u32) as Slot),
        I64ShrS => bin!(|a, b| (a as i64).wrapping_shr(b as u32) as u64 as Slot),
        I64ShrU => bin!(|a, b| (a as u64).wrapping_shr(b as u32) as Slot),
        I64Rotl => bin!(|a, b| (a as u64).rotate_left((b as u64 % 64) as u32) as Slot),
        I64Rotr => bin!(|a, b| (a as u64).rotate_right((b as u64 % 64) as u32) as Slot),

        F32Abs => un!(|a| (a as u32 & 0x7FFF_FFFF) as Slot),
        F32Neg => un!(|a| (a as u32 ^ 0x8000_0000) as Slot),
        F32Copysign => bin!(|a, b| ((a as u32 & 0x7FFF_FFFF) | (b as u32 & 0x8000_0000)) as Slot),
        F32Ceil => un!(|a| canon32(crate::float::ceil32(f32v(a))) as Slot),
        F32Floor => un!(|a| canon32(crate::float::floor32(f32v(a))) as Slot),
        F32Trunc => un!(|a| canon32(crate::float::trunc32(f32v(a))) as Slot),
        F32Nearest => un!(|a| canon32(crate::float::nearest32(f32v(a))) as Slot),
        F32Sqrt => un!(|a| canon32(crate::float::sqrt32(f32v(a))) as Slot),
        F32Add => bin!(|a, b| canon32(f32v(a) + f32v(b)) as Slot),
        F32Sub => bin!(|a, b| canon32(f32v(a) - f32v(b)) as Slot),
        F32Mul => bin!(|a, b| canon32(f32v(a) * f32v(b)) as Slot),
        F32Div => bin!(|a, b| canon32(f32v(a) / f32v(b)) as Slot),
        F32Min => bin!(|a, b| canon32(fmin32(f32v(a), f32v(b))) as Slot),
        F32Max => bin!(|a, b| canon32(fmax32(f32v(a), f32v(b))) as Slot),

        F64Abs => un!(|a| (a as u64 & 0x7FFF_FFFF_FFFF_FFFF) as Slot),
        F64Neg => un!(|a| (a as u64 ^ 0x8000_0000_0000_0000) as Slot),
        F64Copysign => bin!(|a, b| ((a as u64 & 0x7FFF_FFFF_FFFF_FFFF) | (b as u64 & 0x8000_0000_0000_0000)) as Slot),
        F64Ceil => un!(|a| canon64(crate::float::ceil64(f64v(a))) as Slot),
        F64Floor => un!(|a| canon64(crate::float::floor64(f64v(a))) as Slot),
        F64Trunc => un!(|a| canon64(crate::float::trunc64(f64v(a))) as Slot),
        F64Nearest => un!(|a| canon64(crate::float::nearest64(f64v(a))) as Slot),
        F64Sqrt => un!(|a| canon64(crate::float::sqrt64(f64v(a))) as Slot),
        F64Add => bin!(|a, b| canon64(f64v(a) + f64v(b)) as Slot),
        F64Sub => bin!(|a, b| canon64(f64v(a) - f64v(b)) as Slot),
        F64Mul => bin!(|a, b| canon64(f64v(a) * f64v(b)) as Slot),
        F64Div => bin!(|a, b| canon64(f64v(a) / f64v(b)) as Slot),
        F64Min => bin!(|a, b| canon64(fmin64(f64v(a), f64v(b))) as Slot),
        F64Max => bin!(|a, b| canon64(fmax64(f64v(a), f64v(b))) as Slot),

        I32WrapI64 => un!(|a| (a as u32) as Slot),
        I32TruncF32S => un_try!(|a| trunc_checked(f32v(a) as f64, -TWO31, TWO31).map(|t| t as i32 as u32 as Slot)),
        I32TruncF32U => un_try!(|a| trunc_checked(f32v(a) as f64, 0.0, TWO32).map(|t| t as u32 as Slot)),
        I32TruncF64S => un_try!(|a| trunc_checked(f64v(a), -TWO31, TWO31).map(|t| t as i32 as u32 as Slot)),
        I32TruncF64U => un_try!(|a| trunc_checked(f64v(a), 0.0, TWO32).map(|t| t as u32 as Slot)),
        I64ExtendI32S => un!(|a| (a as i32 as i64 as u64) as Slot),
        I64ExtendI32U => un!(|a| (a as u32 as u64) as Slot),
        I64TruncF32S => un_try!(|a| trunc_checked(f32v(a) as f64, -TWO63, TWO63).map(|t| t as i64 as u64 as Slot)),
        I64TruncF32U => un_try!(|a| trunc_checked(f32v(a) as f64, 0.0, TWO64).map(|t| t as u64 as Slot)),
        I64TruncF64S => un_try!(|a| trunc_checked(f64v(a), -TWO63, TWO63).map(|t| t as i64 as u64 as Slot)),
        I64TruncF64U => un_try!(|a| trunc_checked(f64v(a), 0.0, TWO64).map(|t| t as u64 as Slot)),
        F32ConvertI32S => un!(|a| ((a as i32) as f32).to_bits() as Slot),
        F32ConvertI32U => un!(|a| ((a as u32) as f32).to_bits() as Slot),
        F32ConvertI64S => un!(|a| ((a as i64) as f32).to_bits() as Slot),
        F32ConvertI64U => un!(|a| ((a as u64) as f32).to_bits() as Slot),
        F32DemoteF64 => un!(|a| canon32(f64v(a) as f32) as Slot),
        F64ConvertI32S => un!(|a| ((a as i32) as f64).to_bits() as Slot),
        F64ConvertI32U => un!(|a| ((a as u32) as f64).to_bits() as Slot),
        F64ConvertI64S => un!(|a| ((a as i64) as f64).to_bits() as Slot),
        F64ConvertI64U => un!(|a| ((a as u64) as f64).to_bits() as Slot),
        F64PromoteF32 => un!(|a| canon64(f32v(a) as f64) as Slot),
        // Slots already hold the bits; reinterpretation only drops/keeps the same low bits.
        I32ReinterpretF32 | F32ReinterpretI32 => un!(|a| (a as u32) as Slot),
        I64ReinterpretF64 | F64ReinterpretI64 => un!(|a| (a as u64) as Slot),
        I32Extend8S => un!(|a| (a as u8 as i8 as i32 as u32) as Slot),
        I32Extend16S => un!(|a| (a as u16 as i16 as i32 as u32) as Slot),
        I64Extend8S => un!(|a| (a as u8 as i8 as i64 as u64) as Slot),
        I64Extend16S => un!(|a| (a as u16 as i16 as i64 as u64) as Slot),
        I64Extend32S => un!(|a| (a as u32 as i32 as i64 as u64) as Slot),
        // Rust's float-to-int `as` saturates and maps NaN to 0: exactly trunc_sat.
        I32TruncSatF32S => un!(|a| (f32v(a) as i32 as u32) as Slot),
        I32TruncSatF32U => un!(|a| (f32v(a) as u32) as Slot),
        I32TruncSatF64S => un!(|a| (f64v(a) as i32 as u32) as Slot),
        I32TruncSatF64U => un!(|a| (f64v(a) as u32) as Slot),
        I64TruncSatF32S => un!(|a| (f32v(a) as i64 as u64) as Slot),
        I64TruncSatF32U => un!(|a| (f32v(a) as u64) as Slot),
        I64TruncSatF64S => un!(|a| (f64v(a) as i64 as u64) as Slot),
        I64TruncSatF64U => un!(|a| (f64v(a) as u64) as Slot),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: NumOp, args: &[Slot]) -> Result<Slot, TrapCode> {
        let mut s = args.to_vec();
        exec(op, &mut s)?;
        assert_eq!(s.len(), 1);
        Ok(s[0])
    }

    #[test]
    fn integer_traps() {
        assert_eq!(run(NumOp::I32DivS, &[1, 0]), Err(TrapCode::IntegerDivideByZero));
        assert_eq!(run(NumOp::I32DivS, &[i32::MIN as u32 as Slot, u32::MAX as Slot]), Err(TrapCode::IntegerOverflow));
        assert_eq!(run(NumOp::I32RemS, &[i32::MIN as u32 as Slot, u32::MAX as Slot]), Ok(0));
        assert_eq!(run(NumOp::I64RemU, &[5, 0]), Err(TrapCode::IntegerDivideByZero));
    }

    #[test]
    fn nan_canonicalisation_matches_wasmi_profile() {
        let payload = 0x7FA0_0001u32 as Slot;
        assert_eq!(run(NumOp::F32Add, &[payload, 0]), Ok(CANONICAL_NAN_F32 as Slot));
        assert_eq!(run(NumOp::F32Neg, &[payload]), Ok(0xFFA0_0001u32 as Slot));
        assert_eq!(run(NumOp::F32Abs, &[0xFFA0_0001u32 as Slot]), Ok(payload));
        assert_eq!(run(NumOp::F32Sqrt, &[(-1.0f32).to_bits() as Slot]), Ok(CANONICAL_NAN_F32 as Slot));
        assert_eq!(run(NumOp::F64PromoteF32, &[payload]), Ok(CANONICAL_NAN_F64 as Slot));
        // min(-0, +0) is -0 and min with NaN is the canonical NaN.
        assert_eq!(
            run(NumOp::F32Min, &[0.0f32.to_bits() as Slot, (-0.0f32).to_bits() as Slot]),
            Ok((-0.0f32).to_bits() as Slot)
        );
        assert_eq!(run(NumOp::F64Max, &[1, CANONICAL_NAN_F64 as Slot | 1]), Ok(CANONICAL_NAN_F64 as Slot));
    }

    #[test]
    fn truncation_ranges() {
        let f = |x: f32| x.to_bits() as Slot;
        assert_eq!(run(NumOp::I32TruncF32S, &[f(-2147483648.0)]), Ok(i32::MIN as u32 as Slot));
        assert_eq!(run(NumOp::I32TruncF32S, &[f(2147483648.0)]), Err(TrapCode::IntegerOverflow));
        assert_eq!(run(NumOp::I32TruncF32U, &[f(-0.9)]), Ok(0));
        assert_eq!(run(NumOp::I32TruncF32U, &[f(-1.0)]), Err(TrapCode::IntegerOverflow));
        assert_eq!(run(NumOp::I32TruncF32U, &[f(f32::NAN)]), Err(TrapCode::InvalidConversionToInteger));
        assert_eq!(run(NumOp::I32TruncSatF32S, &[f(1e10)]), Ok(i32::MAX as u32 as Slot));
        assert_eq!(run(NumOp::I64TruncSatF64U, &[f64::NAN.to_bits() as Slot]), Ok(0));
        assert_eq!(run(NumOp::F32Nearest, &[f(2.5)]), Ok(f(2.0)));
    }
}
