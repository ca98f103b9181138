//! Every kernel's descriptor (src/gpu/kernels/) agrees with its WGSL, as naga reads it: the entry
//! point and its workgroup size, every binding's group, number and kind (uniform, read-only or
//! read-write storage, a read-only or write-only `rgba32float` storage texture), and the uniform
//! struct's size (the descriptor takes it from `size_of::<Params>()`). Changing either side
//! alone fails here.

use std::collections::BTreeMap;

use lstm_wgpu::gpu::kernels::{Access, Kernel, KernelDesc};
use naga::valid::{Capabilities, ValidationFlags, Validator};

/// What a binding is, as declared in the shader or implied by the descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uniform {
        size: u32,
    },
    Storage(Access),
    /// `texture_storage_2d<rgba32float, read>`.
    Texture,
    /// `texture_storage_2d<rgba32float, write>`.
    WrittenTexture,
}

fn parse(desc: &KernelDesc) -> naga::Module {
    let source = desc.source();
    let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| {
        panic!(
            "{}: does not parse:\n{}",
            desc.name,
            e.emit_to_string(&source)
        )
    });
    // The kernels that use subgroups compile only where wgpu's `SUBGROUP` feature is on.
    let mut validator = match desc.subgroups {
        true => Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP),
        false => Validator::new(ValidationFlags::all(), Capabilities::default()),
    };
    if desc.subgroups {
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    validator.validate(&module).unwrap_or_else(|e| {
        panic!(
            "{}: does not validate:\n{}",
            desc.name,
            e.emit_to_string(&source)
        )
    });
    module
}

/// `(group, binding) → kind` for every resource the shader declares.
fn shader_bindings(module: &naga::Module) -> BTreeMap<(u32, u32), Kind> {
    let mut out = BTreeMap::new();
    for (_, var) in module.global_variables.iter() {
        let Some(rb) = &var.binding else { continue };
        let kind = match var.space {
            naga::AddressSpace::Uniform => Kind::Uniform {
                size: module.types[var.ty].inner.size(module.to_ctx()),
            },
            naga::AddressSpace::Storage { access } => {
                let write = access.contains(naga::StorageAccess::STORE);
                Kind::Storage(if write {
                    Access::ReadWrite
                } else {
                    Access::Read
                })
            }
            naga::AddressSpace::Handle => match module.types[var.ty].inner {
                naga::TypeInner::Image {
                    dim: naga::ImageDimension::D2,
                    arrayed: false,
                    class:
                        naga::ImageClass::Storage {
                            format: naga::StorageFormat::Rgba32Float,
                            access,
                        },
                } if access == naga::StorageAccess::LOAD
                    || access == naga::StorageAccess::STORE =>
                {
                    match access == naga::StorageAccess::LOAD {
                        true => Kind::Texture,
                        false => Kind::WrittenTexture,
                    }
                }
                ref other => panic!("binding {rb:?} is an unexpected handle {other:?}"),
            },
            other => panic!("binding {rb:?} in unexpected address space {other:?}"),
        };
        out.insert((rb.group, rb.binding), kind);
    }
    out
}

/// The same map as the descriptor implies: the uniform at 0, storage from 1 on, then the
/// read-only textures, then the written ones, all in group 0.
fn descriptor_bindings(desc: &KernelDesc) -> BTreeMap<(u32, u32), Kind> {
    let mut out = BTreeMap::new();
    out.insert(
        (0, 0),
        Kind::Uniform {
            size: desc.uniform_size as u32,
        },
    );
    for (i, access) in desc.storage.iter().enumerate() {
        out.insert((0, i as u32 + 1), Kind::Storage(*access));
    }
    for i in 0..desc.textures + desc.written_textures {
        let kind = match i < desc.textures {
            true => Kind::Texture,
            false => Kind::WrittenTexture,
        };
        out.insert((0, desc.storage.len() as u32 + 1 + i), kind);
    }
    out
}

#[test]
fn every_binding_matches_its_descriptor_in_number_kind_and_access() {
    for kernel in Kernel::ALL {
        let desc = kernel.desc();
        let module = parse(desc);
        assert_eq!(
            shader_bindings(&module),
            descriptor_bindings(desc),
            "{kernel:?} ({}): shader bindings (left) differ from the descriptor (right)",
            desc.shader()
        );
    }
}

#[test]
fn every_uniform_is_as_large_as_its_rust_params_struct() {
    // Also covered by the binding map above; stated on its own so a size mismatch is named.
    for kernel in Kernel::ALL {
        let desc = kernel.desc();
        let module = parse(desc);
        let sizes: Vec<u32> = shader_bindings(&module)
            .values()
            .filter_map(|k| match k {
                Kind::Uniform { size } => Some(*size),
                _ => None,
            })
            .collect();
        assert_eq!(
            sizes,
            [desc.uniform_size as u32],
            "{kernel:?}: WGSL uniform size vs size_of::<Params>()"
        );
    }
}

#[test]
fn every_entry_point_exists_with_the_descriptors_workgroup_size() {
    for kernel in Kernel::ALL {
        let desc = kernel.desc();
        let module = parse(desc);
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == desc.entry)
            .unwrap_or_else(|| panic!("{kernel:?}: no entry point `{}`", desc.entry));
        assert_eq!(entry.stage, naga::ShaderStage::Compute, "{kernel:?}");
        assert_eq!(
            entry.workgroup_size, desc.workgroup_size,
            "{kernel:?}: @workgroup_size vs the descriptor"
        );
    }
}

#[test]
fn every_shader_file_belongs_to_a_kernel_and_every_kernel_has_its_own_name() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let used: Vec<&str> = Kernel::ALL
        .iter()
        .flat_map(|k| k.desc().files.iter().map(|f| f.0))
        .collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            used.contains(&name.as_str()),
            "shaders/{name} is used by no kernel"
        );
    }
    let mut names: Vec<&str> = Kernel::ALL.iter().map(|k| k.desc().name).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        Kernel::ALL.len(),
        "kernel names repeat: {names:?}"
    );
}

#[test]
fn a_descriptor_that_disagrees_with_its_shader_is_caught() {
    // The checks above can fail: flip one access and shrink the uniform of a real descriptor.
    let real = Kernel::Matmul.desc();
    let module = parse(real);
    let mut storage = real.storage.to_vec();
    storage[0] = Access::ReadWrite;
    let storage: &'static [Access] = storage.leak();
    let wrong = KernelDesc {
        storage,
        uniform_size: real.uniform_size - 4,
        ..*real
    };
    let (shader, implied) = (shader_bindings(&module), descriptor_bindings(&wrong));
    assert_ne!(shader, implied);
    assert_ne!(shader[&(0, 0)], implied[&(0, 0)], "uniform size");
    assert_ne!(shader[&(0, 1)], implied[&(0, 1)], "access of binding 1");
}
