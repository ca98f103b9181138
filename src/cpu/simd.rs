//! One loop compiled three times, for AVX-512, for AVX2 (or NEON) and for any processor, chosen
//! at run time ([`super::isa::Isa`]), with the same results.
//!
//! The gate loops of the step kernels are written once, as generic `#[inline(always)]` functions
//! over row-major slices. [`simd_dispatch!`] turns such a function into a wrapper that takes an
//! [`Isa`](super::isa::Isa) first and, on x86-64, calls a copy compiled with AVX-512 or AVX2
//! enabled, on aarch64 a copy with fused multiply-adds (NEON is part of every aarch64
//! processor, so that copy needs no feature of its own), or the portable copy. Rust never
//! contracts `a * b + c` into a fused multiply-add nor reorders float arithmetic, so the
//! AVX-512, AVX2 and NEON copies give the same bits: all evaluate the activations' polynomials
//! with fused multiply-adds ([`Fused`](crate::activations::Fused)). The portable copy rounds
//! them separately ([`Separate`](crate::activations::Separate)), as the portable GEMM kernel
//! does, since a processor without FMA would make each fused step a library call.

/// Defines a function that runs `inner` (an `#[inline(always)]` function generic over the float
/// type and a [`MulAdd`](crate::activations::MulAdd), with the same parameters after the first,
/// returning nothing) compiled for the instruction set it is given:
///
/// ```text
/// simd_dispatch! {
///     /// Doc of the wrapper.
///     fn wrapper<F: Real>(a: &mut [F], n: usize) => inner;
/// }
/// // called as wrapper(isa, a, n)
/// ```
///
/// An instruction set the processor lacks runs the portable copy.
macro_rules! simd_dispatch {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident<$f:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) => $inner:ident;
    ) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$f: $bound>(isa: $crate::cpu::isa::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// The inner function compiled for AVX-512: 512-bit vectors, same bits.
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                unsafe fn avx512<$f: $bound>($($arg: $ty),*) {
                    $inner::<$f, $crate::activations::Fused>($($arg),*)
                }
                /// The inner function compiled for AVX2: 256-bit vectors, same bits.
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<$f: $bound>($($arg: $ty),*) {
                    $inner::<$f, $crate::activations::Fused>($($arg),*)
                }
                if isa.is_supported() {
                    match isa {
                        // SAFETY: the processor supports the instruction set, checked just above.
                        $crate::cpu::isa::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                        // SAFETY: as above.
                        $crate::cpu::isa::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                        $crate::cpu::isa::Isa::Scalar | $crate::cpu::isa::Isa::Neon => {}
                    }
                }
            }
            #[cfg(target_arch = "aarch64")]
            if isa == $crate::cpu::isa::Isa::Neon {
                // Every aarch64 processor has NEON and its fused multiply-add.
                return $inner::<$f, $crate::activations::Fused>($($arg),*);
            }
            let _ = isa;
            $inner::<$f, $crate::activations::Separate>($($arg),*)
        }
    };
}

pub(crate) use simd_dispatch;

/// Values in `[lo, hi)`, spread by a hash of the index: inputs for the gate loops' tests.
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let h = (i * 7919 + seed * 104_729).wrapping_mul(2_654_435_761) >> 8;
            lo + (hi - lo) * h as f32 / (1u32 << 24) as f32
        })
        .collect()
}
