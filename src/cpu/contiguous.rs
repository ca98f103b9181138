//! Running slice loops on ndarray views of any memory layout.
//!
//! The step kernels' inner loops work on row-major slices. Every view the crate passes them is
//! row-major already, but a caller may pass any strides (a column-major array, a transposed one,
//! every other column of a wider one). [`with_row_major`] gives the loops row-major slices in
//! every case, so no layout makes them skip their work: a view in standard layout is used in
//! place, any other is copied to a row-major temporary, and the temporaries of outputs are
//! written back afterwards.

use ndarray::{Array, ArrayView, ArrayViewMut, CowArray, Dimension};

/// Runs `f` on the row-major contents of `inputs` and `outputs` (each in the order given, each
/// slice holding its view's elements in row-major order), then writes back any output that had
/// to be copied. Returns what `f` returns.
pub(crate) fn with_row_major<F, D, T, const R: usize, const W: usize>(
    inputs: [ArrayView<'_, F, D>; R],
    mut outputs: [ArrayViewMut<'_, F, D>; W],
    f: impl FnOnce([&[F]; R], [&mut [F]; W]) -> T,
) -> T
where
    F: Clone,
    D: Dimension,
{
    // `as_standard_layout` borrows a view in standard layout and copies any other.
    let inputs: [CowArray<'_, F, D>; R] = inputs.each_ref().map(|v| v.as_standard_layout());
    let in_slices: [&[F]; R] = std::array::from_fn(|i| {
        inputs[i]
            .as_slice()
            .expect("an array in standard layout is one slice")
    });
    let mut copies: [Option<Array<F, D>>; W] = std::array::from_fn(|i| {
        let view = &outputs[i];
        (!view.is_standard_layout()).then(|| row_major_copy(view.view()))
    });
    let mut slots = outputs
        .iter_mut()
        .zip(copies.iter_mut())
        .map(|(view, copy)| match copy {
            Some(copy) => copy.as_slice_mut(),
            None => view.as_slice_mut(),
        });
    let out_slices: [&mut [F]; W] = std::array::from_fn(|_| {
        slots
            .next()
            .flatten()
            .expect("an array in standard layout is one slice")
    });
    let result = f(in_slices, out_slices);
    for (view, copy) in outputs.iter_mut().zip(copies) {
        if let Some(copy) = copy {
            view.assign(&copy);
        }
    }
    result
}

/// A copy of `view` in standard (row-major) layout, whatever the view's strides.
fn row_major_copy<F: Clone, D: Dimension>(view: ArrayView<'_, F, D>) -> Array<F, D> {
    Array::from_shape_vec(view.raw_dim(), view.iter().cloned().collect())
        .expect("as many elements as the shape holds, in logical order")
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2, ArrayViewMut2, ShapeBuilder, s};

    use super::with_row_major;
    use crate::cpu::lstm_backward_step::{FromLater, lstm_backward_step};
    use crate::cpu::lstm_forward_step::lstm_forward_step;

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
    fn slices_are_row_major_whatever_the_views_strides() {
        let a = ramp(3, 4, 1.0);
        let a_f = column_major(&a);
        let mut out = Array2::<f32>::zeros((4, 6));
        with_row_major(
            [a_f.view(), a.t()],
            [out.slice_mut(s![.., ..;2])],
            |[a, at], [o]| {
                assert_eq!(a, ramp(3, 4, 1.0).as_slice().unwrap());
                assert_eq!(at, a_f.t().as_standard_layout().as_slice().unwrap());
                o.copy_from_slice(at);
            },
        );
        assert_eq!(out.slice(s![.., ..;2]), a.t());
        assert!(out.slice(s![.., 1..;2]).iter().all(|&v| v == 0.0));
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
}
