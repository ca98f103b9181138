//! Lists the GPU adapters wgpu can see (honouring `WGPU_BACKEND`), one per line:
//! `<device type>\t<backend>\t<name>`.
fn main() {
    let desc = lstm_wgpu::wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    let instance = lstm_wgpu::wgpu::Instance::new(desc);
    let adapters =
        pollster::block_on(instance.enumerate_adapters(lstm_wgpu::wgpu::Backends::all()));
    for a in adapters {
        let i = a.get_info();
        println!("{:?}\t{:?}\t{}", i.device_type, i.backend, i.name);
        if std::env::args().any(|a| a == "--limits") {
            println!("{:#?}", a.limits());
        }
    }
}
