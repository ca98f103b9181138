//! Calls recorded into the caller's command encoder, on tensors in the caller's buffers: they
//! give what the host-array calls give, write only their tensor's bytes, leave every submit to
//! the caller, and refuse a buffer they cannot use with a typed error, recording nothing.
mod common;

use common::{gpu, projection_dispatches, random_array, random_state, random_weights};
use lstm_wgpu::gpu::{ForwardTargets, Gpu, GpuLstm, GpuStats, GpuTensor, StreamTargets};
use lstm_wgpu::ndarray::{Array3, s};
use lstm_wgpu::stream::{LstmStream, StreamRequest};
use lstm_wgpu::wgpu::{self, BufferUsages as U, util::DeviceExt};
use lstm_wgpu::{Error, Lstm, LstmConfig, LstmWeights};

const B: usize = 3;
const T: usize = 6;
const I: usize = 5;
const H: usize = 24;
const L: usize = 2;

fn weights() -> LstmWeights<f32> {
    random_weights(LstmConfig::new(I, H, L).unwrap(), 31, 1.5)
}

/// A caller's buffer holding `values` from byte `offset`, the bytes before it `filler`.
fn buffer_with(device: &wgpu::Device, values: &[f32], offset: usize, usage: U) -> wgpu::Buffer {
    let mut all = vec![-7.0f32; offset / 4];
    all.extend_from_slice(values);
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("caller's buffer"),
        contents: bytemuck::cast_slice(&all),
        usage,
    })
}

/// A caller's output buffer of `len` values, pre-filled with a marker so writes outside the
/// tensor show.
fn output(len: usize) -> wgpu::Buffer {
    buffer_with(
        gpu().device(),
        &vec![-7.0; len],
        0,
        U::COPY_DST | U::COPY_SRC,
    )
}

/// Reads a whole buffer back (the caller's own readback, outside the crate).
fn read(buffer: &wgpu::Buffer) -> Vec<f32> {
    let g = gpu();
    let staging = g.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("test readback"),
        size: buffer.size(),
        usage: U::MAP_READ | U::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = g.device().create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    g.queue().submit([encoder.finish()]);
    let slice = staging.slice(..);
    slice.map_async(wgpu::MapMode::Read, |r| r.unwrap());
    g.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let view = slice.get_mapped_range().unwrap();
    bytemuck::pod_collect_to_vec(&view)
}

fn flat(a: &Array3<f32>) -> Vec<f32> {
    a.iter().copied().collect()
}

#[test]
fn an_encoded_forward_writes_what_forward_returns_and_submits_nothing() {
    let g = gpu();
    let mut lstm = GpuLstm::new(&g, &weights()).unwrap();
    let x: Array3<f32> = random_array((B, T, I), 1, -1.0, 1.0);
    let state = random_state(lstm.config(), B, 2);
    let want = lstm.forward(x.view(), Some(&state)).unwrap();

    // x and h0/c0 at offsets inside larger buffers.
    let x_buf = buffer_with(g.device(), &flat(&x), 64, U::COPY_SRC);
    let mut s0 = flat(&state.h);
    s0.extend(flat(&state.c));
    let s_buf = buffer_with(g.device(), &s0, 16, U::COPY_SRC);
    let (y_len, s_len) = (B * T * H, 2 * L * B * H);
    let (y_out, s_out) = (output(y_len + 8), output(s_len));

    let before = lstm.stats();
    let mut encoder = g.device().create_command_encoder(&Default::default());
    lstm.encode_forward(
        &mut encoder,
        (B, T),
        GpuTensor {
            buffer: &x_buf,
            offset: 64,
        },
        Some(GpuTensor {
            buffer: &s_buf,
            offset: 16,
        }),
        ForwardTargets {
            y: Some(GpuTensor {
                buffer: &y_out,
                offset: 16,
            }),
            state: Some(GpuTensor::whole(&s_out)),
        },
    )
    .unwrap();
    let stats = lstm.stats() - before;
    assert_eq!(
        (stats.submits, stats.uploads, stats.readbacks),
        (0, 0, 0),
        "the crate submitted or transferred: {stats:?}"
    );
    assert_eq!(
        stats.dispatches,
        (L * (projection_dispatches(B) + T)) as u64
    );
    g.queue().submit([encoder.finish()]);

    let y = read(&y_out);
    assert_eq!(&y[..4], &[-7.0; 4], "bytes before y's offset were written");
    assert_eq!(&y[4 + y_len..], &[-7.0; 4], "bytes after y were written");
    assert_eq!(&y[4..4 + y_len], flat(&want.y).as_slice(), "y");
    let mut s_want = flat(&want.h_n);
    s_want.extend(flat(&want.c_n));
    assert_eq!(read(&s_out), s_want, "h_n/c_n");
}

#[test]
fn encoded_pushes_give_what_blocking_pushes_give_and_submit_nothing() {
    let g = gpu();
    let lstm = GpuLstm::new(&g, &weights()).unwrap();
    let x: Array3<f32> = random_array((B, T, I), 3, -1.0, 1.0);
    let (mut encoded, mut blocking) = (lstm.stream(B).unwrap(), lstm.stream(B).unwrap());
    let last = output(B * H);
    let state = output(2 * L * B * H);
    for t in 0..T {
        if t == 3 {
            encoded.reset(&[1]).unwrap();
            blocking.reset(&[1]).unwrap();
        }
        let chunk = x.slice(s![.., t..t + 1, ..]).to_owned();
        let x_buf = buffer_with(g.device(), &flat(&chunk), 0, U::COPY_SRC);
        let before = encoded.stats();
        let mut encoder = g.device().create_command_encoder(&Default::default());
        let out = StreamTargets {
            last: Some(GpuTensor::whole(&last)),
            y: None,
            state: Some(GpuTensor::whole(&state)),
        };
        encoded
            .encode_push(&mut encoder, 1, GpuTensor::whole(&x_buf), out)
            .unwrap();
        let stats = encoded.stats() - before;
        if t > 0 {
            // After the first push has made its plan: nothing but the dispatches.
            assert_eq!(
                stats,
                GpuStats {
                    dispatches: (L * (projection_dispatches(B) + 1)) as u64,
                    ..Default::default()
                },
                "push {t}"
            );
        }
        g.queue().submit([encoder.finish()]);
        let want = blocking.push(chunk.view(), StreamRequest::ALL).unwrap();
        assert_eq!(
            read(&last),
            want.last.unwrap().into_raw_vec_and_offset().0,
            "last, push {t}"
        );
        let mut s_want = flat(&want.h_n.unwrap());
        s_want.extend(flat(&want.c_n.unwrap()));
        assert_eq!(read(&state), s_want, "state, push {t}");
    }
}

/// Two devices of one adapter (one wgpu instance): wgpu tells their buffers apart. (Buffers of
/// another instance it cannot, so callers must not mix instances.)
fn two_devices() -> (Gpu, wgpu::Device) {
    let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    let instance = wgpu::Instance::new(desc);
    let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .expect("an adapter");
    let device = || pollster::block_on(adapter.request_device(&Default::default())).unwrap();
    let (mine, queue) = device();
    let (other, _) = device();
    (Gpu::from_device(mine, queue).unwrap(), other)
}

#[test]
fn a_caller_buffer_the_call_cannot_use_is_a_typed_error_and_nothing_is_recorded() {
    let (g, other_device) = two_devices();
    let mut lstm = GpuLstm::new(&g, &weights()).unwrap();
    let x_len = B * T * I;
    let good = buffer_with(g.device(), &vec![0.0; x_len], 0, U::COPY_SRC);
    let small = buffer_with(g.device(), &vec![0.0; x_len - 1], 0, U::COPY_SRC);
    let no_copy = buffer_with(g.device(), &vec![0.0; x_len], 0, U::STORAGE);
    let foreign = buffer_with(&other_device, &vec![0.0; x_len], 0, U::COPY_SRC);
    let y_len = B * T * H;
    let y_out = buffer_with(g.device(), &vec![0.0; y_len], 0, U::COPY_DST);
    let cases: [(&str, GpuTensor<'_>); 5] = [
        ("too small", GpuTensor::whole(&small)),
        (
            "past the end from its offset",
            GpuTensor {
                buffer: &good,
                offset: 4,
            },
        ),
        (
            "misaligned offset",
            GpuTensor {
                buffer: &good,
                offset: 2,
            },
        ),
        ("without COPY_SRC", GpuTensor::whole(&no_copy)),
        ("of another device", GpuTensor::whole(&foreign)),
    ];
    for (what, x) in cases {
        let before = lstm.stats();
        let mut encoder = g.device().create_command_encoder(&Default::default());
        let out = ForwardTargets {
            y: Some(GpuTensor::whole(&y_out)),
            state: None,
        };
        match lstm.encode_forward(&mut encoder, (B, T), x, None, out) {
            Err(Error::CallerBuffer { tensor, reason }) => {
                assert_eq!(tensor, "x", "{what}: {reason}")
            }
            r => panic!("{what}: expected CallerBuffer, got {r:?}"),
        }
        assert_eq!(lstm.stats() - before, GpuStats::default(), "{what}");
        // The encoder is still good: nothing invalid was recorded into it.
        g.queue().submit([encoder.finish()]);
    }
    // An output without COPY_DST.
    let read_only = buffer_with(g.device(), &vec![0.0; y_len], 0, U::COPY_SRC);
    let mut encoder = g.device().create_command_encoder(&Default::default());
    let out = ForwardTargets {
        y: Some(GpuTensor::whole(&read_only)),
        state: None,
    };
    match lstm.encode_forward(&mut encoder, (B, T), GpuTensor::whole(&good), None, out) {
        Err(Error::CallerBuffer { tensor, .. }) => assert_eq!(tensor, "y"),
        r => panic!("y without COPY_DST: expected CallerBuffer, got {r:?}"),
    }
    g.queue().submit([encoder.finish()]);
    // A stream's chunk from another device.
    let mut stream = lstm.stream(B).unwrap();
    let mut encoder = g.device().create_command_encoder(&Default::default());
    match stream.encode_push(
        &mut encoder,
        T,
        GpuTensor::whole(&foreign),
        StreamTargets::default(),
    ) {
        Err(Error::CallerBuffer { tensor, .. }) => assert_eq!(tensor, "x"),
        r => panic!("stream chunk of another device: expected CallerBuffer, got {r:?}"),
    }
    g.queue().submit([encoder.finish()]);
}
