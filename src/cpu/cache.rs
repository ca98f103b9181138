//! The size of a core's L2 cache, which decides how the steps of a layer are shared between
//! threads (`steps_by_units`): whether half of a layer's `W_hh` stays in each core's cache.

use std::sync::OnceLock;

/// Assumed where the processor does not say (a common size on current x86-64 and ARM cores).
const DEFAULT_L2_BYTES: usize = 2 << 20;

/// Bytes of L2 cache per core: what the processor reports (`cpuid` leaf `0x8000_0006` on
/// x86-64, which Intel and AMD both fill in), else [`DEFAULT_L2_BYTES`]. Read once.
pub(crate) fn l2_bytes() -> usize {
    static L2: OnceLock<usize> = OnceLock::new();
    *L2.get_or_init(|| reported_l2_bytes().unwrap_or(DEFAULT_L2_BYTES))
}

/// The L2 size the processor reports, if any.
#[cfg(target_arch = "x86_64")]
fn reported_l2_bytes() -> Option<usize> {
    use std::arch::x86_64::__cpuid;
    // Leaf 0x8000_0000 gives the highest extended leaf; 0x8000_0006 ECX[31:16] is the L2 size
    // in KiB.
    let highest = __cpuid(0x8000_0000).eax;
    if highest < 0x8000_0006 {
        return None;
    }
    let kib = (__cpuid(0x8000_0006).ecx >> 16) as usize;
    (kib > 0).then_some(kib << 10)
}

/// The L2 size the processor reports, if any (not read on this architecture).
#[cfg(not(target_arch = "x86_64"))]
fn reported_l2_bytes() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_l2_size_is_a_plausible_whole_number_of_kib() {
        let l2 = l2_bytes();
        // Every L2 in use is between 128 KiB and 64 MiB and a whole number of KiB.
        assert!(
            (128 << 10..=64 << 20).contains(&l2) && l2.is_multiple_of(1024),
            "L2 of {l2} bytes"
        );
    }
}
