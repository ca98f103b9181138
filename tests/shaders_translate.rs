//! Every shader parses and validates with naga and translates to SPIR-V (Vulkan), MSL (Metal),
//! HLSL (DX12) and GLSL (OpenGL, GLES), so the backends CI cannot run are still covered at the
//! shader level; the SPIR-V and the GLSL also pass the platforms' own validators (`spirv-val`,
//! `glslangValidator`).

use lstm_wgpu::gpu::shader_sources;
use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn module(name: &str, source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}.wgsl does not parse:\n{}", e.emit_to_string(source)));
    // Default capabilities: what every WebGPU implementation offers; subgroups in compute
    // shaders for the kernels that use them, which only devices with wgpu's `SUBGROUP` feature
    // compile.
    let mut validator = Validator::new(ValidationFlags::all(), capabilities(source));
    if uses_subgroups(source) {
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    let info = validator.validate(&module).unwrap_or_else(|e| {
        panic!(
            "{name}.wgsl does not validate:\n{}",
            e.emit_to_string(source)
        )
    });
    (module, info)
}

/// Whether a shader uses subgroup operations or builtins.
fn uses_subgroups(source: &str) -> bool {
    source.contains("subgroup")
}

fn capabilities(source: &str) -> Capabilities {
    match uses_subgroups(source) {
        true => Capabilities::SUBGROUP,
        false => Capabilities::default(),
    }
}

/// SPIR-V 1.3 (Vulkan 1.1) where a shader uses subgroups, which that version introduced.
fn spv_options(source: &str) -> spv::Options<'static> {
    match uses_subgroups(source) {
        true => spv::Options {
            lang_version: (1, 3),
            ..Default::default()
        },
        false => spv::Options::default(),
    }
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
        let words = spv::write_vec(&module, &info, &spv_options(&source), None)
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
        // Metal's SIMD-group functions need MSL 2.1 or later (wgpu asks for subgroups on
        // Metal 2.4 devices).
        let options = msl::Options {
            lang_version: if uses_subgroups(&source) {
                (2, 4)
            } else {
                (2, 0)
            },
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
        // Wave intrinsics (subgroups) need shader model 6.0.
        let options = match uses_subgroups(&source) {
            true => hlsl::Options {
                shader_model: hlsl::ShaderModel::V6_0,
                ..Default::default()
            },
            false => hlsl::Options::default(),
        };
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

/// A scratch file for a validator, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str, bytes: &[u8]) -> Scratch {
        let dir = std::env::temp_dir().join(format!("lstm-wgpu-shaders-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs a platform validator (installed by `.ci/test`: spirv-tools, glslang-tools) on `file`.
fn validate_with(tool: &str, args: &[&str], file: &Scratch, what: &str) {
    let out = std::process::Command::new(tool)
        .args(args)
        .arg(&file.0)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed to check {what} ({e}); .ci/test installs it"));
    assert!(
        out.status.success(),
        "{tool} rejects {what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_shader_passes_the_vulkan_spirv_validator() {
    for (name, source) in shader_sources() {
        let (module, info) = module(name, &source);
        let words = spv::write_vec(&module, &info, &spv_options(&source), None)
            .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
        let file = Scratch::new(&format!("{name}.spv"), bytemuck_words(&words).as_slice());
        validate_with(
            "spirv-val",
            &["--target-env", "vulkan1.1"],
            &file,
            &format!("{name}.spv"),
        );
    }
}

fn bytemuck_words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn every_kernel_translates_to_glsl_that_glslang_accepts() {
    // GLSL has one entry point per translation: one per kernel (grad_norm has two), for desktop
    // GL 4.3 and for GLES 3.1 (what wgpu's GL backend runs compute shaders on).
    let versions = [
        naga::back::glsl::Version::Desktop(430),
        naga::back::glsl::Version::new_gles(310),
    ];
    for (kernel, version) in lstm_wgpu::gpu::kernels::Kernel::ALL
        .into_iter()
        .flat_map(|k| versions.map(|v| (k, v)))
    {
        let desc = kernel.desc();
        let source = desc.source();
        let (module, info) = module(desc.name, &source);
        let options = naga::back::glsl::Options {
            version,
            ..Default::default()
        };
        let pipeline = naga::back::glsl::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: desc.entry.to_string(),
            multiview: None,
        };
        let mut text = String::new();
        naga::back::glsl::Writer::new(
            &mut text,
            &module,
            &info,
            &options,
            &pipeline,
            naga::proc::BoundsCheckPolicies::default(),
        )
        .and_then(|mut w| w.write())
        .unwrap_or_else(|e| panic!("{}: GLSL: {e}", desc.name));
        assert!(
            text.contains("layout(local_size_x"),
            "{}: no compute layout",
            desc.name
        );
        let file = Scratch::new(&format!("{}.comp", desc.name), text.as_bytes());
        validate_with(
            "glslangValidator",
            &[],
            &file,
            &format!("{}.comp", desc.name),
        );
    }
}

#[test]
fn the_platform_validators_reject_broken_shaders() {
    // The two checks above can fail: each validator refuses a damaged translation.
    let (module, info) = module("matmul", &shader_sources()[0].1);
    let mut words = spv::write_vec(&module, &info, &spv::Options::default(), None).unwrap();
    words.truncate(words.len() / 2);
    let spv = Scratch::new("broken.spv", &bytemuck_words(&words));
    let out = std::process::Command::new("spirv-val")
        .arg(&spv.0)
        .output()
        .unwrap();
    assert!(!out.status.success(), "spirv-val accepted half a module");
    let glsl = Scratch::new(
        "broken.comp",
        b"#version 430\nlayout(local_size_x = 1) in;\nvoid main() { undeclared = 1; }\n",
    );
    let out = std::process::Command::new("glslangValidator")
        .arg(&glsl.0)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "glslangValidator accepted an undeclared variable"
    );
}
