#!/usr/bin/env python3
"""Golden cases beyond the d* files, in the same format and conventions (tests/golden/README.md):
layers without biases, a three-layer stack with every feature, and AdamW steps.

LSTM cases: the keys of the d* files (parameters, x, h0, c0, R, Rh, Rc, y, h_n, c_n, loss, grad.*, and
`lengths` I64 [B] for variable lengths), loss = sum(y*R) + sum(h_n*Rh) + sum(c_n*Rc). A model built with
bias=False has no bias keys.

Optimizer case (e4_adamw_clip): as the d8 files (init.*, final.*, x, labels, losses, grad_norm), with
torch.optim.AdamW(lr=1e-2, weight_decay=0.1) after clipping the global norm at 0.5.

Module case (e6_module_state_dict): a whole model's state_dict with its LSTM under `encoder.lstm.` beside other
modules' tensors, plus `x` and that LSTM's `y`, `h_n`, `c_n` from a zero state.

Classifier case (e5_bidir_proj_varlen_classifier): a two-layer bidirectional LSTM with proj_size, sequences of
variable lengths (packed), the head reading torch.cat([h_n[-2], h_n[-1]], 1) (both directions of the top layer),
three steps of Adam (lr 1e-2) after clipping at 0.5. Keys as the d8 files, plus `lengths` I64 [3, B].

usage: pip install torch numpy safetensors; python gen_golden_e.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from safetensors.torch import save_file

torch.set_num_threads(2)

# name, B, T, I, H, L, bidir, proj, bias, seed, lengths (None = full)
LSTM_CASES = [
    ("e1_no_bias_two_layer", 3, 5, 4, 6, 2, False, 0, False, 201, None),
    ("e2_three_layer_bidir_proj_varlen", 3, 6, 3, 7, 3, True, 4, True, 202, [6, 1, 4]),
    ("e3_no_bias_bidir_varlen", 2, 5, 3, 5, 1, True, 0, False, 203, [3, 5]),
]


def t2(t):
    return t.detach().cpu().contiguous()


def meta(**kw):
    return {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in kw.items()}


def lstm_case(out_dir, name, B, T, I, H, L, bidir, proj, bias, seed, lengths):
    g = torch.Generator().manual_seed(seed)
    D = 2 if bidir else 1
    Hout = proj if proj > 0 else H
    shape_ref = nn.LSTM(I, H, num_layers=L, bidirectional=bidir, proj_size=proj, bias=bias, batch_first=True)
    k = 1.0 / np.sqrt(H)
    p32 = {n: (torch.rand(p.shape, generator=g) * 2 - 1) * k for n, p in shape_ref.named_parameters()}
    x32 = torch.randn(B, T, I, generator=g)
    h032 = torch.randn(L * D, B, Hout, generator=g) * 0.5
    c032 = torch.randn(L * D, B, H, generator=g) * 0.5
    R32 = torch.randn(B, T, D * Hout, generator=g)
    Rh32 = torch.randn(L * D, B, Hout, generator=g)
    Rc32 = torch.randn(L * D, B, H, generator=g)
    if lengths is not None:
        lens = torch.tensor(lengths, dtype=torch.int64)
        mask = (torch.arange(T)[None, :] < lens[:, None]).float()[:, :, None]
        R32 = R32 * mask
        x32 = x32 * mask
    for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        m = nn.LSTM(I, H, num_layers=L, bidirectional=bidir, proj_size=proj, bias=bias, batch_first=True).to(dtype)
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.copy_(p32[n].to(dtype))
        x = x32.to(dtype).clone().requires_grad_(True)
        h0 = h032.to(dtype).clone().requires_grad_(True)
        c0 = c032.to(dtype).clone().requires_grad_(True)
        R, Rh, Rc = R32.to(dtype), Rh32.to(dtype), Rc32.to(dtype)
        if lengths is None:
            y, (hn, cn) = m(x, (h0, c0))
        else:
            packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
            yp, (hn, cn) = m(packed, (h0, c0))
            y, _ = pad_packed_sequence(yp, batch_first=True, total_length=T)
        loss = (y * R).sum() + (hn * Rh).sum() + (cn * Rc).sum()
        m.zero_grad()
        loss.backward()
        out = {}
        for n, p in m.named_parameters():
            out[n] = t2(p)
            out["grad." + n] = t2(p.grad)
        out.update(x=t2(x), h0=t2(h0), c0=t2(c0), R=t2(R), Rh=t2(Rh), Rc=t2(Rc), y=t2(y), h_n=t2(hn), c_n=t2(cn),
                   loss=t2(loss.reshape(1)))
        out["grad.x"] = t2(x.grad)
        out["grad.h0"] = t2(h0.grad)
        out["grad.c0"] = t2(c0.grad)
        if lengths is not None:
            out["lengths"] = torch.tensor(lengths, dtype=torch.int64)
        md = meta(case=name, dtype=tag, B=B, T=T, I=I, H=H, num_layers=L, bidirectional=bidir, proj_size=proj,
                  bias=bias, batch_first=True, gate_order="i,f,g,o", seed=seed, torch_version=torch.__version__,
                  variable_length=lengths is not None, loss_def="sum(y*R)+sum(h_n*Rh)+sum(c_n*Rc)")
        fn = os.path.join(out_dir, f"{name}_{tag}.safetensors")
        save_file(out, fn, metadata=md)
        print(f"{fn}: {os.path.getsize(fn)} bytes loss={loss.item():.10g}")


def adamw_case(out_dir, name="e4_adamw_clip", clip=0.5, seed=204, B=8, T=10, I=6, H=16, C=4, steps=3):
    g = torch.Generator().manual_seed(seed)
    lstm, fc = nn.LSTM(I, H, batch_first=True), nn.Linear(H, C)
    k = 1.0 / np.sqrt(H)
    with torch.no_grad():
        for p in list(lstm.parameters()) + list(fc.parameters()):
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * k)
    xs = torch.rand(steps, B, T, I, generator=g)
    ys = torch.randint(0, C, (steps, B), generator=g, dtype=torch.int64)
    params = list(lstm.parameters()) + list(fc.parameters())
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1, foreach=False)
    desc = "torch.optim.AdamW lr=1e-2 betas=(0.9,0.999) eps=1e-8 weight_decay=0.1 amsgrad=False"
    named = lambda: {**{n: p for n, p in lstm.named_parameters()}, "fc.weight": fc.weight, "fc.bias": fc.bias}
    out = {"init." + n: t2(p).clone() for n, p in named().items()}
    losses, norms = [], []
    for s_ in range(steps):
        opt.zero_grad()
        y, _ = lstm(xs[s_])
        loss = F.cross_entropy(fc(y[:, -1, :]), ys[s_])
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(params, max_norm=clip).item())
        opt.step()
        losses.append(loss.item())
    out.update({"final." + n: t2(p) for n, p in named().items()})
    out.update(x=t2(xs), labels=ys.clone(), losses=torch.tensor(losses), grad_norm=torch.tensor(norms))
    md = meta(case=name, dtype="f32", B=B, T=T, I=I, H=H, classes=C, steps=steps, optimizer=desc,
              clip="torch.nn.utils.clip_grad_norm_(all parameters, max_norm=%g)" % clip, seed=seed,
              torch_version=torch.__version__, loss_def="mean_b cross_entropy(fc(y[:, T-1, :]), labels)")
    fn = os.path.join(out_dir, f"{name}_f32.safetensors")
    save_file(out, fn, metadata=md)
    print(f"{fn}: {os.path.getsize(fn)} bytes losses={losses} norms={norms}")


def classifier_case(out_dir, name="e5_bidir_proj_varlen_classifier", clip=0.5, seed=205, B=6, T=7, I=5, H=9,
                    P=4, L=2, C=3, steps=3):
    g = torch.Generator().manual_seed(seed)
    lstm = nn.LSTM(I, H, num_layers=L, bidirectional=True, proj_size=P, batch_first=True)
    fc = nn.Linear(2 * P, C)
    k = 1.0 / np.sqrt(H)
    kf = 1.0 / np.sqrt(2 * P)
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * k)
        for p in fc.parameters():
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * kf)
    xs = torch.rand(steps, B, T, I, generator=g)
    ys = torch.randint(0, C, (steps, B), generator=g, dtype=torch.int64)
    lens = torch.randint(1, T + 1, (steps, B), generator=g, dtype=torch.int64)
    lens[:, 0] = T  # one full-length and one single-step sequence in every batch
    lens[:, 1] = 1
    for s_ in range(steps):
        mask = (torch.arange(T)[None, :] < lens[s_][:, None]).float()[:, :, None]
        xs[s_] = xs[s_] * mask
    params = list(lstm.parameters()) + list(fc.parameters())
    opt = torch.optim.Adam(params, lr=1e-2, foreach=False)
    desc = "torch.optim.Adam lr=1e-2 betas=(0.9,0.999) eps=1e-8 weight_decay=0 amsgrad=False"
    named = lambda: {**{n: p for n, p in lstm.named_parameters()}, "fc.weight": fc.weight, "fc.bias": fc.bias}
    out = {"init." + n: t2(p).clone() for n, p in named().items()}
    losses, norms = [], []
    for s_ in range(steps):
        opt.zero_grad()
        packed = pack_padded_sequence(xs[s_], lens[s_], batch_first=True, enforce_sorted=False)
        _, (hn, _) = lstm(packed)
        feats = torch.cat([hn[-2], hn[-1]], dim=1)
        loss = F.cross_entropy(fc(feats), ys[s_])
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(params, max_norm=clip).item())
        opt.step()
        losses.append(loss.item())
    out.update({"final." + n: t2(p) for n, p in named().items()})
    out.update(x=t2(xs), labels=ys.clone(), lengths=lens.clone(), losses=torch.tensor(losses),
               grad_norm=torch.tensor(norms))
    md = meta(case=name, dtype="f32", B=B, T=T, I=I, H=H, proj_size=P, num_layers=L, bidirectional=True,
              classes=C, steps=steps, optimizer=desc,
              clip="torch.nn.utils.clip_grad_norm_(all parameters, max_norm=%g)" % clip, seed=seed,
              torch_version=torch.__version__,
              loss_def="mean_b cross_entropy(fc(cat(h_n[-2], h_n[-1])), labels), packed sequences")
    fn = os.path.join(out_dir, f"{name}_f32.safetensors")
    save_file(out, fn, metadata=md)
    print(f"{fn}: {os.path.getsize(fn)} bytes losses={losses} norms={norms}")


def module_state_dict_case(out_dir, name="e6_module_state_dict", seed=206, B=2, T=5, I=3, H=6, P=4, L=2):
    """A whole model's state_dict, as people save it: the LSTM under `encoder.lstm.` beside other modules'
    tensors (`encoder.norm.*`, `head.*`), plus `x` and the LSTM's outputs `y`, `h_n`, `c_n` (zero initial state)."""
    g = torch.Generator().manual_seed(seed)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(I)
            self.lstm = nn.LSTM(I, H, num_layers=L, bidirectional=True, proj_size=P, batch_first=True)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.head = nn.Linear(2 * P, 3)

    m = Model()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / np.sqrt(H))
    x = torch.randn(B, T, I, generator=g)
    with torch.no_grad():
        y, (hn, cn) = m.encoder.lstm(x)
    out = {k: t2(v) for k, v in m.state_dict().items()}
    out.update(x=t2(x), y=t2(y), h_n=t2(hn), c_n=t2(cn))
    md = meta(case=name, dtype="f32", B=B, T=T, I=I, H=H, proj_size=P, num_layers=L, bidirectional=True,
              seed=seed, torch_version=torch.__version__,
              note="safetensors.torch.save_file(model.state_dict()) plus x, y, h_n, c_n of model.encoder.lstm(x)")
    fn = os.path.join(out_dir, f"{name}_f32.safetensors")
    save_file(out, fn, metadata=md)
    print(f"{fn}: {os.path.getsize(fn)} bytes keys={sorted(m.state_dict().keys())[:4]}...")


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for c in LSTM_CASES:
        lstm_case(out, *c)
    adamw_case(out)
    classifier_case(out)
    module_state_dict_case(out)
