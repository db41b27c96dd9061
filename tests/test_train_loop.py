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


def make_trainer(shards: Path, out: Path, *extra: str):
    from berts.commands.pretrain import make_trainer as make
    from berts.train.config import PretrainConfig, load_config
    from berts.train.distributed import Dist

    cfg = load_config(PretrainConfig, None, TINY + [f"data.shards={shards}", f"log.out={out}", *extra])
    return make(cfg, None, Dist())


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
    """Wraps a task: calls ``hook(call_number, model)`` before each loss."""

    def __init__(self, task, hook):
        self.task, self.hook, self.calls = task, hook, 0

    def __getattr__(self, name):
        return getattr(self.task, name)

    def loss(self, model, batch):
        self.calls += 1
        return self.hook(self.calls, model, lambda: self.task.loss(model, batch))


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fp16_scaler_skips_an_overflow_step(shards, tmp_path):  # noqa: F811
    trainer = make_trainer(shards, tmp_path / "run", "impl.precision=fp16", "train.max_steps=8", "log.every=1")
    assert trainer.precision == "fp16" and trainer.scaler is not None
    param = trainer.model.bert.encoder.layers[0].ffn.up.weight
    seen = {}

    def hook(call, model, compute):
        if call == 5:  # step 5: its gradients overflow
            seen["before"] = _snapshot(model)
            seen["handle"] = param.register_hook(lambda g: g * float("inf"))
        if call == 6:
            seen["handle"].remove()
            seen["after"] = _snapshot(model)
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
    assert int(trainer.optimizer.state[param]["step"]) == 7  # the optimizer saw 7 of 8 steps


@pytest.mark.parametrize("log_every", [5, 50])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(shards, tmp_path, log_every):  # noqa: F811
    out = tmp_path / "run"
    trainer = make_trainer(shards, out, "train.max_steps=30", "train.save_every=5", f"log.every={log_every}")
    trainer.task = _Inject(trainer.task, lambda call, model, compute: (
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
    assert 2.0 < result["elapsed"] <= 3.0 + 0.5 and wall < 3.0 + 5.0
    steps = result["step"]
    assert steps > 20 and (out / "checkpoints" / f"step-{steps}").is_dir()
    train = records(out)
    peak = max(r["lr"] for r in train)
    assert train[-1]["lr"] < 0.25 * peak  # the schedule followed the clock down to (almost) zero
    assert "max_steps: null" in (out / "config.yaml").read_text() and "budget: 3s" in (out / "config.yaml").read_text()


@pytest.mark.parametrize("objective, extra, model, parts", [
    ("sop", ["data.masking=span", "data.sbo=true", "optim.name=lamb", "schedule.name=one_cycle"],
     "BertForPreTraining", {"mlm", "nsp", "sbo", "mlm_acc", "nsp_acc"}),
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
