//! Copying results into one staging buffer inside the command encoder, then reading them all
//! back with a single mapping.

use crate::error::Result;
use crate::gpu::context::Gpu;
use crate::gpu::region::Region;
use crate::gpu::stats::Counters;

/// A list of regions to read back together.
#[derive(Default)]
pub(crate) struct ReadPlan<'a> {
    parts: Vec<Region<'a>>,
}

impl<'a> ReadPlan<'a> {
    pub(crate) fn new() -> Self {
        ReadPlan { parts: Vec::new() }
    }

    /// Adds a region (read back after the ones added before it).
    pub(crate) fn add(&mut self, region: Region<'a>) {
        self.parts.push(region);
    }

    /// Total f32 values.
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len).sum()
    }

    /// Records the copies into `staging`, back to back.
    pub(crate) fn record(&self, encoder: &mut wgpu::CommandEncoder, staging: &wgpu::Buffer) {
        let mut at = 0u64;
        for &Region {
            buffer,
            offset,
            len,
        } in &self.parts
        {
            if len > 0 {
                encoder.copy_buffer_to_buffer(
                    buffer,
                    offset as u64 * 4,
                    staging,
                    at,
                    len as u64 * 4,
                );
            }
            at += len as u64 * 4;
        }
    }

    /// After the submit: maps `staging` once and splits it into the parts, in order.
    pub(crate) fn read(
        &self,
        gpu: &Gpu,
        staging: &wgpu::Buffer,
        counters: &Counters,
    ) -> Result<Vec<Vec<f32>>> {
        crate::gpu::mapping::block_on(self.read_async(gpu, staging, counters))
    }

    /// As [`Self::read`], waiting for the mapping without blocking the thread.
    pub(crate) async fn read_async(
        &self,
        gpu: &Gpu,
        staging: &wgpu::Buffer,
        counters: &Counters,
    ) -> Result<Vec<Vec<f32>>> {
        let all = gpu
            .read_staging_async(staging, self.len(), counters)
            .await?;
        let mut out = Vec::with_capacity(self.parts.len());
        let mut at = 0;
        for part in &self.parts {
            out.push(all[at..at + part.len].to_vec());
            at += part.len;
        }
        Ok(out)
    }
}

/// Reads `len` f32 values of `buffer` from the start: one copy, one submit, one mapping, waited
/// for without blocking the thread.
pub(crate) async fn read_buffer_async(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    len: usize,
    counters: &Counters,
) -> Result<Vec<f32>> {
    let staging = gpu.staging("readback", len)?;
    let mut plan = ReadPlan::new();
    plan.add(Region::whole(buffer, len));
    gpu.catch("reading a buffer back", || {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        plan.record(&mut encoder, &staging);
        gpu.submit(encoder, counters);
    })?;
    Ok(plan.read_async(gpu, &staging, counters).await?.remove(0))
}
