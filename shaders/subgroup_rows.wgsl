// The values of a tile's 8 rows, shared between the 8 lanes of a subgroup that each loaded one:
// lane s holds row s's value, and every lane gets all 8 (prelude of the subgroup variants:
// lstm_forward_step_subgroup.wgsl, lstm_forward_step_tall.wgsl, lstm_backward_step_subgroup.wgsl,
// matmul_subgroup.wgsl). A broadcast's lane must be a constant: the 8 lanes spelled
// out, for a float, a vec4 and a vec4 of u32.

fn shared_rows(mine: f32) -> array<f32, 8> {
    return array<f32, 8>(
        subgroupBroadcast(mine, 0u),
        subgroupBroadcast(mine, 1u),
        subgroupBroadcast(mine, 2u),
        subgroupBroadcast(mine, 3u),
        subgroupBroadcast(mine, 4u),
        subgroupBroadcast(mine, 5u),
        subgroupBroadcast(mine, 6u),
        subgroupBroadcast(mine, 7u),
    );
}

fn shared_rows4(mine: vec4<f32>) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(
        subgroupBroadcast(mine, 0u),
        subgroupBroadcast(mine, 1u),
        subgroupBroadcast(mine, 2u),
        subgroupBroadcast(mine, 3u),
        subgroupBroadcast(mine, 4u),
        subgroupBroadcast(mine, 5u),
        subgroupBroadcast(mine, 6u),
        subgroupBroadcast(mine, 7u),
    );
}

fn shared_rows4u(mine: vec4<u32>) -> array<vec4<u32>, 8> {
    return array<vec4<u32>, 8>(
        subgroupBroadcast(mine, 0u),
        subgroupBroadcast(mine, 1u),
        subgroupBroadcast(mine, 2u),
        subgroupBroadcast(mine, 3u),
        subgroupBroadcast(mine, 4u),
        subgroupBroadcast(mine, 5u),
        subgroupBroadcast(mine, 6u),
        subgroupBroadcast(mine, 7u),
    );
}
