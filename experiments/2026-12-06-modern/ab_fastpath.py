"""A/B in one process: berts' modern forward with this branch's fast-path changes (rope_qkv, the
[h, 3h] band, the dense band up to 4 h tokens) against the same model with the code they replaced
(copied below from commit b923e13), alternated, one thread, median of rounds; plus where the time
of one 2,048-token forward goes (torch.profiler, self CPU time per op).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-modern/ab_fastpath.py --rounds 9
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from berts.model import encoder
from berts.model.attention import apply_rope, band_mask
from berts.model.config import preset
from berts.model.encoder import BertModel


# ------------------------------------------------------------------ the code before (b923e13)
def old_rope_qkv(qkv, cos, sin, heads):
    qkv = qkv.unflatten(-1, (3, heads, qkv.shape[-1] // (3 * heads)))
    cos, sin = cos[..., None, :], sin[..., None, :]
    return torch.stack([apply_rope(qkv[..., 0, :, :], cos, sin), apply_rope(qkv[..., 1, :, :], cos, sin),
                        qkv[..., 2, :, :]], dim=-3).flatten(-3)


def old_local_attention(q, k, v, mask=None, *, window, dropout_p=0.0):
    r, nh, s, d = q.shape
    h = max(window // 2, 1)
    if s <= h + 1:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else band_mask(s, window, mask),
                                              dropout_p=dropout_p)
    nb = -(-s // h)
    extra = nb * h - s
    dev = q.device

    def windows(x):
        x = F.pad(x, (0, 0, h, extra + h))
        return x.unfold(-2, 3 * h, h).transpose(-1, -2)

    qb = F.pad(q, (0, 0, 0, extra)).reshape(r, nh, nb, h, d)
    kb, vb = windows(k), windows(v)
    qpos = torch.arange(nb * h, device=dev).view(nb, h)
    kpos = torch.arange(-h, (nb + 1) * h, device=dev).unfold(0, 3 * h, h)
    same = qpos[:, :, None] == kpos[:, None, :]
    key_ok = (kpos >= 0) & (kpos < s)
    allowed = ((qpos[:, :, None] - kpos[:, None, :]).abs() <= h) & key_ok[:, None, :]
    if mask is not None:
        m = mask.bool()
        if m.shape[-2] == 1:
            mk = F.pad(m[:, :, 0], (h, extra + h)).unfold(-1, 3 * h, h)[:, :, :, None, :]
        else:
            mp = F.pad(m, (h, extra + h, 0, extra))
            mk = mp[:, :, qpos[:, :, None], (kpos + h)[:, None, :]]
        allowed = allowed & (mk | same)
    allowed = allowed | (same & (qpos >= s)[:, :, None])
    allowed = allowed.expand(r, 1, nb, h, 3 * h)
    flat = lambda x: x.transpose(1, 2).reshape(r * nb, *x.shape[1:2], *x.shape[3:])  # noqa: E731
    ctx = F.scaled_dot_product_attention(flat(qb), flat(kb), flat(vb), attn_mask=flat(allowed), dropout_p=dropout_p)
    return ctx.view(r, nb, nh, h, d).transpose(1, 2).reshape(r, nh, nb * h, d)[:, :, :s]


NEW = {"rope_qkv": encoder.rope_qkv, "local_attention": encoder.local_attention}
OLD = {"rope_qkv": old_rope_qkv, "local_attention": old_local_attention}


def use(code: dict) -> None:
    for name, fn in code.items():
        setattr(encoder, name, fn)


def batch(rows: list[int], width: int, vocab: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (len(rows), width), generator=g)
    mask = (torch.arange(width)[None, :] < torch.tensor(rows)[:, None]).long()
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = preset("tiny-modern")
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.set_fast_path(unpad=True, pack=True)
    cases = {"L=128, 32 rows": batch([128] * 32, 128, config.vocab_size),
             "L=512, 32 rows": batch([512] * 32, 512, config.vocab_size),
             "L=2048, batch 1": batch([2048], 2048, config.vocab_size),
             "L=2048, mixed": batch([2048, 1024, 512, 256], 2048, config.vocab_size)}
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "rounds": args.rounds, "rows": []}
    with torch.inference_mode():
        for name, b in cases.items():
            outs = {}
            for side, code in (("old", OLD), ("new", NEW)):
                use(code)
                outs[side] = model(**b).last_hidden_state
            diff = float((outs["old"] - outs["new"]).abs().max())
            times = {"old": [], "new": []}
            for r in range(args.rounds + 1):  # round 0: warm-up
                for side in (("old", "new") if r % 2 else ("new", "old")):
                    use(OLD if side == "old" else NEW)
                    t = time.perf_counter()
                    model(**b)
                    if r:
                        times[side].append(time.perf_counter() - t)
            real = int(b["attention_mask"].sum())
            row = {"case": name, "real_tokens": real, "max_abs_diff": diff,
                   **{f"{s}_tokens_per_s": real / statistics.median(t) for s, t in times.items()}}
            row["speedup"] = row["new_tokens_per_s"] / row["old_tokens_per_s"]
            result["rows"].append(row)
            print(f"{name}: old {row['old_tokens_per_s']:.0f} tok/s, new {row['new_tokens_per_s']:.0f} tok/s "
                  f"({row['speedup']:.2f}x), max |diff| {diff:.1e}", flush=True)
        use(NEW)
        from torch.profiler import ProfilerActivity, profile

        b = cases["L=2048, batch 1"]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                model(**b)
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ops)
    result["profile_2048"] = [{"op": e.key, "share": e.self_cpu_time_total / total, "calls_per_forward": e.count / 3}
                              for e in ops[:10]]
    for e in result["profile_2048"]:
        print(f"  {e['op']:55s} {100 * e['share']:5.1f}%  {e['calls_per_forward']:.0f} calls")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
