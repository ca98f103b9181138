//! The contract of one matrix product, shared by the kernel `shaders/matmul.wgsl` and its CPU twin
//! [`crate::cpu::matmul`]: both take a [`GemmSpec`] and compute, for `m < M`, `n < N`,
//!
//! ```text
//! C[m, n] = Σ_k op(A)[m, k] · op(B)[k, n]   (+ bias[n])   (+ C[m, n])
//! ```
//!
//! `op(A)` is `A` `[M, K]` or, transposed, `Aᵀ` of a stored `[K, M]`; likewise `op(B)` is `B`
//! `[K, N]` or `Bᵀ` of a stored `[N, K]`. Every matrix is row-major inside a flat buffer, at its
//! own element offset with its own leading dimension, so one buffer (a parameter arena, a
//! `[2, L, B, H]` state) can hold many tensors. A stored row index `r` of `A` or `B` may be
//! remapped to `(r / group) · stride + r % group` ([`RowMap`]): that reads rows `b·T + t` of a
//! `[B, T, ·]` tensor for `t < T - 1` only, which is how `dW_hh = Σ_t dgates_tᵀ · h_{t-1}` pairs
//! each step with the previous step's hidden state without a copy.

use crate::error::{Error, Result};
use crate::shape::expect_len;

/// Stored row `r` is read from row `(r / group) · stride + r % group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowMap {
    /// Rows per group (at least 1).
    pub group: usize,
    /// Stored rows between the starts of consecutive groups.
    pub stride: usize,
}

/// Where one operand sits in its buffer and how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixLayout {
    /// Element offset of stored row 0.
    pub offset: usize,
    /// Leading dimension: elements from one stored row to the next.
    pub ld: usize,
    /// Read the stored matrix transposed.
    pub transposed: bool,
    /// Remapping of stored row indices; `None` is the identity.
    pub row_map: Option<RowMap>,
}

impl MatrixLayout {
    /// A plain row-major matrix at element `offset` with leading dimension `ld`.
    pub fn new(offset: usize, ld: usize) -> Self {
        MatrixLayout {
            offset,
            ld,
            transposed: false,
            row_map: None,
        }
    }

    /// The same matrix, read transposed.
    pub fn t(mut self) -> Self {
        self.transposed = true;
        self
    }

    /// The same matrix with stored row `r` read from row `(r / group) · stride + r % group`.
    pub fn rows(mut self, group: usize, stride: usize) -> Self {
        self.row_map = Some(RowMap { group, stride });
        self
    }

    /// The stored row that row index `r` reads.
    pub fn stored_row(&self, r: usize) -> usize {
        match self.row_map {
            None => r,
            Some(RowMap { group, stride }) => (r / group) * stride + r % group,
        }
    }

    /// Element index of `op(M)[i, j]`.
    pub fn index(&self, i: usize, j: usize) -> usize {
        let (row, col) = if self.transposed { (j, i) } else { (i, j) };
        self.offset + self.stored_row(row) * self.ld + col
    }

    /// Elements a buffer must hold for an `op(M)` of `rows x cols` (0 when it is empty).
    fn required_len(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            return 0;
        }
        let (stored_rows, stored_cols) = if self.transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        self.offset + self.highest_stored_row(stored_rows) * self.ld + stored_cols
    }

    /// The highest stored row read by row indices `0..rows` (`rows >= 1`). Within a group the
    /// stored rows rise with `r`, and group `q`'s rows start at `q · stride`, so the highest is
    /// the last row's or, when groups overlap (`stride < group`), the end of the last full
    /// group before it.
    fn highest_stored_row(&self, rows: usize) -> usize {
        let last = self.stored_row(rows - 1);
        match self.row_map {
            Some(RowMap { group, .. }) if group > 0 && rows > group => {
                let end_of_previous_group = ((rows - 1) / group) * group - 1;
                last.max(self.stored_row(end_of_previous_group))
            }
            _ => last,
        }
    }
}

/// One matrix product: sizes, operand layouts, optional bias, and whether `C` is added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmSpec {
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// Layout of `A`.
    pub a: MatrixLayout,
    /// Layout of `B`.
    pub b: MatrixLayout,
    /// Layout of `C` (never transposed or remapped).
    pub c: MatrixLayout,
    /// Element offset of a `[N]` bias added to every row, if any.
    pub bias: Option<usize>,
    /// Add the product to `C` instead of overwriting it.
    pub accumulate: bool,
}

impl GemmSpec {
    /// Checks the layouts and that buffers of the given lengths (in elements) hold every element
    /// the product reads or writes.
    pub fn check(&self, a_len: usize, b_len: usize, bias_len: usize, c_len: usize) -> Result<()> {
        if self.c.transposed || self.c.row_map.is_some() {
            return Err(Error::config(
                "GEMM output",
                "C cannot be transposed or remapped",
            ));
        }
        for (name, layout) in [("A", &self.a), ("B", &self.b)] {
            if layout.row_map.is_some_and(|r| r.group == 0) {
                return Err(Error::config(
                    "GEMM row map",
                    format!("{name}: group of 0 rows"),
                ));
            }
        }
        if self.m > 1 && self.c.ld < self.n {
            // Rows of C would overlap, and the result depend on which write lands last.
            return Err(Error::config(
                "GEMM output",
                format!(
                    "C's leading dimension {} is below its {} columns",
                    self.c.ld, self.n
                ),
            ));
        }
        let bias_need = self.bias.map_or(0, |off| off + self.n);
        expect_len("GEMM A", self.a.required_len(self.m, self.k), a_len)?;
        expect_len("GEMM B", self.b.required_len(self.k, self.n), b_len)?;
        expect_len("GEMM bias", bias_need, bias_len)?;
        expect_len("GEMM C", self.c.required_len(self.m, self.n), c_len)
    }
}

impl GemmSpec {
    /// `C = op(A) · op(B)` with `op(A)` `[m, k]`, `op(B)` `[k, n]`: no bias, `C` overwritten.
    pub fn new(
        (m, n, k): (usize, usize, usize),
        a: MatrixLayout,
        b: MatrixLayout,
        c: MatrixLayout,
    ) -> Self {
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

    /// The same product, adding the bias at element `offset` to every row.
    pub fn with_bias(mut self, offset: usize) -> Self {
        self.bias = Some(offset);
        self
    }

    /// The same product, added to `C` when `on`.
    pub fn accumulating(mut self, on: bool) -> Self {
        self.accumulate = on;
        self
    }
}
