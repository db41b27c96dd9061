"""FastBERT early exit (berts.compress.early_exit.exits): speed 0 is the final classifier exactly and speed
1 leaves at layer 1; batched exit gives the predictions and exit layers of one sample at a time
(both rules, fast paths on and off); the self-distillation loss equals a hand computation;
transformers loads a saved early-exit directory with berts' speed-0 logits; `berts finetune
--early-exit` on unlabelled text trains the students only; predict / evaluate report the exit
layer; the one-line errors."""
import json
import math

import numpy as np
import pytest
import torch
from test_inference import make_classifier, sentences, tokenizer

from berts.cli import main
from berts.compress.early_exit.exits import BertForSequenceClassificationWithExits, self_distillation
from berts.errors import UserError

COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false", "--set", "log.every=5"]


def exit_model(layers=4, labels=3, seed=0, scale=0.5, names=None):
    """An early-exit model with random weights, students confident enough to leave at various layers
    (label names c0, c1, ... unless ``names``)."""
    from berts import BertConfig, BertForSequenceClassification
    from berts.data.labels import LabelMap

    tok = tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64,
                        **LabelMap(names or [f"c{i}" for i in range(labels)]).to_config())
    model = BertForSequenceClassificationWithExits.from_classifier(BertForSequenceClassification(config), 16, 2)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.add_(torch.randn(p.shape, generator=g) * (scale * 4 if name.startswith("exits.") else scale))
    return model.eval(), tok


def batch_of(tok, n=12, seed=3):
    enc = tok(sentences(n, seed=seed), max_length=40, truncation=True)
    width = max(map(len, enc["input_ids"]))
    ids = torch.zeros(n, width, dtype=torch.long)
    mask = torch.zeros(n, width, dtype=torch.long)
    for i, row in enumerate(enc["input_ids"]):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids, mask, torch.zeros_like(ids)


@pytest.mark.parametrize("fast", [False, True])
def test_speed_0_is_the_final_classifier_and_speed_1_leaves_at_layer_1(fast):
    model, tok = exit_model()
    ids, mask, types = batch_of(tok)
    ref = torch.nn.Module.__call__(model, ids, mask, types).logits  # the plain classifier (transformers' forward)
    model.set_fast_path(unpad=fast, pack=fast)
    z, layers = model.early_exit(ids, mask, types, speed=0.0)
    assert layers.tolist() == [4] * len(ids)
    # the fast path (unpadded, packed rows) sums in another order: 2.6e-5 on logits of about 2 on an
    # AMD EPYC (relative 3e-5); the plain path is exact
    tol = 1e-4 if fast else 1e-6
    assert torch.equal(z.argmax(-1), ref.argmax(-1)) and torch.allclose(z, ref, atol=tol, rtol=tol)
    z, layers = model.early_exit(ids, mask, types, speed=1.0)
    assert layers.tolist() == [1] * len(ids)
    first = model.layer_logits(ids, mask, types)[0]  # student 1 on every row
    assert torch.allclose(z, first, atol=1e-5)


def test_exit_layers_vary_and_follow_the_rule():
    """At a middle speed the rows leave at different layers, each at the first student whose
    normalised entropy is below S (checked on every layer's logits, computed without exit)."""
    model, tok = exit_model()
    ids, mask, types = batch_of(tok, n=24)
    with torch.no_grad():
        per = model.layer_logits(ids, mask, types)
    ent = torch.stack([(-(z.softmax(-1) * z.log_softmax(-1)).sum(-1) / math.log(3)) for z in per[:-1]], 1)
    speed = float(ent.median())
    z, layers = model.early_exit(ids, mask, types, speed=speed)
    expected = [next((i + 1 for i in range(3) if ent[r, i] < speed), 4) for r in range(len(ids))]
    assert layers.tolist() == expected and len(set(expected)) >= 3
    for r, k in enumerate(expected):
        assert torch.allclose(z[r], per[k - 1][r], atol=1e-5)
    # PABEE: the counter of equal consecutive predictions reaches k
    preds = torch.stack([z.argmax(-1) for z in per], 1)  # [B, L]
    z, layers = model.early_exit(ids, mask, types, rule="patience", patience=1)
    want = []
    for r in range(len(ids)):
        count, left = 0, 4
        for i in range(3):
            count = count + 1 if i and preds[r, i] == preds[r, i - 1] else 0
            if count >= 1:
                left = i + 1
                break
        want.append(left)
    assert layers.tolist() == want


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("rule,value", [("entropy", 0.3), ("entropy", 0.6), ("entropy", 0.9), ("patience", 1),
                                        ("patience", 2)])
def test_batched_exit_equals_one_sample_at_a_time(fast, rule, value):
    model, tok = exit_model()
    model.set_fast_path(unpad=fast, pack=fast)
    ids, mask, types = batch_of(tok, n=16, seed=5)
    kw = {"speed": value} if rule == "entropy" else {"patience": value}
    z, layers = model.early_exit(ids, mask, types, rule=rule, **kw)
    for r in range(len(ids)):
        n = int(mask[r].sum())
        z1, l1 = model.early_exit(ids[r:r + 1, :n], mask[r:r + 1, :n], types[r:r + 1, :n], rule=rule, **kw)
        assert int(l1) == int(layers[r])
        assert int(z1.argmax()) == int(z[r].argmax()) and torch.allclose(z1[0], z[r], atol=1e-4)  # logits ~10


def test_self_distillation_loss_equals_a_hand_computation():
    """Every student by hand (full attention over all queries, then the [CLS] row; UER's -10000
    mask), KL(p_final || p_student) summed over classes, averaged over rows, summed over students."""
    model, tok = exit_model()
    ids, mask, types = batch_of(tok, n=6)
    loss, metrics = self_distillation(model, ids, mask, types)
    hidden = torch.nn.Module.__call__(model.bert, ids, mask, types, output_hidden_states=True).hidden_states
    teacher = torch.nn.Module.__call__(model, ids, mask, types).logits
    p = teacher.softmax(-1)
    total, agree = 0.0, []
    for i, s in enumerate(model.exits.students):
        x = torch.tanh(hidden[i + 1] @ s.down.weight.T + s.down.bias)  # [B, S, w]
        b, n, w = x.shape
        q, k, v = ((x @ lin.weight.T + lin.bias).view(b, n, 2, w // 2).transpose(1, 2)
                   for lin in (s.query, s.key, s.value))
        scores = q @ k.transpose(-1, -2) / math.sqrt(w // 2) + (1 - mask[:, None, None, :].float()) * -10000
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, w)[:, 0]  # the first position
        h = torch.tanh((ctx @ s.out.weight.T + s.out.bias) @ s.dense.weight.T + s.dense.bias)
        zs = h @ s.classifier.weight.T + s.classifier.bias
        qs = zs.softmax(-1)
        total += float((p * (p.log() - qs.log())).sum(-1).mean().detach())
        agree.append(float((zs.argmax(-1) == teacher.argmax(-1)).float().mean()))
    assert float(loss.detach()) == pytest.approx(total, rel=1e-5)
    assert float(metrics["agreement"]) == pytest.approx(np.mean(agree))
    loss.backward()  # gradients reach the students only
    assert all(p.grad is None for p in model.bert.parameters()) and model.classifier.weight.grad is None
    assert all(p.grad is not None for p in model.exits.parameters())


def test_saved_directory_is_a_hugging_face_directory(tmp_path):
    import transformers

    import berts

    model, tok = exit_model(scale=0.3)  # (at 0.5 the plain model is 1e-4 from transformers: float growth)
    model.save_pretrained(tmp_path / "ee", tokenizer=tok)
    config = json.loads((tmp_path / "ee" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassificationWithExits"] and config["model_type"] == "bert"
    ids, mask, types = batch_of(tok)
    ours, layers = model.early_exit(ids, mask, types, speed=0.0)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "ee").eval()
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    assert torch.allclose(ours, theirs, atol=1e-5) and torch.equal(ours.argmax(-1), theirs.argmax(-1))
    back = berts.load(tmp_path / "ee")  # berts loads the students too
    assert isinstance(back, BertForSequenceClassificationWithExits) and back.loading_info["missing_keys"] == []
    for (n, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), n


def test_classifier_api_reports_the_exit_layer(tmp_path):
    from berts.serve.predict import Classifier

    model, tok = exit_model(labels=2)
    model.config.finetune_data = {"task": "classification", "text_column": "sentence", "label_column": "label",
                                        "max_length": 64}
    model.save_pretrained(tmp_path / "ee", tokenizer=tok)
    texts = sentences(20, seed=8)
    clf = Classifier.from_pretrained(tmp_path / "ee", device="cpu")
    plain = clf.predict(texts)
    assert all(p.exit_layer is None for p in plain)
    at0 = clf.early_exit("entropy", speed=0.0).predict(texts, batch_size=7)
    assert [p.label for p in at0] == [p.label for p in plain] and {p.exit_layer for p in at0} == {4}
    at1 = clf.early_exit("entropy", speed=1.0).predict(texts, batch_size=7)
    assert {p.exit_layer for p in at1} == {1}
    mid = clf.early_exit("patience", patience=1).predict(texts, batch_size=7)
    one = [clf.predict([t], batch_size=1)[0] for t in texts]
    assert [(p.label, p.exit_layer) for p in mid] == [(p.label, p.exit_layer) for p in one]
    with pytest.raises(UserError, match="between 0 and 1"):
        clf.early_exit("entropy", speed=1.5)
    plain_dir = make_classifier(tmp_path / "plain")
    with pytest.raises(UserError, match="no early-exit classifiers.*--early-exit"):
        Classifier.from_pretrained(plain_dir).early_exit("entropy", speed=0.5)


def make_teacher(tmp_path):
    """A fine-tuned classifier directory (4 layers, 2 labels) and a training file of text only."""
    from berts import BertForSequenceClassification

    model, tok = exit_model(labels=2, scale=0.3)
    base = model.config.replace(finetune_data={"task": "classification", "text_column": "sentence",
                                               "label_column": "label", "max_length": 64})
    teacher = BertForSequenceClassification(base)
    teacher.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("exits.")})
    teacher.save_pretrained(tmp_path / "teacher", tokenizer=tok)
    train = tmp_path / "text.tsv"
    train.write_text("sentence\n" + "\n".join(sentences(96, seed=11)) + "\n")  # no label column
    return teacher, tok, train


def test_finetune_early_exit_on_unlabelled_text(tmp_path, capsys):
    """`berts finetune --early-exit`: text without labels; the backbone and final classifier come
    out bit-identical, the students learn (the loss on the training text falls); the saved
    directory serves predict / evaluate with exit layers, and evaluate --sweep."""
    from berts.hf import load

    teacher, tok, train = make_teacher(tmp_path)
    labelled = tmp_path / "test.tsv"
    teacher.eval()(*batch_of(tok, 1)[:2]).logits  # (warm-up)
    labels = ["c0" if i % 2 else "c1" for i in range(40)]
    labelled.write_text("sentence\tlabel\n" + "\n".join(f"{t}\t{y}" for t, y in zip(sentences(40, seed=12), labels)) + "\n")
    out = tmp_path / "run"
    assert main([str(a) for a in ["finetune", "--early-exit", "--model", tmp_path / "teacher", "--train", train,
                                  "--dev", labelled, "--out", out, "--max-steps", "30", "--batch-size", "16",
                                  "--lr", "3e-3", "--warmup", "0", *COMMON]]) == 0
    trained = load(out / "final")
    assert isinstance(trained, BertForSequenceClassificationWithExits)
    before = BertForSequenceClassificationWithExits.from_classifier(teacher)  # the students at step 0: same seed
    for name, p in teacher.state_dict().items():
        assert torch.equal(trained.state_dict()[name], p), name  # frozen: bit-identical
    state = torch.load(next((out / "checkpoints").glob("step-*/trainer_state.pt")), weights_only=False)
    students = sum(1 for n, _ in trained.named_parameters() if n.startswith("exits."))
    assert len(state["optimizer"]["state"]) == students == 3 * 14  # no optimizer state for the frozen weights
    enc = batch_of(tok, n=96, seed=11)
    with torch.no_grad():
        ids, mask, types = enc
        l0 = float(self_distillation(before.eval(), ids, mask, types)[0])
        l1 = float(self_distillation(trained.eval(), ids, mask, types)[0])
    assert l1 < 0.5 * l0, (l0, l1)
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("agreement" in m or "eval/agreement" in json.dumps(m) for m in metrics)
    capsys.readouterr()

    # predict: each row carries its exit layer, the API's
    assert main(["predict", str(out / "final"), str(labelled), "--speed", "0.5"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    from berts.serve.predict import Classifier

    clf = Classifier.from_pretrained(out / "final").early_exit("entropy", speed=0.5)
    api = clf.predict([r["text"] for r in rows])
    assert [(r["label"], r["exit_layer"]) for r in rows] == [(p.label, p.exit_layer) for p in api]
    # evaluate: speed 0 is the plain model's accuracy; the per-example layers in file order
    assert main(["evaluate", str(out / "final"), str(labelled), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(out / "final"), str(labelled), "--json", "--speed", "0"]) == 0
    at0 = json.loads(capsys.readouterr().out)
    assert at0["accuracy"] == plain["accuracy"] and at0["avg_layers"] == 4 and at0["exit_layers"] == [4] * 40
    assert main(["evaluate", str(out / "final"), str(labelled), "--json", "--exit", "patience", "--patience", "1"]) == 0
    pat = json.loads(capsys.readouterr().out)
    assert pat["exit_layers"] == [p.exit_layer for p in clf.early_exit("patience", patience=1).predict(
        [r["text"] for r in rows])]
    assert pat["avg_layers"] == pytest.approx(np.mean(pat["exit_layers"]))
    # the sweep: speed 0 = the model run to the end, speed 1 = one layer each
    assert main(["evaluate", str(out / "final"), str(labelled), "--json", "--sweep", "--speeds", "0,1",
                 "--patiences", "1"]) == 0
    sweep = {(r["rule"], r["value"]): r for r in json.loads(capsys.readouterr().out)}
    assert sweep[("entropy", 0.0)]["accuracy"] == sweep[("full", None)]["accuracy"] == plain["accuracy"]
    assert sweep[("entropy", 0.0)]["avg_layers"] == 4 and sweep[("entropy", 1.0)]["avg_layers"] == 1
    # FLOPs by hand (H 32, I 64, C 2, students of width 128): a layer 2n(4H^2 + 2HI) + 4n^2 H on n real tokens
    lengths = [len(x) for x in tok(sentences(40, seed=12), max_length=64, truncation=True)["input_ids"]]
    H, I, C, w = 32, 64, 2, 128
    layer = [2 * n * (4 * H * H + 2 * H * I) + 4 * n * n * H for n in lengths]
    student = [2 * n * H * w + 4 * n * w * w + 4 * n * w + 6 * w * w + 2 * w * C for n in lengths]
    assert sweep[("full", None)]["flops_per_example"] == pytest.approx(np.mean(layer) * 4 + 2 * H * H + 2 * H * C)
    assert sweep[("entropy", 1.0)]["flops_per_example"] == pytest.approx(np.mean(layer) + np.mean(student))
    for r in sweep.values():
        assert r["latency_b1_ms"] > 0 and r["latency_b32_ms"] > 0
    # --latency-examples 0: the same rows without the timing (the demo's choice on dev reads no latency)
    assert main(["evaluate", str(out / "final"), str(labelled), "--json", "--sweep", "--speeds", "0,1",
                 "--patiences", "1", "--latency-examples", "0"]) == 0
    untimed = {(r["rule"], r["value"]): r for r in json.loads(capsys.readouterr().out)}
    assert untimed == {k: {n: v for n, v in r.items() if not n.startswith("latency")} for k, r in sweep.items()}


def test_one_line_errors(tmp_path, capsys):
    plain = make_classifier(tmp_path / "plain")
    data = tmp_path / "t.tsv"
    data.write_text("sentence\tlabel\nthe cat\tpos\na dog\tneg\n")
    for args, message in (
            (["evaluate", plain, data, "--speed", "0.5"], "no early-exit classifiers"),
            (["evaluate", plain, data, "--exit", "patience"], "--exit patience needs --patience K"),
            (["predict", plain, data, "--speed", "0.9"], "no early-exit classifiers"),
            (["finetune", "--early-exit", "--from-scratch", "tiny", "--tokenizer", plain, "--train", data,
              "--out", tmp_path / "o", *COMMON], "--early-exit")):
        assert main([str(a) for a in args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    with pytest.raises(SystemExit):  # a speed outside [0, 1]: argparse's one line (berts.util.values)
        main(["predict", str(plain), str(data), "--speed", "2"])
    assert "--speed: a number in [0, 1] expected, got '2'" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    """The self-distillation run is the engine's: killed between checkpoints (dropout on in the
    students, accumulation 2) and resumed, it ends with the uninterrupted run's weights, bit for bit."""
    from train_utils import RUN, SLOW_STEPS, kill_after_first_checkpoint, spawn, weights

    _, _, train = make_teacher(tmp_path)

    def args(out, *extra):
        sets = [x for item in RUN for x in ("--set", item)]
        return [str(a) for a in ["finetune", "--early-exit", "--model", tmp_path / "teacher", "--train", train,
                                 "--out", out, "--batch-size", 8, "--lr", "1e-3", *COMMON, *sets, *extra]]

    ref, out = tmp_path / "ref", tmp_path / "run"
    assert main(args(ref)) == 0
    proc = spawn(SLOW_STEPS, *args(out))
    kill_after_first_checkpoint(proc, out, 0.1)
    assert main(args(out, "--resume", "auto")) == 0
    a, b = weights(ref / "final"), weights(out / "final")
    assert a.keys() == b.keys() and any(k.startswith("fastbert.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_exits_shape_is_a_typed_field_and_old_directories_still_load():
    from berts.model.config import BertConfig

    old = BertConfig.from_dict({"hidden_size": 32, "num_attention_heads": 2, "berts_early_exit": {"width": 16, "heads": 2}})  # before the field
    assert old.early_exit == {"width": 16, "heads": 2} and "berts_early_exit" not in old.extra
    assert old.to_dict()["early_exit"] == {"width": 16, "heads": 2} and "berts_early_exit" not in old.to_dict()


def test_the_finetune_settings_are_a_typed_field_and_old_directories_still_load():
    from berts.model.config import BertConfig

    settings = {"task": "classification", "text_column": "sentence"}
    old = BertConfig.from_dict({"hidden_size": 32, "num_attention_heads": 2, "berts_finetune": settings})
    assert old.finetune_data == settings and not old.extra
    assert old.to_dict()["finetune_data"] == settings and "berts_finetune" not in old.to_dict()
