//! The CPU step twins, and the CPU forward pass around them, compute the same results whatever
//! the strides of the views they are given (column-major, every other column), bit for bit
//! equal to row-major views.

use lstm_wgpu::cpu::lstm::forward;
use lstm_wgpu::cpu::lstm_backward_step::{FromLater, lstm_backward_step};
use lstm_wgpu::cpu::lstm_forward_step::lstm_forward_step;
use lstm_wgpu::ndarray::{Array1, Array2, Array3, ArrayView3, ArrayViewMut2, ShapeBuilder, s};
use lstm_wgpu::{LstmConfig, LstmWeights};

/// `[rows, cols]` filled with distinct values, row-major.
fn ramp(rows: usize, cols: usize, scale: f32) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        scale * ((r * cols + c) as f32 * 0.37).sin()
    })
}

/// The same values as `a`, stored column-major.
fn column_major(a: &Array2<f32>) -> Array2<f32> {
    let mut f = Array2::zeros(a.raw_dim().f());
    f.assign(a);
    f
}

#[test]
fn forward_step_writes_column_major_and_strided_outputs() {
    let (b, h) = (3, 5);
    let (xproj, h_prev, c_prev) = (ramp(b, 4 * h, 2.0), ramp(b, h, 1.0), ramp(b, h, 1.5));
    let (w_hh, b_hh) = (ramp(4 * h, h, 0.5), Array1::from_elem(4 * h, 0.1));
    let run = |gates: &mut Array2<f32>, c: &mut Array2<f32>, out: &mut Array2<f32>| {
        let (xproj, h_prev, c_prev) = (column_major(&xproj), h_prev.t(), c_prev.view());
        lstm_forward_step(
            xproj.view(),
            h_prev.t(),
            c_prev,
            w_hh.view(),
            b_hh.view(),
            gates.view_mut(),
            c.view_mut(),
            out.slice_mut(s![.., ..;2]),
        );
    };
    let (mut g, mut c, mut h2) = (
        Array2::zeros((b, 4 * h)),
        Array2::zeros((b, h)),
        Array2::zeros((b, 2 * h)),
    );
    run(&mut g, &mut c, &mut h2);
    let (mut g_f, mut c_f, mut h2_f) = (
        Array2::zeros((b, 4 * h).f()),
        Array2::zeros((b, h).f()),
        Array2::zeros((b, 2 * h).f()),
    );
    run(&mut g_f, &mut c_f, &mut h2_f);
    // Row-major reference: every view standard.
    let (mut g_r, mut c_r, mut h_r) = (
        Array2::zeros((b, 4 * h)),
        Array2::zeros((b, h)),
        Array2::zeros((b, h)),
    );
    lstm_forward_step(
        xproj.view(),
        h_prev.view(),
        c_prev.view(),
        w_hh.view(),
        b_hh.view(),
        g_r.view_mut(),
        c_r.view_mut(),
        h_r.view_mut(),
    );
    assert!(h_r.iter().any(|&v| v != 0.0), "the reference did the work");
    for (g, c, h2) in [(&g, &c, &h2), (&g_f, &c_f, &h2_f)] {
        assert_eq!(g, &g_r);
        assert_eq!(c, &c_r);
        assert_eq!(h2.slice(s![.., ..;2]), h_r);
    }
}

#[test]
fn backward_step_writes_column_major_and_strided_outputs() {
    let (b, h) = (3, 5);
    let (dy, dh_n) = (ramp(b, h, 1.0), ramp(b, h, -0.7));
    let (gates, c_t, c_prev) = (ramp(b, 4 * h, 0.9), ramp(b, h, 1.2), ramp(b, h, -1.1));
    let dc_n = ramp(b, h, 0.3);
    let step = |dc: ArrayViewMut2<'_, f32>, dgates: ArrayViewMut2<'_, f32>| {
        lstm_backward_step(
            dy.view(),
            FromLater::Last { dh_n: dh_n.view() },
            gates.view(),
            c_t.view(),
            c_prev.view(),
            dc,
            dgates,
        )
    };
    let (mut dc_r, mut dg_r) = (dc_n.clone(), Array2::zeros((b, 4 * h)));
    step(dc_r.view_mut(), dg_r.view_mut());
    assert!(dg_r.iter().any(|&v| v != 0.0), "the reference did the work");

    let (mut dc_f, mut dg_f) = (column_major(&dc_n), Array2::zeros((b, 4 * h).f()));
    step(dc_f.view_mut(), dg_f.view_mut());
    assert_eq!(dc_f, dc_r);
    assert_eq!(dg_f, dg_r);

    let mut dc_s = Array2::zeros((b, 2 * h));
    dc_s.slice_mut(s![.., ..;2]).assign(&dc_n);
    let mut dg_s = Array2::zeros((b, 8 * h));
    step(dc_s.slice_mut(s![.., ..;2]), dg_s.slice_mut(s![.., ..;2]));
    assert_eq!(dc_s.slice(s![.., ..;2]), dc_r);
    assert_eq!(dg_s.slice(s![.., ..;2]), dg_r);
}

/// The first index where `a` and `b` differ in their bits, with both values.
fn first_difference(a: &Array3<f32>, b: &Array3<f32>) -> Option<((usize, usize, usize), f32, f32)> {
    a.indexed_iter()
        .zip(b.iter())
        .find(|((_, x), y)| x.to_bits() != y.to_bits())
        .map(|((i, &x), &y)| (i, x, y))
}

#[test]
fn forward_reads_inputs_of_any_layout_with_the_bits_of_a_row_major_one() {
    // Batches of 8 read each step's inputs in place; batches of 3 first copy a window of them
    // (they project it in one product): both ways, from every layout.
    for (b, t, i, h) in [(8, 5, 6, 32), (3, 5, 6, 32)] {
        let w = LstmWeights::<f32>::init_uniform(LstmConfig::new(i, h, 2).unwrap(), 3);
        let x = Array3::from_shape_fn((b, t, i), |(r, s, c)| {
            ((r * 31 + s * 7 + c) as f32 * 0.29).sin()
        });
        let expected = forward(&w, x.view(), None).unwrap();
        // Stored time-major, viewed batch-major.
        let mut time_major = Array3::zeros((t, b, i));
        time_major.assign(&x.view().permuted_axes([1, 0, 2]));
        // Every other feature of a wider array.
        let mut wide = Array3::zeros((b, t, 2 * i));
        wide.slice_mut(s![.., .., ..;2]).assign(&x);
        // Features stored in reverse (a negative stride).
        let mut reversed = x.clone();
        reversed.invert_axis(lstm_wgpu::ndarray::Axis(2));
        let reversed_storage = reversed.as_standard_layout().to_owned();
        let views: [(&str, ArrayView3<'_, f32>); 3] = [
            ("time-major", time_major.view().permuted_axes([1, 0, 2])),
            ("every other column", wide.slice(s![.., .., ..;2])),
            (
                "reversed features",
                reversed_storage.slice(s![.., .., ..;-1]),
            ),
        ];
        for (name, view) in views {
            assert_eq!(view, x.view(), "{name}: the view must hold x");
            let got = forward(&w, view, None).unwrap();
            for (what, a, e) in [
                ("y", &got.y, &expected.y),
                ("h_n", &got.h_n, &expected.h_n),
                ("c_n", &got.c_n, &expected.c_n),
            ] {
                if let Some((index, got, want)) = first_difference(a, e) {
                    panic!("B{b} {name}: {what}{index:?} is {got}, row-major input gave {want}");
                }
            }
        }
    }
}
