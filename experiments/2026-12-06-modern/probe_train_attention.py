"""Attention alone, forward + backward, one thread: the one packed SDPA call with the block mask vs
varlen_attention per sequence, on 32/16/4 rows of lengths spread over S/4 .. S, attention dropout 0 and
0.1 (fast_dropout). The numbers behind encoder.PACKED_CALL_UPTO.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-modern/probe_train_attention.py
"""
import torch, time, statistics
torch.set_num_threads(1)
from berts.model.padding import unpad_index
from berts.model.attention import attention, varlen_attention
heads, d = 2, 64
for S, rows in ((128, 32), (256, 16), (512, 16), (1024, 4), (2048, 4)):
    lengths = [S // 4 + (i * (S - S // 4)) // (rows - 1) for i in range(rows)]
    mask = (torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]).long()
    T = int(mask.sum())
    qkv0 = torch.randn(T, 3 * heads * d)
    def packed(p):
        u = unpad_index(mask, pack=True)
        qkv = qkv0.clone().requires_grad_()
        r = u.to_rows(qkv)
        q, k, v = r.view(u.rows, S, 3, heads, d).permute(2, 0, 3, 1, 4)
        c, _ = attention(q, k, v, u.mask, dropout_p=p, fast_dropout=True)
        u.from_rows(c.transpose(1, 2).reshape(u.rows, S, heads * d)).sum().backward()
    def perseq(p):
        qkv = qkv0.clone().requires_grad_()
        varlen_attention(qkv, lengths, heads, dropout_p=p, fast_dropout=True).sum().backward()
    u = unpad_index(mask, pack=True)
    for p in (0.0, 0.1):
        ts = {f: [] for f in (packed, perseq)}
        for r in range(7):
            for f in ts:
                t = time.perf_counter(); f(p); ts[f].append(time.perf_counter() - t)
        print(S, rows, "packed rows", u.rows, "mask MiB", u.rows * S * S / 2**20, p, {f.__name__: round(statistics.median(v) * 1e3, 2) for f, v in ts.items()})
