"""The worked example of docs/extending/objective.md: a sentence-level objective that is one file
(src/berts/objectives/samedoc.py). Its instances by hand, its loss and evaluation sums against a
hand computation, then `berts prepare --objective samedoc` and `berts pretrain --objectives mlm
samedoc` through the command line, the held-out accuracy equal to a count of the saved model's
answers."""
import collections
import json
import random
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from train_utils import cli, pretrain_args, write_corpus

from berts.data.instances import create_instances
from berts.model.heads import BertForPreTraining
from berts.objectives import registry
from conftest import padded_batch, randomize

ROOT = Path(__file__).resolve().parents[1]
CLS, SEP = 2, 3


def test_the_registry_finds_the_file_and_the_doc_shows_it():
    spec = registry.get("samedoc")
    assert (spec.kind, spec.attr, spec.label_key, spec.num_labels) == ("sentence", "same_document",
                                                                     "same_document_label", 2)
    assert "samedoc" in registry.sentence_names()
    doc = (ROOT / "docs" / "extending" / "objective.md").read_text(encoding="utf-8")
    assert "src/berts/objectives/samedoc.py" in doc
    source = (ROOT / "src" / "berts" / "objectives" / "samedoc.py").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert blocks and all(block in source for block in blocks)  # the doc quotes the file as it is


def test_instances_are_the_same_document_apart_from_a_or_another_one():
    # token id -> (document, sentence): every id unique
    docs = [[[1000 * d + 10 * s + w for w in range(4)] for s in range(random.Random(d).randint(2, 9))]
            for d in range(300)]
    where = {t: (d, s) for d, doc in enumerate(docs) for s, sent in enumerate(doc) for t in sent}
    inst = create_instances(docs, random.Random(3), objective="samedoc", max_seq_length=40, short_seq_prob=0.1,
                            cls_id=CLS, sep_id=SEP, dupe_factor=3)
    labels = collections.Counter(x.label for x in inst)
    assert len(inst) > 600 and abs(labels[0] / len(inst) - 0.5) < 0.05 and set(labels) == {0, 1}
    for x in inst:
        assert x.tokens[0] == CLS and x.tokens[x.b_start - 1] == SEP and x.tokens[-1] == SEP and len(x.tokens) <= 40
        a, b = x.tokens[1:x.b_start - 1], x.tokens[x.b_start:-1]
        (da,), (db,) = {where[t][0] for t in a}, {where[t][0] for t in b}
        assert (da == db) == (x.label == 0)
        if x.label == 0:  # at least one whole sentence between A and B
            sa, sb = {where[t][1] for t in a}, {where[t][1] for t in b}
            assert min(sb) >= max(sa) + 2 or max(sb) <= min(sa) - 2


def test_loss_and_evaluation_sums_equal_a_hand_computation(tiny_config, tmp_path):
    model = randomize(BertForPreTraining(tiny_config.replace(objectives=["mlm", "samedoc"]))).eval()
    assert model.seq_relationship is None and model.loss_parts == ("mlm", "samedoc")
    batch, y = padded_batch(), torch.tensor([1, 0, 1])
    out = model(**batch, same_document_label=y)
    head = model.same_document
    logits = (out.pooler_output @ head.weight.T + head.bias).detach()  # [3, 2]
    torch.testing.assert_close(out.losses["samedoc"], F.cross_entropy(logits, y))
    sums = registry.get("samedoc").eval_sums(dict(batch, same_document_label=y), out)
    assert sums["samedoc_acc"] == (float((logits.argmax(-1) == y).sum()), 3)
    assert abs(sums["samedoc_loss"][0] - float(F.cross_entropy(logits, y, reduction="sum"))) < 1e-5
    model.save_pretrained(tmp_path / "m")  # its head saves under its own name and reloads exactly
    assert json.loads((tmp_path / "m" / "config.json").read_text())["objectives"] == ["mlm", "samedoc"]
    again = BertForPreTraining.from_pretrained(tmp_path / "m").eval()
    torch.testing.assert_close(again(**batch).structure_logits, out.structure_logits, rtol=0, atol=0)


def test_prepare_and_pretrain_through_the_command_line(tmp_path, capsys):
    from berts.data.dataset import PretrainingDataset
    from berts.data.sampler import ResumableBatchSampler
    from berts.tasks.base import model_inputs
    from berts.tokenizer.wordpiece import Tokenizer

    corpus, held = write_corpus(tmp_path / "train.txt", docs=60), write_corpus(tmp_path / "held.txt", docs=20, seed=1)
    Tokenizer.train([corpus], 60, show_progress=False).save_pretrained(tmp_path / "tok")
    for text, shards in ((corpus, "shards"), (held, "held")):
        assert cli(["prepare", text, "--tokenizer", tmp_path / "tok", "--out", tmp_path / shards, "--objective",
                    "samedoc", "--max-seq-length", "32", "--workers", "1", "--quiet"]) == 0
    meta = json.loads((tmp_path / "shards" / "meta.json").read_text())
    assert meta["objective"] == "samedoc" and sum(meta["labels"].values()) == meta["counts"]["instances"] > 50
    out = tmp_path / "run"
    assert cli(pretrain_args(tmp_path / "shards", out, "train.max_steps=40", "optim.lr=3e-3", "log.every=10",
                             f"data.eval_shards={tmp_path / 'held'}", "train.eval_batch_size=512")
               + ["--objectives", "mlm", "samedoc"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("kind") == "train"]
    assert all(torch.isfinite(torch.tensor(r["samedoc"])) for r in train)
    assert train[-1]["loss"] < train[0]["loss"]
    held_eval = [r for r in rows if r.get("kind") == "eval"][-1]
    # the held-out samedoc_acc is the share of right answers of the saved model: count them by hand
    model = BertForPreTraining.from_pretrained(out / "final").eval()
    assert model.same_document is not None
    ds = PretrainingDataset(tmp_path / "held", seed=0)
    epoch, step, indices = next(iter(ResumableBatchSampler(len(ds), 512, seed=0, shuffle=False, drop_last=False)))
    batch = model_inputs(ds[(epoch, step, indices)])
    y = batch.pop("next_sentence_label")
    with torch.no_grad():
        right = int((model(**batch, same_document_label=y).structure_logits.argmax(-1) == y).sum())
    assert held_eval["samedoc_acc"] == right / len(y)
    assert "samedoc" in capsys.readouterr().out
