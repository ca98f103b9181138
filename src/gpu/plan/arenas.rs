//! The arenas a trainer keeps on the GPU, all laid out alike (see `gpu::layout`): parameters,
//! gradients, the optimizer's moments, and the clipping result `[norm, scale]`. Plans bind the
//! buffers; owners move whole arena images in and out through [`Arenas::upload`] and
//! [`Arenas::read`].

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::kernels::grad_norm;
use crate::gpu::readback::read_buffer_async;
use crate::gpu::stats::Counters;

/// One of the arenas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arena {
    Params,
    Grads,
    /// Optimizer moment `i` (`Optimizer::moment_names` order).
    Moment(usize),
}

/// The training arenas (`len` floats each).
pub(crate) struct Arenas {
    pub(super) params: wgpu::Buffer,
    pub(super) grads: wgpu::Buffer,
    pub(super) moments: Vec<wgpu::Buffer>,
    /// `[norm, scale]`; scale stays 1 without clipping.
    pub(super) clip: wgpu::Buffer,
    /// Per-workgroup partial sums of the norm.
    pub(super) partials: wgpu::Buffer,
    pub(super) len: usize,
}

impl Arenas {
    /// Allocates the arenas for `len` floats and `moments` optimizer moments; sets the clipping
    /// scale to 1.
    pub(crate) fn new(gpu: &Gpu, counters: &Counters, len: usize, moments: usize) -> Result<Self> {
        use wgpu::BufferUsages as U;
        let arena = |name: &str| gpu.storage(name, len, U::COPY_DST | U::COPY_SRC);
        let arenas = Arenas {
            params: arena("parameters")?,
            grads: arena("gradients")?,
            moments: (0..moments)
                .map(|_| arena("optimizer state"))
                .collect::<Result<_>>()?,
            clip: gpu.storage("clip", 2, U::COPY_DST | U::COPY_SRC)?,
            partials: gpu.storage("norm partials", grad_norm::GROUPS, U::empty())?,
            len,
        };
        gpu.write(
            &arenas.clip,
            0,
            bytemuck::cast_slice(&[0.0f32, 1.0]),
            counters,
        );
        Ok(arenas)
    }

    fn buffer(&self, which: Arena) -> Result<&wgpu::Buffer> {
        match which {
            Arena::Params => Ok(&self.params),
            Arena::Grads => Ok(&self.grads),
            Arena::Moment(i) => self.moments.get(i).ok_or_else(|| {
                let n = self.moments.len();
                Error::config("optimizer state", format!("moment {i} of {n}"))
            }),
        }
    }

    /// Uploads a whole arena image (`len` floats; lands before the next submit).
    pub(crate) fn upload(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        which: Arena,
        image: &[f32],
    ) -> Result<()> {
        crate::shape::expect_shape("arena image", &[image.len()], &[self.len])?;
        gpu.write(
            self.buffer(which)?,
            0,
            bytemuck::cast_slice(image),
            counters,
        );
        Ok(())
    }

    /// Reads a whole arena image back (one submit, one mapping), waiting without blocking.
    pub(crate) async fn read_async(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        which: Arena,
    ) -> Result<Vec<f32>> {
        read_buffer_async(gpu, self.buffer(which)?, self.len, counters).await
    }

    /// Optimizer moments held.
    pub(crate) fn moments(&self) -> usize {
        self.moments.len()
    }
}
