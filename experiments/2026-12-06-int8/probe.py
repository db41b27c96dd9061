"""Scratch probe: which int8 variant keeps MiniLM's embeddings (cosine to fp32)."""
import sys, time, warnings
import numpy as np, torch
torch.set_num_threads(1); warnings.filterwarnings("ignore")
sys.path.insert(0, "benchmarks")
from pathlib import Path
from embed import model_dir
from berts.data import corpora
from berts.embed.encoder import Encoder
from torch.ao.quantization import quantize_dynamic, per_channel_dynamic_qconfig, default_dynamic_qconfig

d = model_dir(Path("/tmp/reliab30-int8"), False)
lines = [l for l in corpora.en_brown()["text"].read_text().splitlines() if l.strip()]
calib, evalt = lines[:256], lines[-512:]
fp = Encoder.from_pretrained(d)
ref = fp.encode(evalt)

class Smooth(torch.nn.Module):
    def __init__(self, lin, amax, alpha, per_channel, full):
        super().__init__()
        wmax = lin.weight.abs().amax(0).clamp(min=1e-5)  # [in]
        s = (amax.clamp(min=1e-5) ** alpha / wmax ** (1 - alpha)).clamp(min=1e-5)
        self.register_buffer("inv", 1 / s)
        l = torch.nn.Linear(lin.in_features, lin.out_features)
        l.weight.data = lin.weight.data * s; l.bias.data = lin.bias.data
        qc = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        seq = torch.nn.Sequential(l)
        self.q = quantize_dynamic(seq, {torch.nn.Linear: qc}, dtype=torch.qint8)[0]
        self.full = full
    def forward(self, x):
        x = x * self.inv
        if self.full:
            return torch.ops.quantized.linear_dynamic(x, self.q._packed_params._packed_params, reduce_range=False)
        return self.q(x)

def calibrate(enc):
    amax = {}
    hooks = []
    for n, m in enc.model.named_modules():
        if isinstance(m, torch.nn.Linear):
            def h(mod, inp, out, n=n):
                a = inp[0].detach().abs().reshape(-1, inp[0].shape[-1]).amax(0)
                amax[n] = torch.maximum(amax[n], a) if n in amax else a
            hooks.append(m.register_forward_hook(h))
    enc.encode(calib)
    for h in hooks: h.remove()
    return amax

def variant(name, per_channel=True, full=False, alpha=None, skip=()):
    enc = Encoder.from_pretrained(d)
    amax = calibrate(enc) if alpha is not None else None
    for n, m in list(enc.model.named_modules()):
        for cn, c in list(m.named_children()):
            full_n = f"{n}.{cn}" if n else cn
            if isinstance(c, torch.nn.Linear) and not any(s in full_n for s in skip) and full_n != 'pooler.dense':
                if alpha is not None:
                    setattr(m, cn, Smooth(c, amax[full_n], alpha, per_channel, full))
                else:
                    qc = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
                    q = quantize_dynamic(torch.nn.Sequential(c), {torch.nn.Linear: qc}, dtype=torch.qint8)[0]
                    if full:
                        class F(torch.nn.Module):
                            def __init__(s, q): super().__init__(); s.q = q
                            def forward(s, x): return torch.ops.quantized.linear_dynamic(x, s.q._packed_params._packed_params, reduce_range=False)
                        q = F(q)
                    setattr(m, cn, q)
    out = enc.encode(evalt)
    cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
    return name, enc, cos

vs = [variant("per-tensor", False), variant("per-channel"), variant("pc-fullrange", full=True),
      variant("smooth.5", alpha=0.5), variant("smooth.5-full", alpha=0.5, full=True),
      variant("smooth.5-full-nodown", alpha=0.5, full=True, skip=("down",)),
      variant("pc-full-nodown", full=True, skip=("down",)),
      variant("smooth.7-full", alpha=0.7, full=True), variant("smooth.3-full", alpha=0.3, full=True)]
for name, enc, cos in vs:
    print(f"{name:24s} min {cos.min():.4f} mean {cos.mean():.4f} p1 {np.percentile(cos,1):.4f}", flush=True)
if "--time" in sys.argv:
    sides = {"fp32": fp, **{n: e for n, e, _ in vs}}
    ts = {k: [] for k in sides}
    for r in range(3):
        for k in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            t = time.process_time(); sides[k].encode(evalt[:256]); ts[k].append(time.process_time() - t)
    for k in ts:
        print(f"{k:24s} cpu {np.median(ts[k]):.2f}s  speedup {np.median(ts['fp32'])/np.median(ts[k]):.2f}x")
