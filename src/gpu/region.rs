//! A tensor inside a GPU buffer: `len` f32 values from element `offset`.

/// `len` f32 values of `buffer` from element `offset`.
#[derive(Clone, Copy)]
pub(crate) struct Region<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: usize,
    pub len: usize,
}

impl<'a> Region<'a> {
    /// The whole of `buffer`'s first `len` values.
    pub(crate) fn whole(buffer: &'a wgpu::Buffer, len: usize) -> Self {
        Region {
            buffer,
            offset: 0,
            len,
        }
    }
}
