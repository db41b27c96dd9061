"""The CUDA paths, proven on a GPU: `pytest -m cuda` (skipped, not failed, without one; see
conftest.py). The same equality tests as on CPU, on CUDA:

* fast paths (unpad, pack, sparse output) vs the plain path: fp32 within 1e-4 (TF32 off: the
  reference is true fp32), bf16 autocast within 5e-2 absolute + 2e-2 relative (bf16 keeps 8 bits
  of mantissa, a relative step of 2^-8 = 3.9e-3 per rounding; both paths round in different
  orders through 2 layers, so a few steps of an O(1) value);
* fp16 with loss scaling: without a scale, small gradients underflow to zero in fp16 (shown on a
  real model); with GradScaler they do not; a run whose first steps overflow skips them, backs
  the scale off and trains on;
* the SDPA kernel that runs, checked (each backend forced alone with sdpa_kernel, and the
  profiler's kernel names for the default choice), not assumed;
* torch.compile equal to eager, with no silent fallback;
* NCCL DDP and FSDP2 with 2 ranks equal to one process (skipped unless 2 GPUs);
* generation with the KV cache on CUDA: the ids without the cache and on CPU;
* ONNX export of a model pretrained on CUDA, checked in onnxruntime.

A few cheap ones also run on CPU (the "cpu" parameter, not marked cuda) as a dry check that the
test itself is right; the rest need a GPU to mean anything.
"""
import json
import subprocess
import warnings

import pytest
import torch

from berts import BertConfig, BertForPreTraining
from conftest import padded_batch, randomize
from test_fastpath import FAST, PLAIN, labels_for, run
from train_utils import PYTHON, ROOT, cli, env, pretrain_args, shards, weights  # noqa: F401 (fixture)

CUDA = pytest.param("cuda", marks=pytest.mark.cuda)
DEVICES = ["cpu", CUDA]  # cpu: the dry check, cheap
TOL = {"fp32": dict(atol=1e-4, rtol=0.0), "bf16": dict(atol=5e-2, rtol=2e-2)}


@pytest.fixture(autouse=True)
def true_fp32():
    """TF32 off for the fp32 comparisons (it rounds matmul inputs to 10 bits of mantissa)."""
    if not torch.cuda.is_available():
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def config(**kw):
    return BertConfig(**{**dict(vocab_size=99, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=128, max_position_embeddings=64,
                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), **kw})


def on(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


# ----------------------------------------------------------------------------- fast paths
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("fast", FAST, ids=["unpad", "pack", "sparse_output", "all"])
@pytest.mark.parametrize("device", DEVICES)
def test_fast_paths_equal_plain(device, precision, fast):
    model = randomize(BertForPreTraining(config())).to(device)
    batch = on(dict(padded_batch(), **labels_for(BertForPreTraining, padded_batch())), device)
    dtype = {"fp32": None, "bf16": torch.bfloat16}[precision]
    with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
        plain = run(model, batch, PLAIN, train=True)
        got = run(model, batch, fast, train=True)
    assert got.keys() <= plain.keys()
    for k in got:
        torch.testing.assert_close(got[k].float(), plain[k].float(), **TOL[precision], msg=lambda m: f"{k}: {m}")


# ----------------------------------------------------------------------------- fp16 and loss scaling
# Measured on CPU (fp16 autocast, the same tiny model): x 2^-16 loses 70% of the matrices'
# nonzero gradients without a scale and 0.3% with GradScaler's 2^16 (x 2^-14: 45% / 0.09%;
# x 2^-20: 97% / 3.4%, where 2^16 is no longer enough and the scaler would grow it).
SMALL = 2.0 ** -16


def fp16_grads(device, scale: float | None):
    """A real (tiny) model's gradients under fp16 autocast, of a loss multiplied by SMALL (the
    size of gradients late in training, scaled down here so that a 2-layer model shows it):
    without a scale they underflow in fp16's backward; ``scale`` is a GradScaler's."""
    torch.manual_seed(0)
    model = randomize(BertForPreTraining(config())).to(device)
    batch = on(dict(padded_batch(), **labels_for(BertForPreTraining, padded_batch())), device)
    small = SMALL
    with torch.autocast(device, dtype=torch.float32, enabled=False):
        model(**batch).loss.mul(small).backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    scaler = torch.amp.GradScaler(device, init_scale=scale, growth_interval=1000) if scale else None
    with torch.autocast(device, dtype=torch.float16):
        loss = model(**batch).loss.mul(small)
    (scaler.scale(loss) if scaler else loss).backward()
    if scaler:
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        scaler.unscale_(opt)
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    # the share of weights (matrices: the ones autocast runs in fp16) whose gradient is nonzero in
    # fp32 but came out exactly zero
    lost = sum(int(((ref[n] != 0) & (got[n] == 0)).sum()) for n in ref if ref[n].dim() == 2)
    total = sum(int((ref[n] != 0).sum()) for n in ref if ref[n].dim() == 2)
    err = max(float((got[n] - ref[n]).abs().max() / ref[n].abs().max().clamp_min(1e-30)) for n in ref)
    return lost / total, err


@pytest.mark.parametrize("device", DEVICES)
def test_fp16_underflows_without_scaling_not_with(device):
    lost_plain, _ = fp16_grads(device, None)
    lost_scaled, err = fp16_grads(device, 2.0 ** 16)
    assert lost_plain > 0.5, lost_plain  # most of the gradient is gone without a scale
    assert lost_scaled < 0.01, lost_scaled  # with it, nearly none
    assert err < 2e-2, err  # and the unscaled gradients are fp32's within fp16's precision


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_fp16_run_recovers_from_overflow(shards, tmp_path, device):  # noqa: F811
    """init_scale 2^32: the first steps overflow (inf gradients), are skipped, the scale backs off
    (halves each time) and the run trains on to a finite loss. (With 2^40 and 30 steps, 23 were
    skipped and the 7 left, at the tail of the linear decay, moved the loss by less than its noise:
    the comparison below failed or passed by chance.)"""
    out = tmp_path / "fp16"
    assert cli(pretrain_args(shards, out, "train.max_steps=60", "log.every=1", f"impl.device={device}",
                             "impl.precision=fp16", "impl.init_scale=4294967296")) == 0
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    recs = [r for r in recs if "loss_scale" in r]
    assert recs[0]["skipped_steps"] >= 1 and recs[-1]["loss_scale"] < 2.0 ** 32
    skipped = recs[-1]["skipped_steps"]
    assert skipped < 30 and all(r["skipped_steps"] == skipped for r in recs[-5:])  # it stopped skipping
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in recs[-5:])
    # and learned after it (means of 5 steps: one batch's loss is too noisy to compare with another's)
    first, last = [r["loss"] for r in recs[skipped:skipped + 5]], [r["loss"] for r in recs[-5:]]
    assert sum(last) / 5 < sum(first) / 5


# ----------------------------------------------------------------------------- SDPA kernels
@pytest.mark.cuda
@pytest.mark.parametrize("unpad", [False, True], ids=["padded", "unpad"])
@pytest.mark.parametrize("masked", [True, False], ids=["mask", "no-mask"])
def test_each_sdpa_backend_runs_and_agrees(unpad, masked):
    """Each backend forced alone (sdpa_kernel([one])) runs the model, or raises "No available
    kernel", and those that run agree. With a padding mask (the plain and unpadded paths both
    pass one) the memory-efficient kernel must run it; flash takes no mask, so it is required
    only for full rows passed without attention_mask. What ran is printed (-s) for the report."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = randomize(BertForPreTraining(config())).cuda().eval()
    model.set_fast_path(unpad=unpad, pack=False, sparse_output=False)
    batch = on(padded_batch(), "cuda")
    real = batch["attention_mask"].bool()
    if not masked:
        batch.pop("attention_mask")
        real = torch.ones_like(real)
    outs, failed = {}, {}
    for backend in (SDPBackend.MATH, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel([backend]):
            try:
                outs[backend] = model(**batch).prediction_logits[real].float()
            except RuntimeError as exc:
                failed[backend] = str(exc)[:200]
    print(f"unpad={unpad} masked={masked}: ran {[b.name for b in outs]}, not {[b.name for b in failed]}")
    need = {SDPBackend.MATH, SDPBackend.EFFICIENT_ATTENTION} | ({SDPBackend.FLASH_ATTENTION} if not masked else set())
    assert need <= outs.keys(), failed
    for backend, out in outs.items():
        torch.testing.assert_close(out, outs[SDPBackend.MATH], **TOL["bf16"])


@pytest.mark.cuda
def test_default_sdpa_choice_is_a_fused_kernel():
    """The profiler's CUDA kernels for a bf16 training step: a fused attention kernel (flash or
    memory-efficient), not the math path's separate softmax."""
    from torch.profiler import ProfilerActivity, profile

    model = randomize(BertForPreTraining(config())).cuda().train()
    batch = on(dict(padded_batch(), **labels_for(BertForPreTraining, padded_batch())), "cuda")
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(**batch).loss.backward()
        torch.cuda.synchronize()
    names = " ".join(e.key.lower() for e in prof.key_averages())
    assert "flash" in names or "fmha" in names or "efficient_attention" in names or "cutlass" in names, names[:2000]


# ----------------------------------------------------------------------------- compile
@pytest.mark.cuda
def test_compile_equals_eager_on_cuda():
    from berts.model.encoder import compile_model

    model = randomize(BertForPreTraining(config())).cuda()
    batch = on(dict(padded_batch(), **labels_for(BertForPreTraining, padded_batch())), "cuda")
    eager = run(model, batch, PLAIN, train=True)
    compile_model(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = run(model, batch, PLAIN, train=True)
    fell_back = [str(w.message) for w in caught if "torch.compile" in str(w.message)]
    assert not fell_back, fell_back  # compile_model warns when it falls back to eager: a failure here
    for k in got:
        torch.testing.assert_close(got[k], eager[k], **TOL["fp32"], msg=lambda m: f"{k}: {m}")


# ----------------------------------------------------------------------------- NCCL DDP
SAME_BATCHES = ["train.max_steps=4", "train.batch_size=8", "model.hidden_dropout_prob=0",
                "model.attention_probs_dropout_prob=0", "log.every=1", "impl.precision=fp32"]


@pytest.mark.cuda
@pytest.mark.ddp
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL DDP needs 2 GPUs")
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_nccl_two_ranks_match_one(shards, tmp_path, strategy):  # noqa: F811
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli(pretrain_args(shards, one, *SAME_BATCHES, "impl.device=cuda")) == 0
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "berts",
           *map(str, pretrain_args(shards, two, *SAME_BATCHES, "impl.device=cuda", "train.grad_accum=2",
                                   f"train.strategy={strategy}"))]
    proc = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a, b = weights(one / "final"), weights(two / "final")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst  # NCCL's reduction order differs from one process' sum


# ----------------------------------------------------------------------------- generation
@pytest.mark.cuda
@pytest.mark.parametrize("how", [dict(), dict(num_beams=3)], ids=["greedy", "beam"])
def test_generation_on_cuda(how):
    from berts.model.heads import BertForUnifiedLM
    from berts.serve.generate import generate_ids

    m = randomize(BertForUnifiedLM(config(vocab_size=60)), 1).eval()
    kw = dict(mode="left-to-right", eos_token_id=3, max_new_tokens=12, **how)
    on_cpu = generate_ids(m, [2, 11, 12], **kw)
    m.cuda()
    assert generate_ids(m, [2, 11, 12], **kw) == on_cpu
    assert generate_ids(m, [2, 11, 12], use_cache=False, **kw) == on_cpu


# ----------------------------------------------------------------------------- ONNX from a CUDA run
@pytest.mark.onnx
@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_onnx_export_of_a_cuda_trained_model(shards, tmp_path, device):  # noqa: F811
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from berts.serve.export import export_onnx

    out = tmp_path / "run"
    assert cli(pretrain_args(shards, out, "train.max_steps=6", f"impl.device={device}", "impl.precision=bf16")) == 0
    r = export_onnx(out / "final", tmp_path / "m.onnx", texts=["the cat sat.", "a big red house near the river."] * 4)
    assert r["max_abs_diff"] <= 1e-4, r
