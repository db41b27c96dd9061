"""Distillation (berts.compress, `berts distill`): the student gets exactly the listed teacher
layers (and transformers reads its directory); the teacher gets no gradient and no optimizer
state; a student equal to its teacher has zero distillation losses (fast paths on both sides);
TinyBERT's parts equal a hand computation on the plain path; a teacher of the wrong kind is one
line; general DistilBERT on shards; the projection is checkpointed but not in final/; SIGKILL
resume of a TinyBERT run (student + projection) is bit-exact."""
import json
import random
import string
from types import SimpleNamespace

import pytest
import torch
from train_utils import SLOW_STEPS, cli, kill_after_first_checkpoint, shards, spawn, weights  # noqa: F401 (fixture)

from berts.compress import losses as L
from berts.compress.distilbert.task import DistilBertTask
from berts.compress.students import load_teacher, student_from_teacher
from berts.compress.tinybert.task import TinyBertTask
from berts.model.heads import BertForMaskedLM, BertForSequenceClassification
from berts.model.encoder import BertModel
from berts.train import checkpoint

WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
QUIET = ["impl.threads=1", "impl.device=cpu", "log.progress=none", "log.tensorboard=false", "log.plots=false",
         "log.every=2", "data.num_workers=0"]


def sets(*items):
    return [a for s in (*QUIET, *items) for a in ("--set", s)]


def tiny_config(vocab, layers=4, hidden=32, heads=2, **kw):
    from berts.model.config import BertConfig

    return BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=2 * hidden, max_position_embeddings=64, **kw)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tokenizer, a labelled task (does the sentence hold "cat"?) and three teachers: a
    classifier, a bare encoder (MiniLM's kind: no MLM head, no task head)."""
    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("distill")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "cat", *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    rng = random.Random(0)
    for name, n in (("train", 64), ("dev", 32)):
        rows = ["text\tlabel"]
        for _ in range(n):
            cat = rng.random() < 0.5
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 10))]
            if cat:
                words[rng.randrange(len(words))] = "cat"
            rows.append(" ".join(words) + "\t" + ("yes" if cat else "no"))
        (root / f"{name}.tsv").write_text("\n".join(rows) + "\n")
    torch.manual_seed(0)
    labels = dict(num_labels=2, id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1})
    BertForSequenceClassification(tiny_config(tok.vocab_size, **labels)).save_pretrained(root / "classifier", tok)
    BertModel(tiny_config(tok.vocab_size)).save_pretrained(root / "encoder", tok)
    return SimpleNamespace(root=root, tok=tok, train=root / "train.tsv", dev=root / "dev.tsv",
                           classifier=root / "classifier", encoder=root / "encoder")


@pytest.fixture(scope="module")
def mlm_teacher(shards, tmp_path_factory):  # noqa: F811
    """A BertForMaskedLM teacher on the shards' vocabulary (general distillation)."""
    from berts.tokenizer.wordpiece import load_tokenizer

    meta = json.loads((shards / "meta.json").read_text())
    tok = load_tokenizer(shards.parent / "tok")
    out = tmp_path_factory.mktemp("mlm") / "teacher"
    torch.manual_seed(1)
    BertForMaskedLM(tiny_config(int(meta["vocab_size"]))).save_pretrained(out, tok)
    return out


def batch_of(tok, texts):
    from berts.data.classification import ClassificationDataset
    from berts.data.labels import LabelMap
    from berts.data.tables import Example

    examples = [Example(text=t, label="yes" if "cat" in t else "no") for t in texts]
    ds = ClassificationDataset(examples, tok, label_map=LabelMap(["no", "yes"]), max_length=32)
    return ds[(0, 0, list(range(len(texts))))]


TEXTS = ["the cat sat", "a big red house near the river and a small blue tree over the hill", "dog ran"]


def test_student_gets_exactly_the_listed_teacher_layers(data, tmp_path):
    import transformers

    teacher = BertForSequenceClassification.from_pretrained(data.classifier)
    student = student_from_teacher(teacher, [0, 2])
    assert type(student) is BertForSequenceClassification and student.config.num_hidden_layers == 2
    t, s = teacher.state_dict(), student.state_dict()
    for key, value in s.items():
        source = key.replace("encoder.layers.1.", "encoder.layers.2.")  # student layer j <- teacher layer [0, 2][j]
        assert torch.equal(value, t[source]), key
    assert any(k.startswith("bert.encoder.layers.1.") for k in s) and not any("layers.2." in k for k in s)
    # through the command: the saved student is a plain Hugging Face directory with those weights
    out = tmp_path / "run"
    assert cli(["distill", "--teacher", data.classifier, "--student-layers", "0,2", "--train", data.train,
                "--out", out, "--max-steps", "1", "--lr", "1e-9", "--batch-size", "8", *sets()]) == 0
    hf = transformers.BertForSequenceClassification.from_pretrained(out / "final").eval()
    ours = student.eval()
    b = batch_of(data.tok, TEXTS)
    x = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        assert torch.allclose(hf(**x).logits, ours(**x).logits, atol=1e-4)  # lr 1e-9: one step moves nothing
    assert sorted(p.name for p in (out / "final").iterdir() if p.suffix in (".safetensors", ".json")) == [
        "config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
        "train_result.json"]
    # a general-distillation student: the teacher's encoder layers in a BertModel / BertForMaskedLM
    bare = BertModel.from_pretrained(data.encoder)
    t = bare.state_dict()
    for key, value in student_from_teacher(bare, [3], BertModel).state_dict().items():
        assert torch.equal(value, t[key.replace("encoder.layers.0.", "encoder.layers.3.")]), key


def _trainer(data, out, *items):
    from berts.config.schema import DistillConfig, load_config
    from berts.train.distributed import Dist
    from berts.runs.distill import distillation_run

    cfg = load_config(DistillConfig, None, [*QUIET, f"log.out={out}", f"distill.teacher={data.classifier}",
                                            f"data.train={data.train}", f"data.dev={data.dev}",
                                            "train.batch_size=8", "optim.lr=1e-3", *items])
    return distillation_run(cfg, dist=Dist())


@pytest.mark.parametrize("method", ["distilbert", "tinybert"])
def test_teacher_gets_no_gradient_and_no_optimizer_state(data, tmp_path, method):
    student = (["distill.student_layers=[0,2]"] if method == "distilbert" else
               ["model.preset=tiny", "model.hidden_size=16", "model.num_hidden_layers=2",
                "model.num_attention_heads=2", "model.intermediate_size=32"])
    trainer = _trainer(data, tmp_path / "run", f"distill.method={method}", "train.max_steps=4",
                       "train.save_every=4", *student)
    task = trainer.task
    before = {k: v.clone() for k, v in task.teacher.state_dict().items()}
    trainer.fit()
    params = list(task.teacher.parameters())
    assert all(not p.requires_grad and p.grad is None for p in params)
    in_optimizer = {id(p) for g in trainer.engine.optimizer.param_groups for p in g["params"]}
    assert not in_optimizer & {id(p) for p in params} and not set(trainer.engine.optimizer.state) & set(params)
    assert all(torch.equal(v, task.teacher.state_dict()[k]) for k, v in before.items())
    assert not task.teacher.training
    trainable = [*task.student.parameters(), *(task.proj.parameters() if getattr(task, "proj", None) else [])]
    assert {id(p) for p in trainable} == in_optimizer
    out = tmp_path / "run"
    final = weights(out / "final")
    assert not any("proj" in k or "teacher" in k for k in final)
    assert not (out / "final" / checkpoint.MODULES_NAME).exists()
    if method == "tinybert":  # the projection 16 -> 32: trained, in the checkpoint only
        from safetensors.torch import load_file

        saved = load_file(str(out / "checkpoints" / "step-4" / checkpoint.MODULES_NAME))
        assert saved["proj.weight"].shape == (32, 16) and torch.equal(saved["proj.weight"], task.proj.weight)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    parts = {"distilbert": ("ce", "task", "cos"), "tinybert": ("emb", "hidden", "att", "pred")}[method]
    assert all(p in rows[0] for p in parts) and any("accuracy" in r for r in rows)


def test_a_student_equal_to_its_teacher_has_zero_distillation_losses(data):
    teacher = load_teacher(data.classifier, need="classifier")  # eval, fast paths on
    student = student_from_teacher(teacher, range(4), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                   classifier_dropout=0.0).train()  # training: unpad + pack on
    batch = batch_of(data.tok, TEXTS)
    modules = SimpleNamespace(model=student)
    losses, _ = DistilBertTask(student, teacher, None, mode="task").loss(modules, batch)
    assert losses["ce"].item() == pytest.approx(0.0, abs=1e-5) and losses["cos"].item() == pytest.approx(0.0, abs=1e-6)
    losses, metrics = TinyBertTask(student, teacher, None, mode="task", stage="all").loss(modules, batch)
    for part in ("emb", "hidden", "att"):
        assert losses[part].item() == pytest.approx(0.0, abs=1e-8), part
    # the prediction loss of a perfect copy is the teacher's own entropy; it agrees everywhere
    with torch.no_grad():
        p = teacher(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).logits.softmax(-1)
    assert losses["pred"].item() == pytest.approx(float(-(p * p.log()).sum(-1).mean()), abs=1e-5)
    assert metrics["agree"].item() == 1.0


def test_tinybert_parts_equal_a_hand_computation_on_the_plain_path(data):
    teacher = load_teacher(data.classifier, need="classifier")
    torch.manual_seed(3)
    student = BertForSequenceClassification(tiny_config(data.tok.vocab_size, layers=2, hidden=16,
                                                        num_labels=2)).eval()
    task = TinyBertTask(student, teacher, None, mode="task", stage="all", temperature=2.0,
                        alphas=dict(att=3.0))
    batch = batch_of(data.tok, TEXTS)
    losses, _ = task.loss(SimpleNamespace(model=student, proj=task.proj), batch)

    x = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    plain = BertForSequenceClassification.from_pretrained(data.classifier).eval()  # fast paths off in eval
    with torch.no_grad():
        s = student(**x, output_hidden_states=True, output_attention_scores=True)
        t = plain(**x, output_hidden_states=True, output_attention_scores=True)
        lengths = x["attention_mask"].sum(1).tolist()
        mse = lambda a, b: float(((a - b) ** 2).mean().detach())  # noqa: E731
        def hidden(m, k):  # over the real tokens only, through the projection
            return mse(torch.cat([task.proj(s.hidden_states[m][b, :n]) for b, n in enumerate(lengths)]),
                       torch.cat([t.hidden_states[k][b, :n] for b, n in enumerate(lengths)]))
        att = 0.0
        for m, k in ((1, 2), (2, 4)):  # layer map 0, 2, 4
            sq = [float(((s.attention_scores[m - 1][b, :, :n, :n] - t.attention_scores[k - 1][b, :, :n, :n]) ** 2).sum())
                  for b, n in enumerate(lengths)]
            att += sum(sq) / (2 * sum(n * n for n in lengths))
        q = (t.logits / 2).softmax(-1)
        pred = float((-(q * (s.logits / 2).log_softmax(-1)).sum(-1)).mean())
    assert losses["emb"].item() == pytest.approx(hidden(0, 0), rel=1e-5)
    assert losses["hidden"].item() == pytest.approx(hidden(1, 2) + hidden(2, 4), rel=1e-5)
    assert losses["att"].item() == pytest.approx(3.0 * att, rel=1e-5)
    assert losses["pred"].item() == pytest.approx(pred, rel=1e-5)
    assert task.counts(batch) == {"emb": sum(lengths), "hidden": sum(lengths), "pred": 3,
                                  "att": 2 * sum(n * n for n in lengths)}
    assert L.uniform_layer_map(2, 4) == task.layer_map == [0, 2, 4]


def test_a_teacher_of_the_wrong_kind_is_refused_in_one_line(data, shards, capsys):  # noqa: F811
    def refused(*argv):
        assert cli(["distill", *argv, "--out", data.root / "refused", *sets()]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    # general DistilBERT needs an MLM head (MiniLM has none): the message names the task-specific mode
    err = refused("--teacher", data.encoder, "--student-layers", "0,2", "--data", shards)
    assert "without an MLM head" in err and "--train FILE" in err
    # task distillation needs a task head (TinyBERT's issue #52)
    err = refused("--method", "tinybert", "--teacher", data.encoder, "--student-layers", "0,2", "--train", data.train)
    assert "no task head" in err and "berts finetune" in err
    err = refused("--teacher", data.classifier, "--train", data.train)
    assert "give one student" in err
    err = refused("--teacher", data.classifier, "--student-layers", "0,9", "--train", data.train)
    assert "the teacher's layers are 0 to 3" in err
    err = refused("--method", "tinybert", "--teacher", data.classifier, "--student-preset", "tiny", "--set",
                  "model.num_attention_heads=4", "--set", "model.hidden_size=16", "--train", data.train)
    assert "heads" in err


def test_general_distillation_on_shards(shards, mlm_teacher, tmp_path):  # noqa: F811
    import berts

    out = tmp_path / "distilbert"
    assert cli(["distill", "--teacher", mlm_teacher, "--student-layers", "1,3", "--data", shards, "--out", out,
                "--max-steps", "3", "--batch-size", "8", *sets()]) == 0
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"ce", "mlm", "cos", "mlm_acc"} <= set(row)
    assert type(berts.load(out / "final")) is BertForMaskedLM
    # TinyBERT general works from a teacher's encoder (its MLM head unused); the student is a BertModel
    out = tmp_path / "tinybert"
    assert cli(["distill", "--method", "tinybert", "--teacher", mlm_teacher, "--student-layers", "0,3",
                "--data", shards, "--out", out, "--max-steps", "2", "--batch-size", "8", *sets()]) == 0
    assert type(berts.load(out / "final")) is BertModel


def _tiny_student(shards, out, *extra):  # noqa: F811
    return ["distill", "--method", "tinybert", "--data", shards, "--out", out, "--student-preset", "tiny",
            "--batch-size", "8", "--lr", "1e-3", *sets("model.hidden_size=16", "model.num_hidden_layers=2",
                                                       "model.num_attention_heads=2", "model.intermediate_size=32",
                                                       "train.max_steps=16", "train.save_every=4",
                                                       "train.keep_last=2", "train.grad_accum=2", "log.every=4",
                                                       "train.seed=0", "schedule.warmup=0.1", "train.epochs=null"),
            *extra]


@pytest.mark.slow
def test_sigkill_then_resume_of_a_distillation_run_is_bit_identical(shards, mlm_teacher, tmp_path):  # noqa: F811
    from safetensors.torch import load_file

    reference = tmp_path / "reference"
    assert cli(_tiny_student(shards, reference, "--teacher", mlm_teacher)) == 0
    out = tmp_path / "run"
    proc = spawn(SLOW_STEPS, *_tiny_student(shards, out, "--teacher", mlm_teacher))
    kill_after_first_checkpoint(proc, out, 0.1)
    assert cli(_tiny_student(shards, out, "--teacher", mlm_teacher, "--resume", "auto")) == 0
    a, b = weights(reference / "final"), weights(out / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    last = lambda d: load_file(str(checkpoint.find_latest(d) / checkpoint.MODULES_NAME))  # noqa: E731
    pa, pb = last(reference), last(out)
    assert pa.keys() == pb.keys() == {"proj.weight", "proj.bias"} and all(torch.equal(pa[k], pb[k]) for k in pa)

    def rows(d):
        return [(r["step"], r["loss"], r["att"]) for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
                if r["kind"] == "train"]
    assert rows(out) == rows(reference)


def test_task_distillation_from_a_student_directory_then_evaluate(data, tmp_path, capsys):
    import berts

    start = tmp_path / "general-student"
    student_from_teacher(BertModel.from_pretrained(data.encoder), [0, 1], BertModel).save_pretrained(start, data.tok)
    out = tmp_path / "run"
    assert cli(["distill", "--teacher", data.classifier, "--student", start, "--train", data.train, "--dev", data.dev,
                "--out", out, "--max-steps", "4", "--batch-size", "8", *sets()]) == 0
    model = berts.load(out / "best")
    assert type(model) is BertForSequenceClassification and model.config.id2label == {0: "no", 1: "yes"}
    capsys.readouterr()
    assert cli(["evaluate", out / "best", data.dev, "--json"]) == 0  # the student reads the table as trained
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    evals = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    assert result["accuracy"] == pytest.approx(max(r["accuracy"] for r in evals))  # best/ is the best evaluation

    # the hard labels alone (alpha_ce = alpha_cos = 0): the fine-tuning baseline, the teacher not run
    calls = []
    teacher = load_teacher(data.classifier, need="classifier")
    teacher.register_forward_hook(lambda *a: calls.append(1))
    student = student_from_teacher(teacher, [0, 2]).train()
    task = DistilBertTask(student, teacher, None, mode="task", alpha_ce=0.0, alpha_cos=0.0, alpha_mlm=1.0)
    batch = batch_of(data.tok, TEXTS)
    losses, _ = task.loss(SimpleNamespace(model=student), batch)
    assert not calls and set(losses) == {"ce", "task"} and losses["ce"].item() == 0.0
    assert losses["task"].requires_grad and losses["task"].item() > 0
