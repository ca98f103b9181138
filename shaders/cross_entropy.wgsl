// Softmax cross-entropy of a batch of logits with integer labels, its gradient, and the batch
// metrics. CPU twin: src/cpu/cross_entropy.rs.
//
//   p[b, :]        = softmax(logits[b, :])
//   loss_b         = logsumexp(logits[b, :]) - logits[b, label_b]
//   dlogits[b, c]  = (p[b, c] - [c = label_b]) / n          n = rows with a valid label
//   metrics       += (Σ_b loss_b, Σ_b [argmax_c logits[b, c] = label_b], n)
//
// A label ≥ C marks a padding row: it adds nothing and gets a zero gradient (PyTorch's
// ignore_index), so a short last batch can be padded to the batch size. The loss is the mean
// over valid rows, as nn.CrossEntropyLoss computes it. One workgroup of WG_X invocations walks all
// rows with fixed strides and sums with workgroup_sum.wgsl, so the result is the same bit for bit
// on every run.
//
// A valid row with a NaN or infinite logit has loss NaN and a NaN gradient row, and is not
// counted correct: the test is explicit (non_finite.wgsl), since max-tracking and exp may lose a
// NaN on some platforms.

struct Params {
    rows: u32, classes: u32, accumulate: u32, pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;   // [B, C]
@group(0) @binding(2) var<storage, read> labels: array<u32>;   // [B]
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>; // [B, C]
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>; // [3]

alias Sum = vec3<f32>;

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(@builtin(local_invocation_index) li: u32) {
    let C = p.classes;
    var valid = 0.0;
    for (var r = li; r < p.rows; r += WG_X) {
        if (labels[r] < C) {
            valid += 1.0;
        }
    }
    let n = workgroup_sum(li, vec3<f32>(valid, 0.0, 0.0)).x;
    let scale = 1.0 / max(n, 1.0);

    var loss = 0.0;
    var correct = 0.0;
    for (var r = li; r < p.rows; r += WG_X) {
        let row = r * C;
        let label = labels[r];
        var m = logits[row];
        var best = 0u;
        var finite = is_finite(m);
        for (var c = 1u; c < C; c++) {
            let l = logits[row + c];
            finite = finite && is_finite(l);
            if (l > m) {
                m = l;
                best = c;
            }
        }
        let nan = nan_from(m);
        var s = 0.0;
        for (var c = 0u; c < C; c++) {
            s += exp(logits[row + c] - m);
        }
        let ok = label < C;
        for (var c = 0u; c < C; c++) {
            let prob = exp(logits[row + c] - m) / s;
            let onehot = select(0.0, 1.0, c == label);
            let d = select(nan, (prob - onehot) * scale, finite);
            dlogits[r * C + c] = select(0.0, d, ok);
        }
        if (ok) {
            loss += select(nan, m + log(s) - logits[row + label], finite);
            correct += select(0.0, 1.0, finite && best == label);
        }
    }
    let total = workgroup_sum(li, vec3<f32>(loss, correct, 0.0));
    if (li == 0u) {
        if (p.accumulate != 0u) {
            metrics[0] += total.x;
            metrics[1] += total.y;
            metrics[2] += n;
        } else {
            metrics[0] = total.x;
            metrics[1] = total.y;
            metrics[2] = n;
        }
    }
}
