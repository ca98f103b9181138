//! The CPU twin of `column_sum.wgsl` (`cpu::column_sum`): the sums ndarray's `sum_axis` gives,
//! added in the kernel's documented order bit for bit, written to both outputs, and typed errors
//! for buffers too short.
mod common;

use common::{assert_close, random_array, unravel};
use lstm_wgpu::Error;
use lstm_wgpu::cpu::column_sum::column_sum;
use lstm_wgpu::ndarray::{Array1, Array2, Axis};

/// Marks output elements outside both ranges, which must stay as they are.
const UNTOUCHED: f32 = 1234.5;

/// `[rows, cols]` values with magnitudes from 1e-3 to 1e3, so that the order of the additions
/// changes the rounded sums.
fn wide_range(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mantissa: Array2<f32> = random_array((rows, cols), seed, -1.0, 1.0);
    let exponent: Array2<f32> = random_array((rows, cols), seed + 1, -3.0, 3.0);
    mantissa * exponent.mapv(|e| 10f32.powf(e))
}

/// Runs the twin on `values` stored at element `in_off`, the outputs at `off0` and `off1` of a
/// buffer of `out_len` elements.
fn run(values: &Array2<f32>, in_off: usize, offsets: [usize; 2], out_len: usize) -> Vec<f32> {
    let (rows, cols) = values.dim();
    let mut input = vec![f32::NAN; in_off];
    input.extend(values.iter());
    let mut out = vec![UNTOUCHED; out_len];
    column_sum(&input, in_off, rows, cols, &mut out, offsets).unwrap();
    out
}

/// The sum of `column` in the order the module documents, written out independently: lanes
/// `j = 0..4` take rows `j, j + 4, …` below the last multiple of four, the rows left over go to
/// lane 0 in order, then `(lane 0 + lane 1) + (lane 2 + lane 3)`.
fn documented_order(column: &[f32]) -> f32 {
    let full = column.len() / 4 * 4;
    let lane = |j: usize| (j..full).step_by(4).fold(0.0f32, |s, r| s + column[r]);
    let x = column[full..].iter().fold(lane(0), |s, &v| s + v);
    (x + lane(1)) + (lane(2) + lane(3))
}

/// Fails naming the element with the largest difference when `got` and `want` differ in any bit.
fn assert_same_bits(what: &str, got: &[f32], want: &[f32], shape: &[usize]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g.to_bits() != w.to_bits())
        .max_by(|(_, (g1, w1)), (_, (g2, w2))| {
            let d = |g: f32, w: f32| (f64::from(g) - f64::from(w)).abs();
            d(**g1, **w1).total_cmp(&d(**g2, **w2))
        });
    if let Some((i, (g, w))) = worst {
        panic!(
            "{what}: worst element {:?}: got {g:e}, expected {w:e} (bits {:#x} vs {:#x})",
            unravel(i, shape),
            g.to_bits(),
            w.to_bits()
        );
    }
}

#[test]
fn sums_match_ndarray_sum_axis() {
    for (rows, cols) in [(1, 1), (3, 5), (4, 7), (130, 33), (1000, 3)] {
        let values: Array2<f32> = random_array((rows, cols), 1, -1.0, 1.0);
        let out = run(&values, 5, [0, cols], 2 * cols);
        let got = Array1::from_vec(out[..cols].to_vec());
        let want = values.sum_axis(Axis(0));
        // sum_axis adds the rows in its own order, the twin in four interleaved partial sums.
        // Each of the two rounds `rows - 1` additions, each off by at most u = 2^-24 of the
        // running sum, so each is within (rows - 1)·u·Σ|x| of the exact sum and they differ by
        // at most twice that. A wrong element, offset or stride is off by a whole term instead.
        let abs_sum = values.mapv(f32::abs).sum_axis(Axis(0));
        let largest = abs_sum.iter().fold(0.0f64, |m, &v| m.max(f64::from(v)));
        let atol = 2.0 * rows as f64 * 2f64.powi(-24) * largest;
        assert_close(
            &format!("{rows}x{cols} column sums"),
            got.view().into_dyn(),
            want.view().into_dyn(),
            atol,
            0.0,
        );
    }
}

#[test]
fn sums_are_added_in_the_documented_order_bit_for_bit() {
    // Row counts with every remainder modulo four, including fewer rows than lanes.
    for rows in [0, 1, 2, 3, 4, 5, 6, 7, 8, 29, 130] {
        let cols = 9;
        let values = wide_range(rows, cols, rows as u64);
        let out = run(&values, 3, [0, cols], 2 * cols);
        let want: Vec<f32> = (0..cols)
            .map(|n| documented_order(&values.column(n).to_vec()))
            .collect();
        assert_same_bits(&format!("{rows} rows"), &out[..cols], &want, &[cols]);
    }
}

#[test]
fn the_documented_order_is_not_plain_row_order_for_this_data() {
    // Otherwise the bit-for-bit test above could not tell the orders apart.
    let values = wide_range(130, 9, 130);
    let differs = (0..9).any(|n| {
        let column = values.column(n).to_vec();
        let in_row_order = column.iter().fold(0.0f32, |s, &v| s + v);
        documented_order(&column).to_bits() != in_row_order.to_bits()
    });
    assert!(differs, "every column sums to the same bits in row order");
}

#[test]
fn both_outputs_receive_the_same_sums_and_nothing_else_is_written() {
    let (rows, cols) = (11, 6);
    let values = wide_range(rows, cols, 7);
    let (off0, off1, len) = (2, 13, 25);
    let out = run(&values, 4, [off0, off1], len);
    let want: Vec<f32> = (0..cols)
        .map(|n| documented_order(&values.column(n).to_vec()))
        .collect();
    assert_same_bits("first output", &out[off0..off0 + cols], &want, &[cols]);
    assert_same_bits("second output", &out[off1..off1 + cols], &want, &[cols]);
    for (at, &v) in out.iter().enumerate() {
        let inside = (off0..off0 + cols).contains(&at) || (off1..off1 + cols).contains(&at);
        if !inside {
            assert_eq!(v, UNTOUCHED, "element {at} of the output was written");
        }
    }
}

#[test]
fn both_outputs_may_be_the_same_range() {
    let values = wide_range(6, 4, 3);
    let out = run(&values, 0, [1, 1], 5);
    let want: Vec<f32> = (0..4)
        .map(|n| documented_order(&values.column(n).to_vec()))
        .collect();
    assert_same_bits("output", &out[1..5], &want, &[4]);
}

#[test]
fn zero_rows_sum_to_zero() {
    let out = run(&Array2::zeros((0, 3)), 0, [0, 3], 6);
    assert_eq!(out, vec![0.0; 6]);
}

/// Checks that the call fails with `Error::Shape` for `tensor`, needing `expected` elements
/// where `actual` were given, and writes nothing.
fn assert_shape_error(
    (input_len, in_off, rows, cols): (usize, usize, usize, usize),
    (out_len, offsets): (usize, [usize; 2]),
    tensor: &str,
    expected: usize,
    actual: usize,
) {
    let input = vec![1.0; input_len];
    let mut out = vec![UNTOUCHED; out_len];
    match column_sum(&input, in_off, rows, cols, &mut out, offsets) {
        Err(Error::Shape {
            tensor: t,
            expected: e,
            actual: a,
        }) => assert_eq!((t.as_str(), e, a), (tensor, vec![expected], vec![actual])),
        other => panic!("expected a shape error for {tensor}, got {other:?}"),
    }
    assert!(
        out.iter().all(|&v| v == UNTOUCHED),
        "the output was written"
    );
}

#[test]
fn input_shorter_than_offset_plus_rows_times_cols_is_a_shape_error() {
    assert_shape_error((22, 3, 4, 5), (10, [0, 5]), "column sum input", 23, 22);
}

#[test]
fn output_shorter_than_either_range_is_a_shape_error() {
    assert_shape_error((20, 0, 4, 5), (12, [8, 0]), "column sum output", 13, 12);
}

#[test]
fn sizes_that_overflow_are_a_config_error_not_a_panic() {
    let mut out = vec![UNTOUCHED; 4];
    match column_sum(&[1.0; 4], 1, usize::MAX, 2, &mut out, [0, 2]) {
        Err(Error::Config { what, .. }) => assert_eq!(what, "column sum"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn output_ranges_overlapping_in_part_are_a_config_error() {
    let mut out = vec![UNTOUCHED; 10];
    match column_sum(&[1.0; 8], 0, 2, 4, &mut out, [0, 2]) {
        Err(Error::Config { what, .. }) => assert_eq!(what, "column sum output"),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(
        out.iter().all(|&v| v == UNTOUCHED),
        "the output was written"
    );
}
