"""The training loop: loss goes down, a tiny model overfits a tiny corpus, accumulation is exact,
fp16 loss scaling skips overflow steps, a NaN loss stops the run, the budget ends it on time."""
import json
import random
import time
from pathlib import Path

import pytest
import torch
from train_utils import TINY, cli, make_shards, pretrain_args, shards, weights  # noqa: F401 (fixture)

from berts.errors import UserError


def records(out: Path, kind: str = "train") -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def make_trainer(shards: Path, out: Path, *extra: str):  # noqa: F811
    from berts.config.schema import PretrainConfig, load_config
    from berts.train.distributed import Dist
    from berts.runs.pretrain import pretraining_run

    cfg = load_config(PretrainConfig, None, TINY + [f"data.shards={shards}", f"log.out={out}", *extra])
    return pretraining_run(cfg, None, Dist())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_loss_goes_down_and_outputs(shards, tmp_path, precision):  # noqa: F811
    out = tmp_path / "run"
    plots = "true" if precision == "fp32" else "false"
    assert cli(pretrain_args(shards, out, "train.max_steps=60", "train.batch_size=16", "log.every=10",
                             f"impl.precision={precision}", f"log.plots={plots}", f"log.tensorboard={plots}")) == 0
    train = records(out)
    assert [r["step"] for r in train] == [10, 20, 30, 40, 50, 60]
    assert train[-1]["loss"] < train[0]["loss"] - 0.2
    for key in ("mlm", "nsp", "mlm_acc", "lr", "grad_norm", "tokens_per_s", "tokens", "epoch"):
        assert key in train[-1]
    assert (out / "config.yaml").is_file() and "precision: " + precision in (out / "config.yaml").read_text()
    import berts

    model = berts.load(out / "final")
    assert type(model).__name__ == "BertForPreTraining" and model.config.hidden_size == 32
    assert (out / "final" / "tokenizer.json").is_file()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-60"]
    if precision == "fp32":
        assert {p.name for p in (out / "plots").iterdir()} >= {"loss.png", "lr.png"}
        assert any((out / "tb").iterdir())


@pytest.mark.slow
def test_tiny_model_overfits_tiny_corpus(tmp_path):
    """Like Google's sample_text check: MLM accuracy above 0.9 on a memorisable corpus."""
    sentences = ["The quick brown fox jumps over the lazy dog.", "A small red bird sang in the old tree.",
                 "My cat sleeps near the warm green house.", "Big blue river runs under the stone hill.",
                 "Her dog ran slowly across the wide field.", "The old man reads a long book at night."]
    rng = random.Random(0)
    docs = ["\n".join(rng.choice(sentences) for _ in range(rng.randint(4, 8))) for _ in range(20)]
    corpus = tmp_path / "sample_text.txt"
    corpus.write_text("\n\n".join(docs) + "\n")
    data = make_shards(tmp_path, corpus, vocab_size=200)
    out = tmp_path / "run"
    assert cli(pretrain_args(data, out, "train.max_steps=500", "train.batch_size=32", "model.hidden_size=64",
                             "model.intermediate_size=256", "model.hidden_dropout_prob=0",
                             "model.attention_probs_dropout_prob=0", "optim.lr=3e-3", "schedule.name=constant",
                             "schedule.warmup=0.05", "log.every=50", f"data.eval_shards={data}")) == 0
    train, evals = records(out), records(out, "eval")
    assert train[0]["mlm_acc"] < 0.3 and train[-1]["mlm_acc"] > 0.9
    assert evals[-1]["step"] == 500 and evals[-1]["mlm_acc"] > 0.9 and evals[-1]["nsp_acc"] > 0.8


def test_gradient_accumulation_is_exact(shards, tmp_path):  # noqa: F811
    """2 micro-batches of 4 = one batch of 8: the MLM mean is over all masked tokens of the step,
    whatever each micro-batch holds (static masks and fixed width make the batches identical)."""
    common = ["train.max_steps=4", "data.static_masking=true", "data.pad_to_multiple_of=32",
              "model.hidden_dropout_prob=0", "model.attention_probs_dropout_prob=0"]
    assert cli(pretrain_args(shards, tmp_path / "a", *common)) == 0
    assert cli(pretrain_args(shards, tmp_path / "b", *common, "train.grad_accum=2")) == 0
    a, b = weights(tmp_path / "a" / "final"), weights(tmp_path / "b" / "final")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-6, worst
    assert records(tmp_path / "a")[-1]["loss"] == pytest.approx(records(tmp_path / "b")[-1]["loss"], abs=1e-5)


class _Inject:
    """Wraps a task: calls ``hook(call_number, modules, compute)`` before each loss (``modules``:
    the task's trainable modules, ``modules.model`` the model)."""

    def __init__(self, task, hook):
        self.task, self.hook, self.calls = task, hook, 0

    def __getattr__(self, name):
        return getattr(self.task, name)

    def loss(self, modules, batch):
        self.calls += 1
        return self.hook(self.calls, modules, lambda: self.task.loss(modules, batch))


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fp16_scaler_skips_an_overflow_step(shards, tmp_path):  # noqa: F811
    trainer = make_trainer(shards, tmp_path / "run", "impl.precision=fp16", "train.max_steps=8", "log.every=1")
    assert trainer.engine.precision == "fp16" and trainer.engine.scaler is not None
    param = trainer.model.bert.encoder.layers[0].ffn.up.weight
    seen = {}

    def hook(call, modules, compute):
        if call == 5:  # step 5: its gradients overflow
            seen["before"] = _snapshot(modules.model)
            seen["handle"] = param.register_hook(lambda g: g * float("inf"))
        if call == 6:
            seen["handle"].remove()
            seen["after"] = _snapshot(modules.model)
        return compute()

    trainer.task = _Inject(trainer.task, hook)
    trainer.fit()
    before, after = seen["before"], seen["after"]
    assert all(torch.equal(before[k], after[k]) for k in before), "the overflow step changed the weights"
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())
    final = _snapshot(trainer.model)
    assert not all(torch.equal(after[k], final[k]) for k in after), "training did not go on"
    train = records(tmp_path / "run")
    assert [r["skipped_steps"] for r in train] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert train[3]["loss_scale"] == 65536.0 and train[4]["loss_scale"] == 32768.0  # backed off once
    assert all(r["loss"] == r["loss"] for r in train)  # the loss itself stayed finite
    assert int(trainer.engine.optimizer.state[param]["step"]) == 7  # the optimizer saw 7 of 8 steps


@pytest.mark.parametrize("log_every", [5, 50])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(shards, tmp_path, log_every):  # noqa: F811
    out = tmp_path / "run"
    trainer = make_trainer(shards, out, "train.max_steps=30", "train.save_every=5", f"log.every={log_every}")
    trainer.task = _Inject(trainer.task, lambda call, modules, compute: (
        lambda loss, logs: ({k: v * float("nan") for k, v in loss.items()} if call >= 8 else loss, logs))(*compute()))
    with pytest.raises(UserError) as info:
        trainer.fit()
    message = str(info.value)
    assert "the loss became nan" in message and "step-5" in message and "\n" not in message
    assert "between steps 6 and 10" in message or "at step 10" in message
    from berts.train import checkpoint

    latest = checkpoint.find_latest(out)
    assert latest.name == "step-5"
    state = checkpoint.read_state(latest)
    assert state["step"] == 5
    assert all(torch.isfinite(v).all() for v in weights(latest).values())
    assert not (out / "final").exists() and not (out / "checkpoints" / "step-10").exists()


def test_budget_ends_on_time_with_a_final_checkpoint(shards, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    t = time.perf_counter()
    assert cli(pretrain_args(shards, out, "log.every=10", "schedule.warmup=0.1")
               + ["--budget", "3s"]) == 0
    wall = time.perf_counter() - t
    result = json.loads((out / "final" / "train_result.json").read_text())
    assert result["stopped"] == "budget spent"
    # on the real clock only loose bounds hold on a loaded machine (a step may take far longer
    # than the one before it); the exact clock logic is checked on a fake clock below
    assert 0 < result["elapsed"] <= 3.0 + 10 and wall < 3.0 + 30
    steps = result["step"]
    assert steps > 0 and (out / "checkpoints" / f"step-{steps}").is_dir()
    assert "max_steps: null" in (out / "config.yaml").read_text() and "budget: 3s" in (out / "config.yaml").read_text()


def test_budget_stops_before_the_step_that_would_not_fit(shards, tmp_path, monkeypatch):  # noqa: F811
    """A fake clock that moves 0.125 s per step and not otherwise: the run stops when the last
    step's time would cross the 3 s budget, after exactly 23 steps (23 x 0.125 = 2.875, and
    2.875 + 0.125 >= 3), and its schedule followed the clock down."""
    from berts.train.engine import Engine
    from berts.train.trainer import Trainer

    now = [0.0]
    step = Engine.step

    def timed_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        now[0] += 0.125
        return out

    monkeypatch.setattr(Trainer, "clock", staticmethod(lambda: now[0]))
    monkeypatch.setattr(Engine, "step", timed_step)
    out = tmp_path / "run"
    assert cli(pretrain_args(shards, out, "log.every=10", "schedule.warmup=0.1") + ["--budget", "3s"]) == 0
    result = json.loads((out / "final" / "train_result.json").read_text())
    assert result["stopped"] == "budget spent" and result["step"] == 23 and result["elapsed"] == 2.875
    train = records(out)
    assert [r["step"] for r in train] == [10, 20, 23]
    # linear schedule, warm-up 10%: the last step ran at progress 22 x 0.125 / 3
    peak = 1e-3
    assert train[-1]["lr"] == pytest.approx(peak * (1 - 22 * 0.125 / 3) / 0.9)
    assert (out / "checkpoints" / "step-23").is_dir()


@pytest.mark.parametrize("objective, extra, model, parts", [
    # SOP data trains the same head under ALBERT's name (sentence_order_label): part and metric "sop"
    ("sop", ["data.masking=span", "data.sbo=true", "optim.name=lamb", "schedule.name=one_cycle"],
     "BertForPreTraining", {"mlm", "sop", "sbo", "mlm_acc", "sop_acc", "sbo_acc"}),
    ("none", ["data.masking=wwm", "schedule.name=constant"], "BertForMaskedLM", {"mlm", "mlm_acc"}),
])
def test_objectives_and_optimizers(tmp_path, objective, extra, model, parts):
    from train_utils import write_corpus

    data = make_shards(tmp_path, write_corpus(tmp_path / "corpus.txt", docs=20), objective=objective)
    out = tmp_path / "run"
    assert cli(pretrain_args(data, out, "train.max_steps=10", *extra)) == 0
    last = records(out)[-1]
    assert parts <= set(last) and "nsp" not in set(last) - parts
    assert json.loads((out / "final" / "config.json").read_text())["architectures"] == [model]
    if objective == "sop":
        assert json.loads((out / "final" / "config.json").read_text())["span_boundary_objective"] is True
    # MLM only on NSP data: the sentence labels are dropped, not trained on
    if objective == "none":
        nsp = make_shards(tmp_path, tmp_path / "corpus.txt", objective="nsp")
        assert cli(pretrain_args(nsp, tmp_path / "mlm-only", "train.max_steps=5", "data.objective=none")) == 0
        assert "nsp" not in records(tmp_path / "mlm-only")[-1]
        assert cli(pretrain_args(nsp, tmp_path / "bad", "train.max_steps=5", "data.objective=sop")) == 2


def test_length_bucketing_reaches_the_sampler(shards, tmp_path):  # noqa: F811
    """data.bucket_size N: the sampler sorts by length within chunks of N global batches, so the
    batches carry less padding than shuffled ones (the same examples, the same seed)."""
    import numpy as np

    plain = make_trainer(shards, tmp_path / "a", "train.max_steps=1")
    bucketed = make_trainer(shards, tmp_path / "b", "train.max_steps=1", "data.bucket_size=4")
    assert plain.sampler.bucket_size == 0 and plain.sampler.lengths is None
    lengths = plain.task.train_dataset.lengths
    assert bucketed.sampler.bucket_size == 4 and np.array_equal(bucketed.sampler.lengths, lengths)

    def padding(sampler):
        return sum(int(lengths[i].max()) * len(i) - int(lengths[i].sum()) for _, _, i in sampler)

    assert padding(bucketed.sampler) < padding(plain.sampler)
    with pytest.raises(UserError, match="data.bucket_size must not be negative"):
        make_trainer(shards, tmp_path / "c", "data.bucket_size=-1")


def test_model_config_from_a_file(shards, tmp_path):  # noqa: F811
    """model.config names a config.json (or a model directory): its sizes are used, the data's vocabulary wins."""
    from berts import BertConfig

    path = tmp_path / "config.json"
    path.write_text(json.dumps(BertConfig(vocab_size=7, hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=40, max_position_embeddings=64).to_dict()))
    sets = [s for s in TINY if not s.startswith(("model.hidden_size", "model.num_hidden_layers",
                                                   "model.num_attention_heads", "model.intermediate_size"))]
    from berts.config.schema import PretrainConfig, load_config
    from berts.train.distributed import Dist
    from berts.runs.pretrain import pretraining_run

    cfg = load_config(PretrainConfig, None, sets + [f"data.shards={shards}", f"log.out={tmp_path / 'run'}",
                                                    f"model.config={path}", "train.max_steps=1"])
    model = pretraining_run(cfg, None, Dist()).task.model
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size) == (24, 1, 40)
    assert c.vocab_size == 60  # the data's tokenizer


def test_auto_precision_on_cpu(monkeypatch):
    """impl.precision auto on a CPU: bf16 where AMX bf16 tiles exist and the model is wide enough
    for its matmuls to dominate (hidden >= 256: measured 1.31x at 384, 0.58x at 128), else fp32."""
    import berts.train.engine as engine

    cpu = torch.device("cpu")
    for amx, hidden, want in ((True, 384, "bf16"), (True, 256, "bf16"), (True, 128, "fp32"), (False, 768, "fp32"),
                              (True, None, "fp32")):
        monkeypatch.setattr(engine, "cpu_has_amx", lambda amx=amx: amx)
        assert engine.resolve_precision("auto", cpu, hidden) == want, (amx, hidden)
        assert engine.resolve_precision("fp32", cpu, hidden) == "fp32"
