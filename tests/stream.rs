//! Streaming sessions on both devices: pushes of a sequence chunk by chunk give exactly the
//! outputs of one call over the whole sequence, a reset restarts only the sequences named, the
//! GPU session moves only its chunk to the device, and misuse is a typed error that leaves the
//! state as it was.
mod common;

use common::{assert_close, gpu, projection_dispatches, random_array, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{GpuLstm, GpuStats};
use lstm_wgpu::ndarray::{Array2, Array3, Axis, concatenate, s};
use lstm_wgpu::stream::{LstmStream, StreamOutput, StreamRequest};
use lstm_wgpu::{Error, Lstm, LstmConfig, LstmOutput, LstmWeights};

/// Two layers; `H = 64` and a batch of two let the CPU's long call split each step between
/// threads by units, while its one-step pushes run on one thread.
const B: usize = 2;
const I: usize = 5;
const H: usize = 64;
const L: usize = 2;

fn weights() -> LstmWeights<f32> {
    random_weights(LstmConfig::new(I, H, L).unwrap(), 11, 1.5)
}

/// Pushes `x` `[B, T, I]` in chunks of the given lengths (cycled), asking for every output, and
/// joins them: `y` `[B, T, H]` and the final `h_n`, `c_n`; each push's `last` is checked
/// against the last step of its `y`.
fn push_in_chunks(stream: &mut dyn LstmStream, x: &Array3<f32>, lengths: &[usize]) -> LstmOutput {
    let seq = x.shape()[1];
    let (mut t, mut ys, mut last_state) = (0, Vec::new(), None);
    for &len in lengths.iter().cycle() {
        if t == seq {
            break;
        }
        let len = len.min(seq - t);
        let out: StreamOutput = stream
            .push(x.slice(s![.., t..t + len, ..]), StreamRequest::ALL)
            .unwrap();
        let y = out.y.unwrap();
        assert_eq!(
            out.last.unwrap(),
            y.index_axis(Axis(1), len - 1),
            "last at step {t}"
        );
        ys.push(y);
        last_state = Some((out.h_n.unwrap(), out.c_n.unwrap()));
        t += len;
    }
    let views: Vec<_> = ys.iter().map(|y| y.view()).collect();
    let (h_n, c_n) = last_state.unwrap();
    LstmOutput {
        y: concatenate(Axis(1), &views).unwrap(),
        h_n,
        c_n,
    }
}

/// Bit-for-bit equality, naming the worst element of the first tensor that differs.
fn assert_same_bits(what: &str, got: &LstmOutput, want: &LstmOutput) {
    for (name, g, w) in [
        ("y", &got.y, &want.y),
        ("h_n", &got.h_n, &want.h_n),
        ("c_n", &got.c_n, &want.c_n),
    ] {
        assert_close(
            &format!("{what} {name}"),
            g.view().into_dyn(),
            w.view().into_dyn(),
            0.0,
            0.0,
        );
    }
}

#[test]
fn one_step_pushes_give_the_bits_of_one_long_call_on_the_cpu() {
    let mut lstm = CpuLstm::new(weights()).unwrap();
    let x: Array3<f32> = random_array((B, 300, I), 1, -1.0, 1.0);
    let want = lstm.forward(x.view(), None).unwrap();
    let got = push_in_chunks(&mut lstm.stream(B).unwrap(), &x, &[1]);
    assert_same_bits("CPU, T = 300 one step at a time", &got, &want);
}

#[test]
fn one_step_pushes_give_the_bits_of_one_long_call_on_the_gpu() {
    let mut lstm = GpuLstm::new(&gpu(), &weights()).unwrap();
    let x: Array3<f32> = random_array((B, 300, I), 1, -1.0, 1.0);
    let want = lstm.forward(x.view(), None).unwrap();
    let got = push_in_chunks(&mut lstm.stream(B).unwrap(), &x, &[1]);
    assert_same_bits("GPU, T = 300 one step at a time", &got, &want);
}

#[test]
fn chunks_of_mixed_lengths_give_the_bits_of_one_long_call_on_both_devices() {
    let x: Array3<f32> = random_array((B, 120, I), 2, -1.0, 1.0);
    // More distinct lengths than the GPU stream keeps plans for, so plans are dropped and made
    // again along the way.
    let lengths = [1, 7, 2, 13, 3, 5, 1, 9];
    let mut cpu = CpuLstm::new(weights()).unwrap();
    let want = cpu.forward(x.view(), None).unwrap();
    let got = push_in_chunks(&mut cpu.stream(B).unwrap(), &x, &lengths);
    assert_same_bits("CPU, mixed chunks", &got, &want);
    let mut gpu_lstm = GpuLstm::new(&gpu(), &weights()).unwrap();
    let want = gpu_lstm.forward(x.view(), None).unwrap();
    let got = push_in_chunks(&mut gpu_lstm.stream(B).unwrap(), &x, &lengths);
    assert_same_bits("GPU, mixed chunks", &got, &want);
}

#[test]
fn the_gpu_stream_matches_the_cpu_stream() {
    let x: Array3<f32> = random_array((B, 40, I), 3, -1.0, 1.0);
    let cpu = push_in_chunks(
        &mut CpuLstm::new(weights()).unwrap().stream(B).unwrap(),
        &x,
        &[1, 4],
    );
    let gpu_out = push_in_chunks(
        &mut GpuLstm::new(&gpu(), &weights()).unwrap().stream(B).unwrap(),
        &x,
        &[1, 4],
    );
    // The tolerance of the forward pass's GPU-vs-CPU tests (tests/gpu_forward.rs says why).
    for (name, g, c) in [
        ("y", &gpu_out.y, &cpu.y),
        ("h_n", &gpu_out.h_n, &cpu.h_n),
        ("c_n", &gpu_out.c_n, &cpu.c_n),
    ] {
        assert_close(name, g.view().into_dyn(), c.view().into_dyn(), 0.0, 1e-5);
    }
}

/// After 6 steps, sequence 1 is reset; 5 more steps follow. Sequence 0 must go on as if nothing
/// happened (against the CPU's forward of it alone, within `rtol`), sequence 1 must give the
/// bits a fresh stream of the same device gives for the last 5 steps.
fn check_reset(stream: &mut dyn LstmStream, fresh: &mut dyn LstmStream, what: &str, rtol: f64) {
    let x: Array3<f32> = random_array((B, 11, I), 4, -1.0, 1.0);
    let mut whole = Vec::new();
    for t in 0..11 {
        if t == 6 {
            stream.reset(&[1]).unwrap();
        }
        let out = stream
            .push(x.slice(s![.., t..t + 1, ..]), StreamRequest::LAST)
            .unwrap();
        whole.push(out.last.unwrap());
    }
    let mut reference = CpuLstm::new(weights()).unwrap();
    let row0 = reference.forward(x.slice(s![..1, .., ..]), None).unwrap();
    let mut after = Vec::new();
    for t in 6..11 {
        let out = fresh
            .push(x.slice(s![.., t..t + 1, ..]), StreamRequest::LAST)
            .unwrap();
        after.push(out.last.unwrap());
    }
    for t in 0..11 {
        let got: &Array2<f32> = &whole[t];
        assert_close(
            &format!("{what}: sequence 0 at step {t}"),
            got.slice(s![0, ..]).into_dyn(),
            row0.y.slice(s![0, t, ..]).into_dyn(),
            0.0,
            rtol,
        );
        if t >= 6 {
            assert_close(
                &format!("{what}: sequence 1 at step {t}, after its reset"),
                got.slice(s![1, ..]).into_dyn(),
                after[t - 6].slice(s![1, ..]).into_dyn(),
                0.0,
                0.0,
            );
        }
    }
}

#[test]
fn a_reset_restarts_only_the_sequences_it_names_on_the_cpu() {
    let lstm = CpuLstm::new(weights()).unwrap();
    check_reset(
        &mut lstm.stream(B).unwrap(),
        &mut lstm.stream(B).unwrap(),
        "CPU",
        // The CPU gives each row the same bits whatever the rows beside it.
        0.0,
    );
}

#[test]
fn a_reset_restarts_only_the_sequences_it_names_on_the_gpu() {
    let lstm = GpuLstm::new(&gpu(), &weights()).unwrap();
    check_reset(
        &mut lstm.stream(B).unwrap(),
        &mut lstm.stream(B).unwrap(),
        "GPU",
        // GPU against the CPU: the forward pass's tolerance (tests/gpu_forward.rs says why).
        1e-5,
    );
}

#[test]
fn a_gpu_push_uploads_only_its_chunk_submits_once_and_reads_back_only_what_was_asked() {
    let lstm = GpuLstm::new(&gpu(), &weights()).unwrap();
    let mut stream = lstm.stream(B).unwrap();
    let x: Array3<f32> = random_array((B, 3, I), 5, -1.0, 1.0);
    // The first push of a length makes its plan (uniforms uploaded once); measure the next.
    stream.push(x.view(), StreamRequest::NONE).unwrap();
    let f = 4u64; // bytes per value
    let expect = |want: StreamRequest, read: u64| {
        let stats = GpuStats {
            submits: 1,
            // Per layer: the input projection (if the step does not make it), one per step.
            dispatches: (L * (projection_dispatches(B) + 3)) as u64,
            uploads: 1,
            bytes_uploaded: (B * 3 * I) as u64 * f,
            readbacks: u64::from(read > 0),
            bytes_read_back: read * f,
        };
        (want, stats)
    };
    for (want, stats) in [
        expect(StreamRequest::NONE, 0),
        expect(StreamRequest::LAST, (B * H) as u64),
        expect(StreamRequest::Y, (B * 3 * H) as u64),
        expect(StreamRequest::STATE, (2 * L * B * H) as u64),
    ] {
        let before = stream.stats();
        stream.push(x.view(), want).unwrap();
        assert_eq!(stream.stats() - before, stats, "{want:?}");
    }
    // A reset records its zeroing into the next push: no transfer, no submit of its own.
    let before = stream.stats();
    stream.reset(&[0, 1]).unwrap();
    assert_eq!(stream.stats() - before, GpuStats::default(), "reset");
}

/// Each misuse fails with its typed error, and the stream's next push gives what it would
/// have given without the failed calls.
fn check_misuse(stream: &mut dyn LstmStream, other: &mut dyn LstmStream, what: &str) {
    let x: Array3<f32> = random_array((B, 2, I), 6, -1.0, 1.0);
    stream.push(x.view(), StreamRequest::NONE).unwrap();
    other.push(x.view(), StreamRequest::NONE).unwrap();
    let wrong_batch = Array3::<f32>::zeros((B + 1, 1, I));
    let wrong_input = Array3::<f32>::zeros((B, 1, I + 1));
    let empty = Array3::<f32>::zeros((B, 0, I));
    for (name, bad) in [
        ("wrong batch", &wrong_batch),
        ("wrong input size", &wrong_input),
    ] {
        match stream.push(bad.view(), StreamRequest::ALL) {
            Err(Error::Shape { tensor, .. }) => assert_eq!(tensor, "x", "{what}, {name}"),
            r => panic!(
                "{what}, {name}: expected a shape error, got {:?}",
                r.map(|_| ())
            ),
        }
    }
    match stream.push(empty.view(), StreamRequest::ALL) {
        Err(Error::ZeroSize { .. }) => {}
        r => panic!(
            "{what}, empty chunk: expected ZeroSize, got {:?}",
            r.map(|_| ())
        ),
    }
    match stream.reset(&[0, B]) {
        Err(Error::Config { .. }) => {}
        r => panic!("{what}, reset outside the batch: expected Config, got {r:?}"),
    }
    let got = stream.push(x.view(), StreamRequest::ALL).unwrap();
    let want = other.push(x.view(), StreamRequest::ALL).unwrap();
    assert_eq!(got, want, "{what}: the failed calls changed the stream");
}

#[test]
fn misuse_is_a_typed_error_that_leaves_the_state_alone_on_the_cpu() {
    let lstm = CpuLstm::new(weights()).unwrap();
    check_misuse(
        &mut lstm.stream(B).unwrap(),
        &mut lstm.stream(B).unwrap(),
        "CPU",
    );
}

#[test]
fn misuse_is_a_typed_error_that_leaves_the_state_alone_on_the_gpu() {
    let lstm = GpuLstm::new(&gpu(), &weights()).unwrap();
    check_misuse(
        &mut lstm.stream(B).unwrap(),
        &mut lstm.stream(B).unwrap(),
        "GPU",
    );
}

fn expect_stale(stream: &mut dyn LstmStream, what: &str) {
    let x = Array3::<f32>::zeros((B, 1, I));
    match stream.push(x.view(), StreamRequest::LAST) {
        Err(Error::StaleStream { stream, current }) => assert!(current > stream, "{what}"),
        r => panic!("{what}: expected StaleStream, got {:?}", r.map(|_| ())),
    }
}

#[test]
fn a_stream_is_stale_once_its_models_weights_change() {
    let x = Array3::<f32>::zeros((B, 1, I));
    let other = random_weights(LstmConfig::new(I, H, L).unwrap(), 12, 1.0);

    let mut cpu = CpuLstm::new(weights()).unwrap();
    let mut s = cpu.stream(B).unwrap();
    s.push(x.view(), StreamRequest::NONE).unwrap();
    cpu.set_weights(&other).unwrap();
    expect_stale(&mut s, "CPU after set_weights");
    let mut s = cpu.stream(B).unwrap();
    cpu.params_mut().layers_mut()[0].bias_ih[0] += 1.0;
    expect_stale(&mut s, "CPU after an update in place");
    // A clone is another model: changing it leaves the original's streams alone.
    let mut s = cpu.stream(B).unwrap();
    cpu.clone().set_weights(&weights()).unwrap();
    s.push(x.view(), StreamRequest::NONE).unwrap();

    let mut gpu_lstm = GpuLstm::new(&gpu(), &weights()).unwrap();
    let mut s = gpu_lstm.stream(B).unwrap();
    s.push(x.view(), StreamRequest::NONE).unwrap();
    gpu_lstm.set_weights(&other).unwrap();
    expect_stale(&mut s, "GPU after set_weights");
    // A stream made afterwards runs on the new weights.
    let got = gpu_lstm
        .stream(B)
        .unwrap()
        .push(x.view(), StreamRequest::LAST)
        .unwrap();
    let want = CpuLstm::new(other)
        .unwrap()
        .forward(x.view(), None)
        .unwrap();
    // GPU against the CPU: the forward pass's tolerance (tests/gpu_forward.rs says why).
    assert_close(
        "GPU stream made after set_weights",
        got.last.unwrap().into_dyn().view(),
        want.y.index_axis(Axis(1), 0).into_dyn(),
        0.0,
        1e-5,
    );
}
