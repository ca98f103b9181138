//! The size of a core's L2 cache, which decides how the steps of a layer are shared between
//! threads (`steps_by_units`): whether half of a layer's `W_hh` stays in each core's cache.

use std::sync::OnceLock;

/// Assumed where the processor does not say (a common size on current x86-64 and ARM cores).
const DEFAULT_L2_BYTES: usize = 2 << 20;

/// Bytes of L2 cache per core: what the processor reports (`cpuid` leaf `0x8000_0006` on
/// x86-64, which Intel and AMD both fill in; elsewhere what Linux reads from it), else
/// [`DEFAULT_L2_BYTES`]. Read once.
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

/// The L2 size the kernel reports for the first core, if any: Linux's
/// `/sys/devices/system/cpu/cpu0/cache/index*/` (`level` 2, `type` Unified or Data, `size`).
#[cfg(not(target_arch = "x86_64"))]
fn reported_l2_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.flatten().find_map(|entry| {
        let read = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
        let level = read("level")?;
        let kind = read("type")?;
        (level.trim() == "2" && matches!(kind.trim(), "Unified" | "Data"))
            .then(|| read("size"))
            .flatten()
            .and_then(|size| parse_size(&size))
    })
}

/// A cache size as sysfs writes it (`1024K`, `2M`, or bytes), in bytes.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return None,
    };
    let n: usize = digits.parse().ok()?;
    (n > 0).then_some(n << shift)
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

    #[test]
    fn cache_sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_size("1024K\n"), Some(1 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("524288"), Some(1 << 19));
        for bad in ["", "K", "0K", "12Q", "1.5M", "-1K"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
