//! Inverted dropout, twin of `shaders/dropout.wgsl`:
//!
//! ```text
//! out[i] = in[i] · scale   if bits(key, i) ≥ threshold
//!        = 0               otherwise
//! bits(key, i) = mix(mix(i ⊕ key[0]) ⊕ key[1])
//! mix(x): x ⊕= x ≫ 16; x ·= 0x7feb352d; x ⊕= x ≫ 15; x ·= 0x846ca68b; x ⊕= x ≫ 16   (wrapping u32)
//! ```
//!
//! A counter-based generator: element `i`'s draw depends on nothing but the key and `i`, so the
//! GPU and this twin make the same mask bit for bit, in any order, and backward recomputes it
//! instead of storing it. `mix` is a bijective integer hash (C. Wellons' "lowbias32"), so for one
//! key every element draws a different value. The key ([`Dropout::key`]) mixes the seed, the
//! training pass and the layer; the threshold and scale are [`Dropout::threshold`] and
//! [`Dropout::scale`]. The same operation on a gradient is dropout's backward: the gradient of a
//! dropped element is 0, that of a kept one is scaled.
//!
//! Element indices are taken modulo 2³², so a layer output of more than 2³² elements repeats its
//! mask.

use crate::lstm::Dropout;
use crate::real::Real;

/// One round of the integer hash.
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The 32 random bits of element `index` under `key`.
pub fn mask_bits(key: [u32; 2], index: u32) -> u32 {
    mix(mix(index ^ key[0]) ^ key[1])
}

/// Writes `input` with dropout applied into `out` (same length): element `i` of the flat
/// tensor is kept, times `scale`, when `mask_bits(key, i) ≥ threshold`, else zeroed.
pub fn dropout<F: Real>(input: &[F], out: &mut [F], key: [u32; 2], threshold: u32, scale: F) {
    for (i, (o, &x)) in out.iter_mut().zip(input).enumerate() {
        *o = if mask_bits(key, i as u32) >= threshold {
            x * scale
        } else {
            F::zero()
        };
    }
}

/// [`dropout`] in place, with the key, threshold and scale of `layer` under `d`.
pub fn dropout_in_place<F: Real>(values: &mut [F], d: &Dropout, layer: usize) {
    let (key, threshold) = (d.key(layer), d.threshold());
    let scale = F::from_f64_lossy(d.scale_f64());
    for (i, v) in values.iter_mut().enumerate() {
        *v = if mask_bits(key, i as u32) >= threshold {
            *v * scale
        } else {
            F::zero()
        };
    }
}
