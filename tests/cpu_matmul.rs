//! The CPU twin of `matmul.wgsl` (`cpu::matmul`) against ndarray's `general_mat_mul`: every
//! transpose combination, row maps, bias, accumulation, edge shapes, and typed errors for
//! layouts that do not fit their buffers.
mod common;

use common::{assert_close, random_array};
use lstm_wgpu::Error;
use lstm_wgpu::cpu::matmul::matmul;
use lstm_wgpu::gemm::{GemmSpec, MatrixLayout};
use lstm_wgpu::ndarray::linalg::general_mat_mul;
use lstm_wgpu::ndarray::{Array1, Array2, Axis};

/// Marks buffer elements outside every matrix: a product that reads one becomes NaN.
const UNREAD: f32 = f32::NAN;
/// Marks elements of `C`'s buffer outside the matrix, which must stay as they are.
const UNTOUCHED: f32 = 1234.5;

/// A stored `[rows, cols]` matrix of random values in `[-1, 1)`, at element `offset` of a buffer
/// with `pad` unused elements after each row, every unused element `fill`.
struct Stored {
    buf: Vec<f32>,
    layout: MatrixLayout,
    values: Array2<f32>,
}

fn stored(rows: usize, cols: usize, seed: u64, offset: usize, pad: usize, fill: f32) -> Stored {
    let values: Array2<f32> = random_array((rows, cols), seed, -1.0, 1.0);
    let ld = cols + pad;
    let mut buf = vec![fill; offset + rows * ld + pad];
    for ((r, c), &v) in values.indexed_iter() {
        buf[offset + r * ld + c] = v;
    }
    Stored {
        buf,
        layout: MatrixLayout::new(offset, ld),
        values,
    }
}

/// `op(M)` as `transposed` says, in f64.
fn op(m: &Stored, transposed: bool) -> Array2<f64> {
    let v = m.values.mapv(f64::from);
    if transposed { v.t().to_owned() } else { v }
}

/// The `[m, n]` matrix `C` of a buffer, as f64.
fn c_matrix(buf: &[f32], layout: &MatrixLayout, m: usize, n: usize) -> Array2<f64> {
    Array2::from_shape_fn((m, n), |(i, j)| f64::from(buf[layout.index(i, j)]))
}

/// A product `M x N x K` of the given layouts, no bias, overwriting `C`.
fn spec(
    (m, n, k): (usize, usize, usize),
    a: MatrixLayout,
    b: MatrixLayout,
    c: MatrixLayout,
) -> GemmSpec {
    GemmSpec {
        m,
        n,
        k,
        a,
        b,
        c,
        bias: None,
        accumulate: false,
    }
}

/// Runs `spec` on the buffers of `a` and `b` and a copy of `c`'s; returns that copy.
fn run(spec: &GemmSpec, a: &[f32], b: &[f32], bias: &[f32], c: &Stored) -> Vec<f32> {
    let mut out = c.buf.clone();
    matmul(spec, a, b, bias, &mut out).unwrap();
    out
}

/// Largest `Σ_k |op(A)[m, k] · op(B)[k, n]|` plus `|extra[m, n]|` over the elements of `C`.
fn magnitude(a: &Array2<f64>, b: &Array2<f64>, extra: &Array2<f64>) -> f64 {
    let abs = a.mapv(f64::abs).dot(&b.mapv(f64::abs)) + extra.mapv(f64::abs);
    abs.iter().fold(0.0, |m, &v| m.max(v))
}

/// Tolerance of the twin against the exact (f64) product: it rounds each of the `K` products
/// and each of the `K + 2` additions (products, bias, old `C`) to f32, each off by at most
/// `u = 2^-24` of the magnitudes involved, so it is within `(2K + 2) · u · Σ|terms|` of the
/// exact value (the standard bound for recursive summation). An indexing mistake is off by
/// whole terms, orders of magnitude more.
fn tolerance(k: usize, magnitude: f64) -> f64 {
    (2 * k + 2) as f64 * 2f64.powi(-24) * magnitude
}

/// `C = op(A) · op(B)` for `M x N x K`, each operand at an offset with padded rows.
fn check_product(ta: bool, tb: bool, m: usize, n: usize, k: usize) {
    let (ar, ac) = if ta { (k, m) } else { (m, k) };
    let (br, bc) = if tb { (n, k) } else { (k, n) };
    let a = stored(ar, ac, 1, 3, 2, UNREAD);
    let b = stored(br, bc, 2, 5, 1, UNREAD);
    let c = stored(m, n, 3, 7, 3, UNTOUCHED);
    let a_layout = if ta { a.layout.t() } else { a.layout };
    let b_layout = if tb { b.layout.t() } else { b.layout };
    let spec = spec((m, n, k), a_layout, b_layout, c.layout);
    let out = run(&spec, &a.buf, &b.buf, &[], &c);

    let (op_a, op_b) = (op(&a, ta), op(&b, tb));
    let mut want = Array2::<f64>::zeros((m, n));
    general_mat_mul(1.0, &op_a, &op_b, 0.0, &mut want);
    let atol = tolerance(k, magnitude(&op_a, &op_b, &Array2::zeros((m, n))));
    assert_close(
        &format!("C, {m}x{n}x{k}, trans_a {ta}, trans_b {tb}"),
        c_matrix(&out, &spec.c, m, n).view().into_dyn(),
        want.view().into_dyn(),
        atol,
        0.0,
    );
}

/// Sizes below, at and above the kernel's 64 x 64 x 16 tile, and degenerate ones.
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (3, 5, 7),
    (64, 64, 16),
    (65, 67, 17),
    (1, 130, 33),
    (70, 1, 2),
];

#[test]
fn plain_product_matches_general_mat_mul() {
    for (m, n, k) in SHAPES {
        check_product(false, false, m, n, k);
    }
}

#[test]
fn product_with_a_transposed_matches_general_mat_mul() {
    for (m, n, k) in SHAPES {
        check_product(true, false, m, n, k);
    }
}

#[test]
fn product_with_b_transposed_matches_general_mat_mul() {
    for (m, n, k) in SHAPES {
        check_product(false, true, m, n, k);
    }
}

#[test]
fn product_with_both_transposed_matches_general_mat_mul() {
    for (m, n, k) in SHAPES {
        check_product(true, true, m, n, k);
    }
}

#[test]
fn one_by_one_by_one_product_is_the_single_product_exactly() {
    let one = MatrixLayout::new(0, 1);
    let spec = spec((1, 1, 1), one, one, one);
    let mut c = [0.0];
    matmul(&spec, &[0.3], &[-7.1], &[], &mut c).unwrap();
    assert_eq!(c[0].to_bits(), (0.3f32 * -7.1f32).to_bits());
}

#[test]
fn elements_of_c_outside_the_matrix_are_left_untouched() {
    let (m, n, k) = (5, 6, 4);
    let a = stored(m, k, 1, 0, 0, UNREAD);
    let b = stored(k, n, 2, 0, 0, UNREAD);
    let c = stored(m, n, 3, 9, 4, UNTOUCHED);
    let spec = spec((m, n, k), a.layout, b.layout, c.layout);
    let out = run(&spec, &a.buf, &b.buf, &[], &c);
    let inside: Vec<usize> = (0..m)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| spec.c.index(i, j))
        .collect();
    for (at, &v) in out.iter().enumerate() {
        if !inside.contains(&at) {
            assert_eq!(v, UNTOUCHED, "element {at} of C's buffer was written");
        }
    }
}

/// Rows `(r / group) · stride + r % group` of `values`, `rows` of them.
fn gather_rows(values: &Array2<f32>, rows: usize, group: usize, stride: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows, values.ncols()), |(r, c)| {
        f64::from(values[[(r / group) * stride + r % group, c]])
    })
}

#[test]
fn row_maps_read_the_remapped_rows_of_a_and_of_b() {
    // A: 3 groups of 2 rows out of every 5 stored rows; Bᵀ: 2 groups of 4 out of every 6.
    let (m, n, k) = (6, 8, 7);
    let a = stored(15, k, 1, 4, 1, UNREAD);
    let b = stored(12, k, 2, 2, 3, UNREAD);
    let c = stored(m, n, 3, 0, 0, UNTOUCHED);
    let (a_map, b_map) = (a.layout.rows(2, 5), b.layout.t().rows(4, 6));
    let spec = spec((m, n, k), a_map, b_map, c.layout);
    let out = run(&spec, &a.buf, &b.buf, &[], &c);

    let op_a = gather_rows(&a.values, m, 2, 5);
    let op_b = gather_rows(&b.values, n, 4, 6).t().to_owned();
    let mut want = Array2::<f64>::zeros((m, n));
    general_mat_mul(1.0, &op_a, &op_b, 0.0, &mut want);
    let atol = tolerance(k, magnitude(&op_a, &op_b, &Array2::zeros((m, n))));
    assert_close(
        "C",
        c_matrix(&out, &spec.c, m, n).view().into_dyn(),
        want.view().into_dyn(),
        atol,
        0.0,
    );
}

#[test]
fn row_map_pairs_each_step_with_the_previous_hidden_state() {
    // dW_hh = Σ_{b, t ≥ 1} dgates[b, t]ᵀ · h[b, t - 1] over [B, T, ·] tensors: rows b·T + t of
    // dgates for t ≥ 1 (offset one row, groups of T - 1 every T rows), rows b·T + t of h for
    // t < T - 1 (groups of T - 1 every T rows).
    let (batch, seq, gates, hidden) = (3, 5, 8, 4);
    let dgates = stored(batch * seq, gates, 1, 0, 0, UNREAD);
    let h = stored(batch * seq, hidden, 2, 0, 0, UNREAD);
    let c = stored(gates, hidden, 3, 0, 0, UNTOUCHED);
    let k = batch * (seq - 1);
    let dgates_from_t1 = MatrixLayout::new(gates, gates);
    let spec = spec(
        (gates, hidden, k),
        dgates_from_t1.t().rows(seq - 1, seq),
        h.layout.rows(seq - 1, seq),
        c.layout,
    );
    let out = run(&spec, &dgates.buf, &h.buf, &[], &c);

    // The sum of outer products dgates[b, t] ⊗ h[b, t - 1], and of their magnitudes.
    let mut want = Array2::<f64>::zeros((gates, hidden));
    let mut mag = Array2::<f64>::zeros((gates, hidden));
    for b in 0..batch {
        for t in 1..seq {
            let g = dgates.values.row(b * seq + t).mapv(f64::from);
            let g = g.insert_axis(Axis(1));
            let hp = h.values.row(b * seq + t - 1).mapv(f64::from);
            want += &(&g * &hp);
            mag += &(g.mapv(f64::abs) * hp.mapv(f64::abs));
        }
    }
    let atol = tolerance(k, mag.iter().fold(0.0, |m, &v| m.max(v)));
    assert_close(
        "dW_hh",
        c_matrix(&out, &spec.c, gates, hidden).view().into_dyn(),
        want.view().into_dyn(),
        atol,
        0.0,
    );
}

/// `C = op(A) · op(B) + bias (+ C)`, the bias at an offset in a longer buffer.
fn check_bias_and_accumulate(bias: bool, accumulate: bool) {
    let (m, n, k) = (9, 13, 6);
    let a = stored(m, k, 1, 0, 0, UNREAD);
    let b = stored(k, n, 2, 0, 0, UNREAD);
    let c = stored(m, n, 3, 2, 1, UNTOUCHED);
    let bias_values: Array1<f32> = random_array(n, 4, -1.0, 1.0);
    let bias_off = 3;
    let mut bias_buf = vec![UNREAD; bias_off + n + 2];
    bias_buf[bias_off..bias_off + n].copy_from_slice(bias_values.as_slice().unwrap());
    let spec = GemmSpec {
        bias: bias.then_some(bias_off),
        accumulate,
        ..spec((m, n, k), a.layout, b.layout, c.layout)
    };
    let bias_arg = if bias { &bias_buf[..] } else { &[] };
    let out = run(&spec, &a.buf, &b.buf, bias_arg, &c);

    let (op_a, op_b) = (op(&a, false), op(&b, false));
    let mut extra = Array2::<f64>::zeros((m, n));
    if bias {
        extra += &bias_values.mapv(f64::from);
    }
    if accumulate {
        extra += &c.values.mapv(f64::from);
    }
    let mut want = extra.clone();
    general_mat_mul(1.0, &op_a, &op_b, 1.0, &mut want);
    let atol = tolerance(k, magnitude(&op_a, &op_b, &extra));
    assert_close(
        &format!("C, bias {bias}, accumulate {accumulate}"),
        c_matrix(&out, &spec.c, m, n).view().into_dyn(),
        want.view().into_dyn(),
        atol,
        0.0,
    );
}

#[test]
fn bias_is_added_to_every_row() {
    check_bias_and_accumulate(true, false);
}

#[test]
fn accumulate_adds_the_product_to_the_old_c() {
    check_bias_and_accumulate(false, true);
}

#[test]
fn bias_and_accumulate_together_add_both() {
    check_bias_and_accumulate(true, true);
}

#[test]
fn empty_inner_dimension_gives_the_bias_plus_the_old_c() {
    let (m, n) = (2, 3);
    let c = stored(m, n, 3, 0, 0, UNTOUCHED);
    let bias = [0.5, -1.5, 2.0];
    let spec = GemmSpec {
        bias: Some(0),
        accumulate: true,
        ..spec(
            (m, n, 0),
            MatrixLayout::new(0, 0),
            MatrixLayout::new(0, n),
            c.layout,
        )
    };
    let out = run(&spec, &[], &[], &bias, &c);
    let want = Array2::from_shape_fn((m, n), |(i, j)| {
        f64::from((0.0f32 + bias[j]) + c.values[[i, j]])
    });
    assert_close(
        "C",
        c_matrix(&out, &spec.c, m, n).view().into_dyn(),
        want.view().into_dyn(),
        0.0,
        0.0,
    );
}

/// A valid `4 x 5 x 3` product, plain row-major operands with no padding.
fn small_spec() -> GemmSpec {
    spec(
        (4, 5, 3),
        MatrixLayout::new(0, 3),
        MatrixLayout::new(0, 5),
        MatrixLayout::new(0, 5),
    )
}

/// Runs `spec` on buffers of the given lengths, checking that it fails with `Error::Shape` for
/// `tensor` (needing `expected` elements, given `actual`) and leaves `C` as it was.
fn assert_shape_error(spec: GemmSpec, lens: [usize; 4], tensor: &str, expected: usize) {
    let [a_len, b_len, bias_len, c_len] = lens;
    let (a, b, bias) = (vec![1.0; a_len], vec![1.0; b_len], vec![1.0; bias_len]);
    let mut c = vec![UNTOUCHED; c_len];
    match matmul(&spec, &a, &b, &bias, &mut c) {
        Err(Error::Shape {
            tensor: t,
            expected: e,
            actual: got,
        }) => {
            let actual = lens[["GEMM A", "GEMM B", "GEMM bias", "GEMM C"]
                .iter()
                .position(|&n| n == tensor)
                .expect("a GEMM operand")];
            assert_eq!((t.as_str(), e, got), (tensor, vec![expected], vec![actual]));
        }
        other => panic!("expected a shape error for {tensor}, got {other:?}"),
    }
    assert!(c.iter().all(|&v| v == UNTOUCHED), "C was written");
}

#[test]
fn a_shorter_than_its_layout_is_a_shape_error() {
    assert_shape_error(small_spec(), [11, 15, 0, 20], "GEMM A", 12);
}

#[test]
fn b_shorter_than_its_layout_is_a_shape_error() {
    let spec = GemmSpec {
        b: MatrixLayout::new(2, 5).t(),
        ..small_spec()
    };
    // Bᵀ of a stored [5, 3] at offset 2 with ld 5: 2 + 4·5 + 3 elements.
    assert_shape_error(spec, [12, 24, 0, 20], "GEMM B", 25);
}

#[test]
fn c_shorter_than_its_layout_is_a_shape_error() {
    let spec = GemmSpec {
        c: MatrixLayout::new(1, 7),
        ..small_spec()
    };
    assert_shape_error(spec, [12, 15, 0, 26], "GEMM C", 27);
}

#[test]
fn a_bias_missing_from_its_buffer_is_a_shape_error() {
    let spec = GemmSpec {
        bias: Some(2),
        ..small_spec()
    };
    assert_shape_error(spec, [12, 15, 0, 20], "GEMM bias", 7);
}

#[test]
fn a_row_map_reaching_past_the_buffer_is_a_shape_error() {
    // Stored rows (r / 2)·5 + r % 2 for r < 4: the last one read is row 6.
    let spec = GemmSpec {
        a: MatrixLayout::new(0, 3).rows(2, 5),
        ..small_spec()
    };
    assert_shape_error(spec, [20, 15, 0, 20], "GEMM A", 21);
}

#[test]
fn a_row_map_with_overlapping_groups_is_bounds_checked_on_its_highest_row() {
    // Groups of 3 rows every 1 stored row, 4 rows: stored rows 0, 1, 2, 1; the highest is 2,
    // not the last one.
    let spec = GemmSpec {
        a: MatrixLayout::new(0, 3).rows(3, 1),
        ..small_spec()
    };
    assert_shape_error(spec, [8, 15, 0, 20], "GEMM A", 9);
}

/// Checks that `spec` fails with `Error::Config` about `what` and leaves `C` as it was.
fn assert_config_error(spec: GemmSpec, what: &str) {
    let mut c = vec![UNTOUCHED; 64];
    match matmul(&spec, &[1.0; 64], &[1.0; 64], &[1.0; 64], &mut c) {
        Err(Error::Config { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected a config error about {what}, got {other:?}"),
    }
    assert!(c.iter().all(|&v| v == UNTOUCHED), "C was written");
}

#[test]
fn transposed_c_is_a_config_error() {
    let spec = GemmSpec {
        c: MatrixLayout::new(0, 5).t(),
        ..small_spec()
    };
    assert_config_error(spec, "GEMM output");
}

#[test]
fn remapped_c_is_a_config_error() {
    let spec = GemmSpec {
        c: MatrixLayout::new(0, 5).rows(2, 3),
        ..small_spec()
    };
    assert_config_error(spec, "GEMM output");
}

#[test]
fn row_group_of_zero_rows_is_a_config_error() {
    let spec = GemmSpec {
        b: MatrixLayout::new(0, 5).rows(0, 1),
        ..small_spec()
    };
    assert_config_error(spec, "GEMM row map");
}

#[test]
fn unused_padding_of_a_and_b_is_never_read() {
    // The operands' padding holds NaN (see `stored`): any read of it would poison C.
    let (m, n, k) = (7, 9, 5);
    let a = stored(k, m, 1, 6, 5, UNREAD);
    let b = stored(n, k, 2, 4, 3, UNREAD);
    let c = stored(m, n, 3, 0, 0, UNTOUCHED);
    let spec = spec((m, n, k), a.layout.t(), b.layout.t(), c.layout);
    let out = run(&spec, &a.buf, &b.buf, &[], &c);
    let got = c_matrix(&out, &spec.c, m, n);
    if let Some((index, v)) = got.indexed_iter().find(|(_, v)| !v.is_finite()) {
        panic!("C{index:?} is {v}: padding was read");
    }
}
