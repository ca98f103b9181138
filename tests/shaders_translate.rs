//! Every shader parses and validates with naga and translates to SPIR-V (Vulkan), MSL (Metal) and
//! HLSL (DX12), so the backends CI cannot run are still covered at the shader level.

use lstm_wgpu::gpu::shader_sources;
use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn module(name: &str, source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}.wgsl does not parse:\n{}", e.emit_to_string(source)));
    // Default capabilities: what every WebGPU implementation offers.
    let info = Validator::new(ValidationFlags::all(), Capabilities::default())
        .validate(&module)
        .unwrap_or_else(|e| {
            panic!(
                "{name}.wgsl does not validate:\n{}",
                e.emit_to_string(source)
            )
        });
    (module, info)
}

#[test]
fn the_crate_has_shaders_to_check() {
    let names: Vec<_> = shader_sources().into_iter().map(|(n, _)| n).collect();
    for expected in [
        "matmul",
        "lstm_forward_step",
        "lstm_backward_step",
        "column_sum",
        "cross_entropy",
        "grad_norm",
        "adam",
        "sgd",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn every_shader_validates_and_translates_to_spirv() {
    for (name, source) in shader_sources() {
        let (module, info) = module(name, &source);
        let words = spv::write_vec(&module, &info, &spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
        assert_eq!(
            words.first(),
            Some(&0x0723_0203),
            "{name}: SPIR-V magic number"
        );
    }
}

#[test]
fn every_shader_translates_to_metal_shading_language() {
    for (name, source) in shader_sources() {
        let (module, info) = module(name, &source);
        let options = msl::Options {
            lang_version: (2, 0),
            ..Default::default()
        };
        let (text, _) =
            msl::write_string(&module, &info, &options, &msl::PipelineOptions::default())
                .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));
        assert!(
            text.contains("kernel void"),
            "{name}: no compute kernel in the MSL output"
        );
    }
}

#[test]
fn every_shader_translates_to_hlsl() {
    for (name, source) in shader_sources() {
        let (module, info) = module(name, &source);
        let mut text = String::new();
        let options = hlsl::Options::default();
        let pipeline = hlsl::PipelineOptions::default();
        hlsl::Writer::new(&mut text, &options, &pipeline)
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
        assert!(
            text.contains("[numthreads("),
            "{name}: no compute entry point in the HLSL output"
        );
    }
}
