// A sum over a 1-D workgroup of WG_X invocations (a power of two) in a fixed tree, so the result is
// the same bit for bit on every run. Prepended to cross_entropy.wgsl and grad_norm.wgsl; the summed
// type `Sum` is declared by the shader that uses it (e.g. `alias Sum = f32;`). Every invocation
// of the workgroup must call it, in uniform control flow.

var<workgroup> partial_sums: array<Sum, WG_X>;

fn workgroup_sum(li: u32, v: Sum) -> Sum {
    partial_sums[li] = v;
    workgroupBarrier();
    for (var half = WG_X / 2u; half > 0u; half /= 2u) {
        if (li < half) {
            partial_sums[li] += partial_sums[li + half];
        }
        workgroupBarrier();
    }
    let total = partial_sums[0];
    workgroupBarrier();
    return total;
}
