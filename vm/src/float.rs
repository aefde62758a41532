//! The float functions core lacks, from `libm`: one implementation for the stepper on any host and
//! the verifier inside the canister. All are exact (rounding to an integer) or correctly rounded
//! (square root), so every conforming implementation agrees on non-NaN results, and NaN results
//! are canonicalised by the callers.

/// `f32.ceil`.
pub fn ceil32(x: f32) -> f32 {
    libm::ceilf(x)
}
/// `f32.floor`.
pub fn floor32(x: f32) -> f32 {
    libm::floorf(x)
}
/// `f32.trunc`.
pub fn trunc32(x: f32) -> f32 {
    libm::truncf(x)
}
/// `f32.nearest` (ties to even).
pub fn nearest32(x: f32) -> f32 {
    libm::roundevenf(x)
}
/// `f32.sqrt`.
pub fn sqrt32(x: f32) -> f32 {
    libm::sqrtf(x)
}
/// `f64.ceil`.
pub fn ceil64(x: f64) -> f64 {
    libm::ceil(x)
}
/// `f64.floor`.
pub fn floor64(x: f64) -> f64 {
    libm::floor(x)
}
/// `f64.trunc`.
pub fn trunc64(x: f64) -> f64 {
    libm::trunc(x)
}
/// `f64.nearest` (ties to even).
pub fn nearest64(x: f64) -> f64 {
    libm::roundeven(x)
}
/// `f64.sqrt`.
pub fn sqrt64(x: f64) -> f64 {
    libm::sqrt(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_std_on_edge_cases() {
        let xs32 = [0.5f32, -0.5, 1.5, 2.5, -2.5, 1e30, -0.0, 0.0, 3.999_999_8, f32::MIN_POSITIVE, 8388609.0, 2.0];
        for x in xs32 {
            assert_eq!(ceil32(x).to_bits(), x.ceil().to_bits(), "ceil {x}");
            assert_eq!(floor32(x).to_bits(), x.floor().to_bits(), "floor {x}");
            assert_eq!(trunc32(x).to_bits(), x.trunc().to_bits(), "trunc {x}");
            assert_eq!(nearest32(x).to_bits(), x.round_ties_even().to_bits(), "nearest {x}");
            assert_eq!(sqrt32(x.abs()).to_bits(), x.abs().sqrt().to_bits(), "sqrt {x}");
        }
        let xs64 = [0.5f64, -0.5, 2.5, -3.5, 1e300, -0.0, 4503599627370497.0, 2.0, 1e-310];
        for x in xs64 {
            assert_eq!(ceil64(x).to_bits(), x.ceil().to_bits());
            assert_eq!(floor64(x).to_bits(), x.floor().to_bits());
            assert_eq!(trunc64(x).to_bits(), x.trunc().to_bits());
            assert_eq!(nearest64(x).to_bits(), x.round_ties_even().to_bits());
            assert_eq!(sqrt64(x.abs()).to_bits(), x.abs().sqrt().to_bits());
        }
        // A pseudo-random sweep over bit patterns.
        let mut s = 0x9E37_79B9u32;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let x = f32::from_bits(s);
            if x.is_nan() {
                continue;
            }
            assert_eq!(nearest32(x).to_bits(), x.round_ties_even().to_bits());
            assert_eq!(sqrt32(x).to_bits(), x.sqrt().to_bits(), "{x}");
            assert_eq!(ceil32(x).to_bits(), x.ceil().to_bits());
        }
    }
}
