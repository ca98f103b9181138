//! What the benches share.

use lstm_wgpu::gpu::Gpu;

/// The GPU from the environment, named on stderr; `None` (GPU benches skipped) without one.
pub fn gpu() -> Option<Gpu> {
    match Gpu::from_env() {
        Ok(g) => {
            eprintln!("GPU adapter: {}", g.describe());
            Some(g)
        }
        Err(e) => {
            eprintln!("no GPU adapter, GPU benches skipped: {e}");
            None
        }
    }
}
