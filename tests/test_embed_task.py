"""`berts finetune --task sentence-embedding`: the losses through the task equal the hand-computed
ones, the runs save sentence-transformers directories, the dev metrics, and DDP's gathered
negatives (2 processes = 1 process with the doubled batch)."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from berts.cli import main
from test_embed_cli import WORDS, make_model

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--set", "log.progress=none", "--set", "impl.threads=1", "--set", "log.tensorboard=false",
        "--set", "log.plots=false", "--set", "train.seed=0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedtask")
    r = random.Random(0)
    sent = [" ".join(r.choice(WORDS) for _ in range(r.randint(3, 7))) for _ in range(40)]
    (root / "pairs.tsv").write_text("a\tb\tneg\n" + "".join(f"{s}\t{s} the\t{sent[(i + 1) % 40]}\n"
                                                           for i, s in enumerate(sent)))
    rows = []
    for i, s in enumerate(sent[:24]):
        other = s + " the" if i % 3 == 0 else sent[(i * 7) % 40]  # no exact duplicates: no tied cosines
        rows.append(f"{s}\t{other}\t{1.0 if i % 3 == 0 else 0.1 * (i % 3)}\n")
    (root / "sts.tsv").write_text("a\tb\tscore\n" + "".join(rows))
    return {"root": root, "model": make_model(root / "m"), "sent": sent}


def finetune(data, out, *args):
    return main(["finetune", "--task", "sentence-embedding", "--model", str(data["model"]), "--text-column", "a",
                 "--out", str(out), *FAST, *map(str, args)])


@pytest.fixture(scope="module")
def mnrl_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mnrl") / "run"
    assert finetune(data, out, "--train", data["root"] / "pairs.tsv", "--pair-column", "b", "--dev",
                    data["root"] / "pairs.tsv", "--max-steps", 4, "--batch-size", 8, "--eval-every", 2,
                    "--normalize") == 0
    return out


def test_mnrl_run_saves_a_sentence_transformers_directory(data, mnrl_run):
    best = mnrl_run / "best"
    modules = json.loads((best / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    assert json.loads((best / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True
    result = json.loads((best / "eval_results.json").read_text())
    assert result["metric"] == "ndcg@10" and set(result["metrics"]) == {"ndcg@10", "recall@1", "recall@10",
                                                                        "mrr@10", "map"}
    from berts.embed.encoder import Encoder

    texts = data["sent"][:6]
    ours = Encoder.from_pretrained(best).encode(texts)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)
    before = Encoder.from_pretrained(data["model"], normalize=True).encode(texts)
    assert np.abs(ours - before).max() > 1e-3  # it trained


@pytest.mark.slow  # importing sentence-transformers alone takes ~10 s
def test_sentence_transformers_reads_the_run_with_our_embeddings(data, mnrl_run):
    from berts.embed.encoder import Encoder

    texts = data["sent"][:6]
    best = mnrl_run / "best"
    ours = Encoder.from_pretrained(best).encode(texts)
    st = pytest.importorskip("sentence_transformers")
    theirs = st.SentenceTransformer(str(best), device="cpu").encode(texts)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def _one_batch_task(data, loss, views_texts, scores=None):
    from berts.embed.encoder import load_bare_encoder
    from berts.tasks.sentence_embedding import SentenceDataset, SentenceEmbeddingTask
    from berts.tokenizer.wordpiece import load_tokenizer

    tok = load_tokenizer(data["model"])
    model = load_bare_encoder(data["model"])
    model.pooler = None
    ds = SentenceDataset(views_texts, tok, 32, scores)
    task = SentenceEmbeddingTask(model, tok, ds, loss=loss, temperature=0.05, max_length=32)
    return task, ds


def test_losses_through_the_task_equal_hand_computations(data):
    s = data["sent"]
    a, b, n = s[:5], [x + " the" for x in s[:5]], s[5:10]
    task, ds = _one_batch_task(data, "mnrl", [a, b, n])
    task.model.eval()  # no dropout: the same embeddings as Encoder.encode
    batch = ds[(0, 0, np.arange(5))]
    assert batch["input_ids"].shape[0] == 15 and task.counts(batch) == {"mnrl": 5}
    losses, _ = task.loss({"model": task.model}, batch)
    e = {k: torch.from_numpy(task.encoder.encode(t, normalize=True)) for k, t in (("a", a), ("b", b), ("n", n))}
    logits = 20 * e["a"] @ torch.cat([e["b"], e["n"]]).T  # [5, 10]: positives then hard negatives
    torch.testing.assert_close(losses["mnrl"], F.cross_entropy(logits, torch.arange(5)), rtol=0, atol=1e-5)

    gold = torch.tensor([1.0, 0.2, 0.8, 0.0, 0.5])
    for loss in ("cosent", "cosine"):
        task, ds = _one_batch_task(data, loss, [a, s[10:15]], gold.numpy())
        task.model.eval()
        losses, _ = task.loss({"model": task.model}, ds[(0, 0, np.arange(5))])
        u, v = (torch.from_numpy(task.encoder.encode(t, normalize=True)) for t in (a, s[10:15]))
        cos = (u * v).sum(1)
        if loss == "cosine":
            want = ((cos - gold) ** 2).mean()
        else:  # log(1 + sum over gold_i > gold_j of exp(20 (cos_j - cos_i)))
            terms = [torch.exp(20 * (cos[j] - cos[i])) for i in range(5) for j in range(5) if gold[i] > gold[j]]
            want = torch.log(1 + sum(terms))
        torch.testing.assert_close(losses[loss], want, rtol=1e-5, atol=1e-5)


def test_simcse_uses_dropout_as_noise_and_sts_dev(data, tmp_path):
    s = data["sent"][:4]
    task, ds = _one_batch_task(data, "simcse", [s])
    batch = ds[(0, 0, np.arange(4))]
    task.model.eval()  # without dropout the two views are equal: the loss is MNRL of a batch against itself
    e = torch.from_numpy(task.encoder.encode(s, normalize=True))
    want = F.cross_entropy(20 * e @ e.T, torch.arange(4))
    torch.testing.assert_close(task.loss({"model": task.model}, batch)[0]["simcse"], want, rtol=0, atol=1e-5)
    task.model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        assert abs(float(task.loss({"model": task.model}, batch)[0]["simcse"]) - float(want)) > 1e-4  # dropout

    out = tmp_path / "simcse"
    assert finetune(data, out, "--train", data["root"] / "pairs.tsv", "--loss", "simcse", "--dev",
                    data["root"] / "sts.tsv", "--pair-column", "b", "--label-column", "score",
                    "--max-steps", 2, "--batch-size", 8, "--eval-every", 2) == 0
    best = json.loads((out / "best" / "eval_results.json").read_text())
    assert best["metric"] == "spearman" and set(best["metrics"]) == {"spearman", "pearson"}
    from berts.embed.encoder import Encoder
    from berts.embed.metrics import spearman

    enc = Encoder.from_pretrained(out / "best")
    rows = [line.split("\t") for line in (data["root"] / "sts.tsv").read_text().splitlines()[1:]]
    u, v = enc.encode([r[0] for r in rows], normalize=True), enc.encode([r[1] for r in rows], normalize=True)
    assert abs(spearman((u * v).sum(1), [float(r[2]) for r in rows]) - best["value"]) < 1e-6


def test_bad_settings_are_one_line(data, tmp_path, capsys):
    pairs = data["root"] / "pairs.tsv"
    assert finetune(data, tmp_path / "a", "--train", pairs) == 2
    assert "task.loss mnrl trains on pairs: give --pair-column" in capsys.readouterr().err
    assert finetune(data, tmp_path / "b", "--train", pairs, "--pair-column", "b", "--loss", "triplet") == 2
    assert "task.loss must be one of mnrl, simcse, cosent, cosine" in capsys.readouterr().err
    assert finetune(data, tmp_path / "c", "--train", data["root"] / "sts.tsv", "--pair-column", "b", "--label-column",
                    "score", "--loss", "cosent", "--dev", data["root"] / "sts.tsv", "--metric", "ndcg@10") == 2
    assert "train.metric ndcg@10 is not measured on a sts dev set" in capsys.readouterr().err


@pytest.mark.ddp
def test_two_processes_gather_negatives_like_one_process_with_the_doubled_batch(data, tmp_path):
    common = ["finetune", "--task", "sentence-embedding", "--model", str(data["model"]), "--text-column", "a",
              "--pair-column", "b", "--hard-negative-column", "neg", "--train", str(data["root"] / "pairs.tsv"),
              "--max-steps", "3", "--batch-size", "8", "--lr", "1e-2", "--dropout", "0", "--set", "model.attention_probs_dropout_prob=0",
              "--set", "log.every=1", *FAST]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "berts", *common, "--out", str(tmp_path / "two")],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / x / "final" / "model.safetensors")) for x in ("one", "two"))
    start = load_file(str(data["model"] / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert max((a[k] - start[k]).abs().max().item() for k in a if k in start) > 1e-3  # it moved
    losses = [[json.loads(x)["loss"] for x in (tmp_path / r / "metrics.jsonl").read_text().splitlines()
               if '"loss"' in x] for r in ("one", "two")]
    np.testing.assert_allclose(losses[0], losses[1], rtol=0, atol=1e-5)
