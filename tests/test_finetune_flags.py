"""Fine-tuning the way users know it (issue 15): flags with transformers' / UER's names, each
reaching its config key; --show-config; the resolved values on the start line; runs without a
resume checkpoint; label smoothing, class weights and the positive label, by hand; the plots;
fine-tuning from random weights (--from-scratch)."""
import json
import random
import string

import numpy as np
import pytest
import torch
from train_utils import cli

from berts.config.schema import FinetuneConfig, PretrainConfig, load_config

WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.every=5"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny transformers BertModel directory (no classification head) with its tokenizer."""
    import transformers

    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("flags")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS) | {"cat"}), *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(root / "bert")
    tok.save_pretrained(root / "bert")
    return root / "bert"


def table(path, n, seed, p_cat=0.3):
    rng = random.Random(seed)
    rows = ["sentence\tlabel"]
    for _ in range(n):
        cat = rng.random() < p_cat
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 8))]
        if cat:
            words[rng.randrange(len(words))] = "cat"
        rows.append(" ".join(words) + "\t" + ("pos" if cat else "neg"))
    path.write_text("\n".join(rows) + "\n")
    return path


def parsed(command, *argv):
    from berts.cli import build_parser

    return build_parser().parse_args([command, *argv])


def config_of(command, *argv):
    """The config a command line resolves to (defaults, flags), as the command builds it."""
    import importlib

    module = importlib.import_module(f"berts.commands.{command}")
    cls = FinetuneConfig if command == "finetune" else PretrainConfig
    return load_config(cls, None, [], module._overrides(parsed(command, *argv)))


def value(cfg, dotted):
    section, key = dotted.split(".")
    s = getattr(cfg, section)
    return s.overrides[key] if section == "model" and key in s.overrides else getattr(s, key)


@pytest.mark.parametrize("command, argv, expected", [
    ("finetune", ["--warmup", "0"], {"schedule.warmup": 0.0}),
    ("finetune", ["--warmup", "0.2"], {"schedule.warmup": 0.2}),
    ("finetune", ["--warmup-ratio", "0.25"], {"schedule.warmup": 0.25}),
    ("finetune", ["--warmup_ratio", "0.05"], {"schedule.warmup": 0.05}),
    ("finetune", ["--warmup-steps", "30"], {"schedule.warmup": 30.0}),
    ("finetune", ["--warmup_steps", "7"], {"schedule.warmup": 7.0}),
    ("finetune", ["--weight-decay", "0.05"], {"optim.weight_decay": 0.05}),
    ("finetune", ["--weight_decay", "0"], {"optim.weight_decay": 0.0}),
    ("finetune", ["--adam-epsilon", "1e-8"], {"optim.eps": 1e-8}),
    ("finetune", ["--adam_epsilon", "1e-7"], {"optim.eps": 1e-7}),
    ("finetune", ["--max_grad_norm", "0.5"], {"optim.grad_clip": 0.5}),
    ("finetune", ["--learning_rate", "2e-5"], {"optim.lr": 2e-5}),
    ("finetune", ["--learning-rate", "3e-5"], {"optim.lr": 3e-5}),
    ("finetune", ["--seed", "42"], {"train.seed": 42}),
    ("finetune", ["--dropout", "0.3"], {"model.hidden_dropout_prob": 0.3, "model.attention_probs_dropout_prob": 0.3,
                                        "model.classifier_dropout": 0.3}),
    ("finetune", ["--label-smoothing", "0.1"], {"train.label_smoothing": 0.1}),
    ("finetune", ["--label_smoothing_factor", "0.2"], {"train.label_smoothing": 0.2}),
    ("finetune", ["--grad-accum", "4"], {"train.grad_accum": 4}),
    ("finetune", ["--gradient_accumulation_steps", "2"], {"train.grad_accum": 2}),
    ("finetune", ["--gradient-accumulation-steps", "8"], {"train.grad_accum": 8}),
    ("finetune", ["--class-weights", "balanced"], {"train.class_weights": "balanced"}),
    ("finetune", ["--class-weights", "neg=1,pos=3"], {"train.class_weights": "neg=1,pos=3"}),
    ("finetune", ["--positive-label", "pos"], {"train.positive_label": "pos"}),
    ("finetune", ["--keep-last", "0"], {"train.keep_last": 0}),
    ("finetune", ["--num_train_epochs", "2"], {"train.epochs": 2.0, "train.max_steps": None}),
    ("finetune", ["--eval_steps", "50"], {"train.eval_every": 50}),
    ("finetune", ["--model_name_or_path", "m"], {"model.init_from": "m"}),
    ("finetune", ["--output_dir", "o"], {"log.out": "o"}),
    ("finetune", ["--from-scratch", "mini"], {"model.preset": "mini", "model.init_from": None}),
    ("finetune", ["--ignore-mismatched-sizes"], {"model.ignore_mismatched_sizes": True}),
    ("finetune", ["--max-steps", "5", "--epochs", "3"], {"train.max_steps": 5, "train.epochs": 3.0}),
    ("pretrain", ["--warmup-steps", "100"], {"schedule.warmup": 100.0}),
    ("pretrain", ["--weight_decay", "0.1", "--adam_epsilon", "1e-8", "--seed", "3"],
     {"optim.weight_decay": 0.1, "optim.eps": 1e-8, "train.seed": 3}),
    ("pretrain", ["--dropout", "0"], {"model.hidden_dropout_prob": 0.0, "model.attention_probs_dropout_prob": 0.0}),
    ("pretrain", ["--gradient_accumulation_steps", "4", "--keep-last", "0"], {"train.grad_accum": 4,
                                                                             "train.keep_last": 0}),
])
def test_each_flag_reaches_its_config_key(command, argv, expected):
    cfg = config_of(command, *argv)
    for dotted, want in expected.items():
        got = value(cfg, dotted)
        assert got == want and type(got) is type(want), (dotted, got)
    if command == "pretrain" and "--dropout" in argv:
        assert "classifier_dropout" not in cfg.model.overrides


def test_flag_errors_are_one_line(capsys):
    from berts.errors import UserError

    with pytest.raises(UserError, match=r"--warmup-ratio 1.5: a fraction of the run in \[0, 1\)"):
        config_of("finetune", "--warmup-ratio", "1.5")
    with pytest.raises(SystemExit):  # argparse: one warm-up flag at a time
        parsed("finetune", "--warmup", "0.1", "--warmup-steps", "10")
    with pytest.raises(UserError, match="train.label_smoothing must be in"):
        config_of("finetune", "--label-smoothing", "1")
    with pytest.raises(UserError, match="the weight of label 'pos' must be a positive number"):
        config_of("finetune", "--class-weights", "pos=-1")
    capsys.readouterr()


@pytest.mark.parametrize("command, cls", [("finetune", FinetuneConfig), ("pretrain", PretrainConfig)])
def test_show_config_lists_every_key(command, cls, capsys):
    import dataclasses

    from berts.model.config import BertConfig

    assert cli([command, "--show-config"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if not line.startswith("#")}
    cfg = cls()
    keys = {f"{s.name}.{f.name}" for s in dataclasses.fields(cfg) for f in dataclasses.fields(getattr(cfg, s.name))
            if f.name != "overrides"}
    from berts.config.schema import OBJECTIVE_FIELDS  # set by data.objectives, not model.* keys

    keys |= {f"model.{f.name}" for f in dataclasses.fields(BertConfig) if f.name not in ("extra", *OBJECTIVE_FIELDS)}
    if command == "finetune":  # the tasks' own options (berts.tasks.registry): keys of the task: section
        from berts.tasks import registry

        keys |= {f"task.{name}" for name in registry.all_options()}
    assert set(rows) == keys
    # the value, then the type, then what it is
    assert rows["optim.eps"].split()[1:4] == ["1.0e-06", "(a", "number)"]
    assert rows["schedule.warmup"].split()[1] == ("0.1" if command == "finetune" else "0.06")
    if command == "finetune":
        assert rows["train.label_smoothing"].split()[1] == "0.0" and "train.positive_label" in rows
        assert rows["train.epochs"].split()[1] == "3"
    assert "# peak learning rate" in rows["optim.lr"]
    # the flags given are shown resolved
    assert cli([command, "--show-config", "--adam-epsilon", "1e-8", "--set", "train.seed=5"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")}
    assert rows["optim.eps"].split()[1] == "1.0e-08" and rows["train.seed"].split()[1] == "5"
    # --help says so
    with pytest.raises(SystemExit):
        cli([command, "--help"])
    assert "--show-config" in capsys.readouterr().out


def test_start_line_prints_the_resolved_values_and_no_resume_checkpoint(base, tmp_path, capsys):
    from berts.train.monitor import disk_usage, human_bytes

    train = table(tmp_path / "train.tsv", 64, 1)
    out = tmp_path / "run"
    assert cli(["finetune", "--model", base, "--train", train, "--dev", train, "--text-column", "sentence",
                "--out", out, "--max-steps", "5", "--epochs", "3", "--batch-size", "8", "--lr", "1e-3",
                "--warmup-steps", "2", "--weight_decay", "0.02", "--adam-epsilon", "1e-8", "--seed", "3",
                "--dropout", "0.2", "--label-smoothing", "0.1", "--class-weights", "neg=1,pos=3",
                "--positive-label", "pos", "--keep-last", "0", *COMMON]) == 0
    printed = capsys.readouterr()
    err = printed.err
    assert ("  optimizer adamw: lr 0.001, betas (0.9, 0.999), eps 1e-08, weight decay 0.02 (not on biases and "
            "LayerNorm), grad clip 1 (grad_norm is logged before clipping)\n") in err
    assert "  schedule linear: warm-up 2 steps (0.4 of the run), then linear decay to 0 x lr\n" in err
    assert ("  batch 8 = 1 process(es) x 8 x accum 1; 5 steps (0.62 epochs), ended by train.max_steps "
            "(train.epochs 3 does not end it); seed 3\n") in err
    assert "  dropout hidden 0.2, attention 0.2, classifier 0.2\n" in err
    assert "  label smoothing 0.1; class weights neg=1, pos=3; f1 of 'pos'\n" in err
    # no resume checkpoint: best/ and final/ only, plus the logs
    assert sorted(p.name for p in out.iterdir()) == [".berts-run.json", "best", "config.yaml", "final",
                                                     "metrics.jsonl", "plots"]
    sizes = disk_usage(out)
    assert set(sizes) == {"best", "final"} and all(v > 0 for v in sizes.values())
    assert (f"  on disk:     best/ {human_bytes(sizes['best'])}, final/ {human_bytes(sizes['final'])} "
            f"({human_bytes(sum(sizes.values()))} in all)") in printed.out
    assert "(the last record's, before clipping)" in printed.out
    # the loss options are the run's, not the model's
    config = json.loads((out / "final" / "config.json").read_text())
    assert "label_smoothing" not in json.dumps(config) and "class_weights" not in json.dumps(config)
    assert config["finetune_data"]["positive_label"] == "pos"
    assert (out / "config.yaml").read_text().count("label_smoothing: 0.1") == 1
    # with checkpoints kept, the summary names them too
    assert cli(["finetune", "--model", base, "--train", train, "--text-column", "sentence", "--out",
                tmp_path / "kept", "--max-steps", "2", "--batch-size", "8", *COMMON]) == 0
    assert "checkpoints/ " in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "kept" / "checkpoints").iterdir()] == ["step-2"]


@torch.no_grad()
def test_label_smoothing_and_class_weights_change_the_loss_by_hand():
    from berts import BertConfig
    from berts.model.heads import BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config).eval()
    ids = torch.randint(5, 40, (6, 7))
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    logits = model(ids).logits.detach().double()
    logp = logits.log_softmax(-1)
    plain = float(-logp[torch.arange(6), y].mean())
    assert float(model(ids, labels=y).loss) == pytest.approx(plain, rel=1e-6)

    e, w = 0.1, torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    per_row = -(1 - e) * logp[torch.arange(6), y] - e / 3 * logp.sum(-1)  # torch's definition, by hand
    model.classifier.set_training_options(label_smoothing=e)
    assert float(model(ids, labels=y).loss) == pytest.approx(float(per_row.mean()), rel=1e-6)
    model.classifier.set_training_options(class_weights=[1.0, 2.0, 0.5])
    weighted = -logp[torch.arange(6), y] * w[y]
    assert float(model(ids, labels=y).loss) == pytest.approx(float(weighted.mean()), rel=1e-6)
    model.classifier.set_training_options(label_smoothing=e, class_weights=[1.0, 2.0, 0.5])
    assert float(model(ids, labels=y).loss) == pytest.approx(float((per_row * w[y]).mean()), rel=1e-6)
    assert "class_weights" not in model.state_dict() and "classifier.class_weights" not in model.state_dict()
    model.classifier.set_training_options()
    assert float(model(ids, labels=y).loss) == pytest.approx(plain, rel=1e-6)


def test_the_run_passes_its_loss_options_to_the_classifier(base, tmp_path):
    """balanced: n / (labels x n_class) from the training table; the training loss is the weighted,
    smoothed one (by hand on one batch)."""
    from berts.train.distributed import Dist
    from berts.runs.finetune import finetuning_run

    train = table(tmp_path / "train.tsv", 40, 2)
    labels = [line.split("\t")[1] for line in train.read_text().splitlines()[1:]]
    n_pos = labels.count("pos")
    cfg = load_config(FinetuneConfig, None, [
        f"model.init_from={base}", f"data.train={train}", "data.text_column=sentence", "train.max_steps=1",
        "train.batch_size=8", "train.class_weights=balanced", "train.label_smoothing=0.05", f"log.out={tmp_path / 'r'}",
        "impl.threads=1", "impl.device=cpu", "log.progress=none", "log.tensorboard=false", "log.plots=false"])
    trainer = finetuning_run(cfg, None, Dist())
    head = trainer.model.classifier
    assert head.class_weights.tolist() == pytest.approx([40 / (2 * (40 - n_pos)), 40 / (2 * n_pos)])
    assert head.label_smoothing == 0.05
    batch = trainer.task.train_dataset[(0, 0, list(range(8)))]
    model = trainer.model.eval()
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        logp = model(**inputs).logits.double().log_softmax(-1)
        loss = float(model(**inputs, labels=batch["labels"]).loss)
    y = batch["labels"]
    w = head.class_weights.double()
    by_hand = ((-(0.95) * logp[torch.arange(8), y] - 0.05 / 2 * logp.sum(-1)) * w[y]).mean()
    assert loss == pytest.approx(float(by_hand), rel=1e-6)


def test_positive_label_changes_f1_by_hand(base, tmp_path):
    from berts.metrics import compute_metrics

    p = np.array([0, 0, 1, 1, 0])
    y = np.array([0, 1, 1, 0, 0])
    # positive 1: tp 1, fp 1, fn 1 -> 2 / 4; positive 0: tp 2, fp 1, fn 1 -> 4 / 6
    assert compute_metrics("classification", p, y, 2)["f1"] == 0.5
    assert compute_metrics("classification", p, y, 2, positive=0)["f1"] == pytest.approx(4 / 6)

    # through a run: the dev f1 is the F1 of "neg" (id 0), recomputed here from the best model's logits
    from berts.data.classification import ClassificationDataset
    from berts.data.labels import LabelMap
    from berts.data.tables import read_examples
    from berts.hf import load
    from berts.tokenizer.wordpiece import load_tokenizer
    from berts.tasks.base import predict_logits

    train, dev = table(tmp_path / "train.tsv", 64, 3), table(tmp_path / "dev.tsv", 24, 4)
    out = tmp_path / "run"
    assert cli(["finetune", "--model", base, "--train", train, "--dev", dev, "--text-column", "sentence",
                "--out", out, "--max-steps", "4", "--batch-size", "8", "--lr", "1e-3", "--positive-label", "neg",
                "--metric", "f1", *COMMON]) == 0
    best = json.loads((out / "best" / "eval_results.json").read_text())
    examples, _ = read_examples(dev, text_column="sentence", label_column="label")
    data = ClassificationDataset(examples, load_tokenizer(out / "best"), label_map=LabelMap(["neg", "pos"]),
                                 max_length=64)
    pred = predict_logits(load(out / "best"), data).argmax(-1)
    labels = data.labels
    tp = int(((pred == 0) & (labels == 0)).sum())
    fp = int(((pred == 0) & (labels != 0)).sum())
    fn = int(((pred != 0) & (labels == 0)).sum())
    assert best["metrics"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert best["metrics"]["accuracy"] == pytest.approx(float((pred == labels).mean()))


def test_eval_plot_has_the_metric_and_the_losses_on_their_own_axes(base, tmp_path):
    from berts.train.monitor import eval_figure, eval_series, read_metrics

    records = [
        {"kind": "train", "step": 5, "loss": 0.9}, {"kind": "train", "step": 10, "loss": 0.7},
        {"kind": "eval", "step": 5, "epoch": 0.5, "accuracy": 0.6, "f1": 0.5, "f1_macro": 0.55, "mcc": 0.1, "loss": 0.8},
        {"kind": "eval", "step": 10, "epoch": 1.0, "accuracy": 0.8, "f1": 0.7, "f1_macro": 0.75, "mcc": 0.4, "loss": 0.6},
    ]
    data = eval_series(records, "accuracy")
    assert data == {"metric": {"accuracy": ([5, 10], [0.6, 0.8])},
                    "loss": {"train loss": ([5, 10], [0.9, 0.7]), "dev loss": ([5, 10], [0.8, 0.6])}}
    best = {"metric": "accuracy", "value": 0.8, "step": 10}
    fig = eval_figure(data, best)
    top, bottom = fig.axes
    assert top.get_ylabel() == "dev accuracy" and bottom.get_ylabel() == "loss" and bottom.get_xlabel() == "step"
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in top.get_lines()}
    assert lines["dev accuracy"] == ([5, 10], [0.6, 0.8])
    assert lines["best (accuracy 0.8, step 10)"] == ([10], [0.8])  # the best checkpoint, marked
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in bottom.get_lines()}
    assert lines["train loss"] == ([5, 10], [0.9, 0.7]) and lines["dev loss"] == ([5, 10], [0.8, 0.6])
    # pretraining (no chosen metric): the accuracies above, the eval losses with the train loss below
    data = eval_series([{"kind": "train", "step": 4, "loss": 5.0},
                        {"kind": "eval", "step": 4, "mlm_loss": 4.5, "mlm_acc": 0.1, "nsp_acc": 0.5}])
    assert set(data["metric"]) == {"mlm_acc", "nsp_acc"} and set(data["loss"]) == {"train loss", "dev mlm_loss"}

    # --metric loss: the best is marked on the dev loss
    fig = eval_figure(eval_series(records, "loss"), {"metric": "loss", "value": 0.6, "step": 10})
    assert fig.axes[0].get_ylabel() == "dev metric"
    assert sorted(line.get_label() for line in fig.axes[0].get_lines() if line.get_label().startswith("dev")) == [
        "dev accuracy", "dev f1", "dev f1_macro", "dev mcc"]
    marked = [line for line in fig.axes[1].get_lines() if line.get_label().startswith("best")]
    assert [(list(m.get_xdata()), list(m.get_ydata())) for m in marked] == [([10], [0.6])]
    # a run writes it from its own metrics.jsonl
    train = table(tmp_path / "train.tsv", 32, 5)
    out = tmp_path / "run"
    assert cli(["finetune", "--model", base, "--train", train, "--dev", train, "--text-column", "sentence",
                "--out", out, "--epochs", "2", "--batch-size", "8", *COMMON]) == 0
    assert (out / "plots" / "eval.png").stat().st_size > 0
    data = eval_series(read_metrics(out), "accuracy")
    assert data["metric"]["accuracy"][0] == [4, 8] and data["loss"]["dev loss"][0] == [4, 8]


def test_from_scratch_on_the_command_line(base, tmp_path, capsys):
    from berts.hf import read_config

    train = table(tmp_path / "train.tsv", 32, 6)
    out = tmp_path / "scratch"
    assert cli(["finetune", "--from-scratch", base, "--tokenizer", base, "--train", train, "--text-column",
                "sentence", "--out", out, "--max-steps", "2", "--batch-size", "8", *COMMON]) == 0
    assert f"from scratch: every weight random ({base}, seed 0), tokenizer {base}" in capsys.readouterr().err
    a, b = read_config(base), read_config(out / "final")
    assert (a.hidden_size, a.num_hidden_layers, a.vocab_size) == (b.hidden_size, b.num_hidden_layers, b.vocab_size)
    from safetensors.torch import load_file

    pretrained = load_file(str(base / "model.safetensors"))
    tuned = load_file(str(out / "final" / "model.safetensors"))
    # random weights: far from the directory's (only their shapes were taken)
    key = next(k for k in pretrained if k.endswith("word_embeddings.weight"))
    assert not torch.allclose(pretrained[key], tuned["bert." + key if "bert." + key in tuned else key], atol=1e-2)

    # a preset, with overrides
    assert cli(["finetune", "--from-scratch", "tiny", "--tokenizer", base, "--train", train, "--text-column",
                "sentence", "--out", tmp_path / "preset", "--max-steps", "1", "--batch-size", "8",
                "--set", "model.num_hidden_layers=1", *COMMON]) == 0
    assert read_config(tmp_path / "preset" / "final").num_hidden_layers == 1
    capsys.readouterr()
    assert cli(["finetune", "--from-scratch", "tiny", "--train", train, "--out", tmp_path / "x", *COMMON]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give the tokenizer too (--tokenizer DIR" in err
    with pytest.raises(SystemExit):
        cli(["finetune", "--from-scratch", "tiny", "--model", base, "--train", train])
    assert "not allowed with argument" in capsys.readouterr().err
    assert cli(["finetune", "--train", train, *COMMON]) == 2
    assert "--from-scratch PRESET|CONFIG with --tokenizer DIR" in capsys.readouterr().err
