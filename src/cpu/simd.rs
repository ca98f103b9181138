//! One loop compiled twice, for the processor's widest vectors and for any x86-64, chosen at run
//! time, with the same results.
//!
//! The gate loops of the step kernels are written once, as generic `#[inline(always)]` functions
//! over row-major slices. [`avx2_dispatch!`] turns such a function into a wrapper that, on
//! x86-64, calls a copy compiled with AVX2 enabled when the processor has it, and the portable
//! copy otherwise. Only the vector width differs: Rust never contracts `a * b + c` into a fused
//! multiply-add nor reorders float arithmetic, so both copies give the same bits.

/// Defines a function that runs `inner` (a generic `#[inline(always)]` function with the same
/// parameters, returning nothing) compiled with AVX2 where the processor supports it:
///
/// ```text
/// avx2_dispatch! {
///     /// Doc of the wrapper.
///     fn wrapper<F: Real>(a: &mut [F], n: usize) => inner;
/// }
/// ```
///
/// The AVX2 copy is `inner` inlined into a `#[target_feature(enable = "avx2")]` function, so its
/// loops vectorise 256 bits wide.
macro_rules! avx2_dispatch {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident<$f:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) => $inner:path;
    ) => {
        $(#[$attr])*
        $vis fn $name<$f: $bound>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// The inner function compiled for AVX2: only the vector width differs, so the
                /// results are the same bits.
                #[target_feature(enable = "avx2")]
                unsafe fn avx2<$f: $bound>($($arg: $ty),*) {
                    $inner($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the processor supports AVX2, checked just above.
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            $inner($($arg),*)
        }
    };
}

pub(crate) use avx2_dispatch;
