//! Which vector instructions the CPU path uses: chosen at run time from what the processor
//! offers, or forced (lower) by the caller or the environment.
//!
//! The AVX-512, AVX2 and NEON paths compute the same bits: their GEMM micro-kernels
//! (`src/cpu/microkernel.rs`) build each element as the same chain of fused multiply-adds, and the
//! elementwise gate loops fuse exactly the same operations, so only the speed differs. The
//! portable path multiplies and adds separately (processors without FMA would pay a library call
//! per element otherwise), so it agrees with them to rounding. `tests/cpu_isa.rs` holds every
//! path to that.

use crate::error::{Error, Result};

/// The environment variable that caps the instruction set of [`Isa::from_env`]: `avx512`,
/// `avx2`, `neon` or `scalar`.
pub const ISA_ENV: &str = "LSTM_WGPU_CPU_ISA";

/// The names [`ISA_ENV`] takes, for messages.
const NAMES: &str = "scalar, neon, avx2, avx512";

/// An instruction set the CPU path has code for, from the narrowest to the widest (the order
/// [`Isa::capped`] caps by; one processor has either the x86-64 sets or NEON). Non-exhaustive:
/// a later version may add instruction sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable Rust, vectorised by the compiler for the build's baseline (SSE2 on x86-64, NEON
    /// on aarch64).
    Scalar,
    /// aarch64's NEON (Advanced SIMD, 128-bit vectors, fused multiply-add), which every aarch64
    /// processor has.
    Neon,
    /// x86-64 with AVX2 and FMA (256-bit vectors).
    Avx2,
    /// x86-64 with AVX-512 F, BW, DQ and VL (512-bit vectors).
    Avx512,
}

impl Isa {
    /// Every instruction set, narrowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512];

    /// The name [`ISA_ENV`] takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Neon => "neon",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this processor can run the code for `self`.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_supported()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512dq")
                    && std::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(not(target_arch = "aarch64"))]
            Isa::Neon => false,
        }
    }

    /// The widest instruction set this processor supports.
    pub fn detect() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|i| i.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// The instruction sets this processor supports, narrowest first.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// [`Isa::detect`], capped by [`ISA_ENV`] when it is set: the widest set the processor has
    /// that is no wider than the one named, so one setting serves every machine (`avx2` runs
    /// NEON on aarch64, `neon` the portable path on x86-64). Fails on a value that
    /// names no instruction set.
    pub fn from_env() -> Result<Isa> {
        match std::env::var(ISA_ENV) {
            Ok(v) => Isa::capped(Some(&v)),
            Err(std::env::VarError::NotPresent) => Isa::capped(None),
            Err(std::env::VarError::NotUnicode(v)) => Err(Error::config(
                ISA_ENV,
                format!("{v:?} is not one of {NAMES}"),
            )),
        }
    }

    /// What [`Isa::from_env`] returns when [`ISA_ENV`] holds `value` (`None`: not set).
    pub fn capped(value: Option<&str>) -> Result<Isa> {
        match value {
            None => Ok(Isa::detect()),
            Some(v) => {
                let cap = v.parse::<Isa>()?;
                Ok(Isa::supported()
                    .into_iter()
                    .rfind(|&i| i <= cap)
                    .unwrap_or(Isa::Scalar))
            }
        }
    }

    /// `self` when this processor supports it, else [`Error::Config`].
    pub fn check_supported(self) -> Result<Isa> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(Error::config(
                "CPU instruction set",
                format!("this processor cannot run {}", self.name()),
            ))
        }
    }
}

impl std::str::FromStr for Isa {
    type Err = Error;

    fn from_str(s: &str) -> Result<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::config(ISA_ENV, format!("{s:?} is not one of {NAMES}")))
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Isa;

    #[test]
    fn names_parse_back_to_their_instruction_set() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
            assert_eq!(isa.name().to_uppercase().parse::<Isa>().unwrap(), isa);
        }
        assert!("sse9".parse::<Isa>().is_err());
    }

    #[test]
    fn the_setting_caps_the_detected_set_and_rejects_unknown_names() {
        assert_eq!(Isa::capped(None).unwrap(), Isa::detect());
        for cap in Isa::ALL {
            let got = Isa::capped(Some(cap.name())).unwrap();
            assert!(got.is_supported() && got <= cap, "{cap} gave {got}");
            // The widest such: nothing supported lies between it and the cap.
            for isa in Isa::supported() {
                assert!(isa <= got || isa > cap, "{cap} gave {got}, not {isa}");
            }
        }
        assert_eq!(
            Isa::capped(Some(Isa::detect().name())).unwrap(),
            Isa::detect()
        );
        assert_eq!(Isa::capped(Some(" Scalar ")).unwrap(), Isa::Scalar);
        assert!(Isa::capped(Some("neon9")).is_err());
    }

    #[test]
    fn the_detected_set_is_supported_and_the_widest_supported() {
        let best = Isa::detect();
        assert!(best.is_supported());
        assert_eq!(Isa::supported().last(), Some(&best));
        assert!(Isa::Scalar.is_supported());
    }
}
