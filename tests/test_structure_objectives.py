"""Structure objectives (issue 11): ERNIE 2.0's sentence reordering and sentence distance
(instances: class balance over thousands of draws, what is shuffled, nothing crossing a document),
StructBERT's word structural objective (which tokens a trigram may use, non-identity shuffles, the
rate, per-example seeds), each loss against a hand computation, save / reload (berts exactly,
transformers loads the base), short runs whose losses go down, and exact resume with wso."""
import collections
import itertools
import json
import random
import shutil
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from train_utils import cli, make_shards, pretrain_args, weights, write_corpus

from berts.data.collate import PretrainingCollator, TrigramShuffle
from berts.data.instances import REORDER_PERMUTATIONS, create_instances
from berts.data.masking import TRIGRAM_SHUFFLES, shuffle_trigrams
from berts.model.heads import BertForMaskedLM, BertForPreTraining
from conftest import padded_batch, randomize

CLS, SEP = 2, 3


def corpus(n_docs, sentences, words, seed=0):
    """Documents whose every token id is unique: id -> (document, sentence, place in the document)."""
    rng = random.Random(seed)
    docs, where, next_id = [], {}, 10
    for d in range(n_docs):
        doc, place = [], 0
        for s in range(rng.randint(*sentences)):
            sent = []
            for _ in range(rng.randint(*words)):
                where[next_id] = (d, s, place)
                sent.append(next_id)
                next_id, place = next_id + 1, place + 1
            doc.append(sent)
        docs.append(doc)
    return docs, where


def contiguous_run(ids, where):
    """True when ids are consecutive tokens of one document."""
    docs = {where[i][0] for i in ids}
    places = [where[i][2] for i in ids]
    return len(docs) == 1 and places == list(range(places[0], places[0] + len(ids)))


# ------------------------------------------------------------------------------ reorder
def test_reorder_instances_balance_and_pieces():
    docs, where = corpus(600, (2, 9), (3, 10))
    inst = create_instances(docs, random.Random(7), objective="reorder", max_seq_length=64, short_seq_prob=0.1,
                            cls_id=CLS, sep_id=SEP, dupe_factor=4)
    assert len(inst) >= 2000
    ks, perms_by_k, cut_at_sentences = collections.Counter(), collections.defaultdict(collections.Counter), 0
    sentence_cuts_possible = 0
    for x in inst:
        assert x.tokens[0] == CLS and x.tokens[-1] == SEP and len(x.tokens) <= 64 and x.b_start == len(x.tokens)
        shown, cur = [], []
        for t in x.tokens[1:]:
            if t == SEP:
                shown.append(cur)
                cur = []
            else:
                cur.append(t)
        perm = REORDER_PERMUTATIONS[x.label]
        assert len(shown) == len(perm) and all(shown)
        original = [None] * len(perm)
        for j, p in enumerate(perm):  # shown[j] is piece perm[j]
            original[p] = shown[j]
        run = [t for piece in original for t in piece]
        # the pieces are exactly the chunk's tokens, reordered; the chunk is one stretch of one document
        assert sorted(run) == sorted(t for piece in shown for t in piece)
        assert contiguous_run(run, where)
        ks[len(perm)] += 1
        perms_by_k[len(perm)][perm] += 1
        # cuts at sentence boundaries when the chunk has enough of them
        sents = [where[t][1] for t in run]
        bounds = sum(1 for a, b in zip(sents, sents[1:]) if a != b)
        if bounds >= len(perm) - 1:
            sentence_cuts_possible += 1
            starts = [where[piece[0]][1] != where[prev[-1]][1] for prev, piece in zip(original, original[1:])]
            cut_at_sentences += all(starts)
    n = len(inst)
    # k uniform in 1..3 (a chunk of fewer than k words takes fewer: rare here); tolerance ~4 sigma
    for k in (1, 2, 3):
        assert abs(ks[k] / n - 1 / 3) < 0.04, (k, ks[k] / n)
    # given k, the order is uniform over the k! permutations
    for k in (2, 3):
        counts = np.array([perms_by_k[k][p] for p in itertools.permutations(range(k))])
        assert len(counts) == len(REORDER_PERMUTATIONS[1:3] if k == 2 else REORDER_PERMUTATIONS[3:])
        assert np.abs(counts / counts.sum() - 1 / len(counts)).max() < 0.05, counts
    assert cut_at_sentences == sentence_cuts_possible
    # the class order is the documented one
    assert REORDER_PERMUTATIONS[:3] == ((0,), (0, 1), (1, 0)) and len(REORDER_PERMUTATIONS) == 9


def test_reorder_cuts_inside_a_sentence_at_word_starts():
    docs = [[[10 + i for i in range(30)]], [[100 + i for i in range(30)]]]  # one sentence each
    cont = np.zeros(200, dtype=bool)
    cont[[11, 12, 13, 15, 16, 101, 102]] = True  # "##" pieces: never the start of a piece
    inst = create_instances(docs, random.Random(0), objective="reorder", max_seq_length=64, short_seq_prob=0.0,
                            cls_id=CLS, sep_id=SEP, continuation=cont, dupe_factor=200)
    multi = 0
    for x in inst:
        pieces = [list(g) for is_sep, g in itertools.groupby(x.tokens[1:], lambda t: t == SEP) if not is_sep]
        firsts = [p[0] for p in pieces]
        starts = sorted(firsts)[1:]  # every piece's first token but the chunk's own
        assert not cont[starts].any()
        multi += len(pieces) > 1
    assert multi > 100


# ------------------------------------------------------------------------------ distance
def split_pair(x):
    a = x.tokens[1:x.b_start - 1]
    b = x.tokens[x.b_start:-1]
    assert x.tokens[0] == CLS and x.tokens[x.b_start - 1] == SEP and x.tokens[-1] == SEP
    return a, b


def test_distance_instances_balance_and_documents():
    # documents fit the sequence whole (<= 48 tokens, 128 positions): no truncation, so the
    # adjacency of class 0 is exact at the token level
    docs, where = corpus(400, (1, 8), (3, 6))
    inst = create_instances(docs, random.Random(3), objective="distance", max_seq_length=128, short_seq_prob=0.0,
                            cls_id=CLS, sep_id=SEP, dupe_factor=3)
    assert len(inst) >= 2000
    labels = collections.Counter(x.label for x in inst)
    n = len(inst)
    for c in (0, 1, 2):  # 1/3 each within 0.03 (about 3.5 sigma at n = 2000)
        assert abs(labels[c] / n - 1 / 3) < 0.03, (c, labels[c] / n)
    for x in inst:
        a, b = split_pair(x)
        assert a and b and contiguous_run(a, where) and contiguous_run(b, where)
        da, db = where[a[0]][0], where[b[0]][0]
        if x.label == 2:
            assert da != db
            continue
        assert da == db  # classes 0 and 1: B from A's document
        if x.label == 0:
            assert where[b[0]][2] == where[a[-1]][2] + 1  # B follows A
        else:  # at least one whole sentence between them, before or after A
            after = where[b[0]][1] - where[a[-1]][1]
            before = where[a[0]][1] - where[b[-1]][1]
            assert after >= 2 or before >= 2, (a, b)


def test_distance_on_short_documents_skews_and_meta_counts_it(tmp_path):
    """Two-sentence documents rarely allow class 1: the balance shows it, and meta.json counts it."""
    docs, _ = corpus(300, (2, 2), (3, 6))
    inst = create_instances(docs, random.Random(0), objective="distance", max_seq_length=128, short_seq_prob=0.0,
                            cls_id=CLS, sep_id=SEP)
    assert collections.Counter(x.label for x in inst)[1] == 0  # never possible: 2 sentences, A takes one

    corpus_path = write_corpus(tmp_path / "c.txt", docs=60)
    shards = make_shards(tmp_path, corpus_path, objective="distance", max_seq_length=48)
    meta = json.loads((shards / "meta.json").read_text())
    from berts.data.shards import ShardReader

    labels = ShardReader(shards).index[:, 3]
    assert meta["objective"] == "distance"
    assert meta["labels"] == {str(c): int((labels == c).sum()) for c in range(3)}
    assert sum(meta["labels"].values()) == meta["counts"]["instances"]


# ------------------------------------------------------------------------------ wso
def test_shuffle_trigrams_positions_permutations_and_rate():
    rng = np.random.default_rng(0)
    B, W = 400, 64
    ids = np.arange(B * W, dtype=np.int64).reshape(B, W) + 10  # unique ids: a shuffle always shows
    free = rng.random((B, W)) < 0.85
    free[:, 0] = False
    lengths = rng.integers(20, W + 1, size=B)
    free &= np.arange(W)[None, :] < lengths[:, None]
    for rate in (0.05, 0.2):
        x = ids.copy()
        gens = [np.random.default_rng([1, r]) for r in range(B)]
        positions, labels = shuffle_trigrams(x, free, gens, rate)
        assert len(positions) % 3 == 0 and np.all(np.diff(positions) > 0)
        flat_free, flat_x, flat_ids = free.reshape(-1), x.reshape(-1), ids.reshape(-1)
        assert flat_free[positions].all()  # only free tokens
        assert np.array_equal(labels, flat_ids[positions])
        changed = np.flatnonzero(flat_x != flat_ids)
        assert set(changed) <= set(positions)
        for t in positions.reshape(-1, 3):
            assert t[1] == t[0] + 1 and t[2] == t[0] + 2 and t[0] // W == t[2] // W  # one row, consecutive
            shown, orig = flat_x[t], flat_ids[t]
            assert sorted(shown) == sorted(orig) and not np.array_equal(shown, orig)  # non-identity
        # the rate: shuffled tokens / free tokens (stochastic rounding of rate x free / 3 per row)
        share = len(positions) / free.sum()
        assert abs(share - rate) < 0.1 * rate, (rate, share)
    # the 5 non-identity orders, each used
    assert len({tuple(p) for p in TRIGRAM_SHUFFLES}) == 5 and (0, 1, 2) not in {tuple(p) for p in TRIGRAM_SHUFFLES}


def collator(**kw):
    return PretrainingCollator(vocab_size=500, pad_id=0, mask_id=4, special_ids=[0, 1, 2, 3, 4],
                               transforms=[TrigramShuffle(kw.pop("rate", 0.2))], **kw)


def examples(n=64, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = rng.integers(5, 500, size=rng.integers(5, 20)), rng.integers(5, 500, size=rng.integers(5, 20))
        out.append({"input_ids": np.concatenate([[2], a, [3], b, [3]]), "b_start": len(a) + 2, "label": 0})
    return out


def test_wso_in_the_collator_never_touches_masked_special_or_padding_and_is_per_example():
    ex = examples()
    c = collator()
    lengths = np.array([len(e["input_ids"]) for e in ex])
    width = c.width(int(lengths.max()))
    ids = np.zeros((len(ex), width), dtype=np.int64)
    for r, e in enumerate(ex):
        ids[r, :lengths[r]] = e["input_ids"]
    b_start = np.array([e["b_start"] for e in ex])
    batch = c.collate_arrays(ids, lengths, b_start, np.zeros(len(ex), np.int64), None,
                             [np.random.default_rng([5, i]) for i in range(len(ex))])
    pos, lab = batch["wso_positions"].numpy(), batch["wso_labels"].numpy()
    assert len(pos) > 0 and not set(pos) & set(batch["mlm_positions"].numpy())
    flat_ids = ids.reshape(-1)
    assert np.array_equal(lab, flat_ids[pos])
    assert not np.isin(flat_ids[pos], [0, 1, 2, 3, 4]).any()  # no special, no padding
    assert (pos % width < lengths[pos // width]).all()
    # nothing crosses [SEP]: a trigram's three tokens are in one segment
    seg = (np.arange(width)[None, :] >= b_start[:, None]).reshape(-1)
    t = pos.reshape(-1, 3)
    assert (seg[t[:, 0]] == seg[t[:, 2]]).all()
    # the input shows the shuffle; the MLM targets still hold the original ids
    shown = batch["input_ids"].numpy().reshape(-1)
    assert (shown[pos] != flat_ids[pos]).any()
    # per example: row 3 alone gives the same mask and shuffle as inside the batch
    one = c.collate_arrays(ids[3:4, :lengths[3]], lengths[3:4], b_start[3:4], np.zeros(1, np.int64), None,
                           [np.random.default_rng([5, 3])])
    in_batch = pos[pos // width == 3] % width
    assert np.array_equal(one["wso_positions"].numpy(), in_batch)
    assert np.array_equal(one["input_ids"].numpy()[0], batch["input_ids"].numpy()[3, :lengths[3]])


# ------------------------------------------------------------------------------ losses by hand
@pytest.mark.parametrize("kind,classes", [("reorder", 9), ("distance", 3)])
def test_sentence_structure_loss_equals_hand_computation(tiny_config, kind, classes, tmp_path):
    config = tiny_config.replace(objectives=["mlm", kind])
    model = randomize(BertForPreTraining(config)).eval()
    assert model.seq_relationship is None and model.loss_parts == ("mlm", kind)
    batch = padded_batch()
    y = torch.tensor([0, classes - 1, 1])
    out = model(**batch, **{f"sentence_{kind}_label": y})
    assert out.structure_logits.shape == (3, classes)
    head = model.structure
    logits = out.pooler_output @ head.weight.T + head.bias
    hand = -(torch.log_softmax(logits, -1)[torch.arange(3), y]).mean()
    torch.testing.assert_close(out.losses[kind], hand)
    torch.testing.assert_close(out.metrics[f"{kind}_acc"], (logits.argmax(-1) == y).float().mean())
    assert model.loss_counts(dict(batch, **{f"sentence_{kind}_label": y})) == {kind: 3}

    # save: berts reloads it exactly; transformers' BertForPreTraining loads the base (and ignores the head)
    import transformers

    from berts.hf import from_pretrained

    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["objectives"] == ["mlm", kind] and not any(k.startswith("berts_structure") for k in cfg)
    again = from_pretrained(BertForPreTraining, tmp_path / "m").eval()
    out2 = again(**batch, **{f"sentence_{kind}_label": y})
    torch.testing.assert_close(out2.structure_logits, out.structure_logits, rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.BertForPreTraining.from_pretrained(tmp_path / "m", output_loading_info=True)
    hf, info = theirs
    assert any(f"cls.sentence_{kind}" in k for k in info["unexpected_keys"])
    assert set(info["missing_keys"]) == {"cls.seq_relationship.weight", "cls.seq_relationship.bias"}
    with torch.no_grad():
        ref = hf.eval()(**batch).prediction_logits
    ours = model(**batch).prediction_logits
    torch.testing.assert_close(ref, ours, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [BertForPreTraining, BertForMaskedLM])
def test_wso_loss_equals_hand_computation(tiny_config, cls):
    config = tiny_config.replace(objectives=["mlm", "wso"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = randomize(cls(config)).eval()
    assert "wso" in model.loss_parts and model.metric_parts["wso_acc"] == "wso"
    batch = padded_batch()
    S = batch["input_ids"].shape[1]
    wso_positions = torch.tensor([1, 2, 3, S + 4, S + 5, S + 6])
    wso_labels = torch.tensor([7, 8, 9, 10, 11, 12])
    out = model(**batch, mlm_positions=torch.tensor([5]), mlm_labels=torch.tensor([3]),
                wso_positions=wso_positions, wso_labels=wso_labels)
    h = out.last_hidden_state.reshape(-1, out.last_hidden_state.shape[-1])[wso_positions]
    logits = model.mlm.predict(h)
    torch.testing.assert_close(out.losses["wso"], F.cross_entropy(logits, wso_labels))
    torch.testing.assert_close(out.metrics["wso_acc"], (logits.argmax(-1) == wso_labels).float().mean())
    assert model.loss_counts(dict(batch, mlm_labels=torch.tensor([3]), wso_labels=wso_labels))["wso"] == 6
    # the sparse fast path (training mode; dropout off) gives the same loss
    model.train()
    sparse = model(**batch, mlm_positions=torch.tensor([5]), mlm_labels=torch.tensor([3]),
                   wso_positions=wso_positions, wso_labels=wso_labels)
    torch.testing.assert_close(sparse.losses["wso"], out.losses["wso"], atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------ short runs
def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
            if json.loads(line).get("kind") == "train"]


ORDINALS = "first second third fourth fifth sixth seventh eighth".split()
TOPICS = [w.split() for w in ("cat dog bird fish horse", "red blue green black white", "river hill tree rock lake",
                              "run walk jump swim fly", "bread milk rice soup tea", "car bus train ship plane")]


def structured_corpus(path, docs=150, seed=0):
    """Text with what the structure tasks need to be learnable: a document keeps to one topic
    (same / other document) and its sentences say their place (adjacent / far; the order)."""
    rng = random.Random(seed)
    out = []
    for _ in range(docs):
        topic = rng.choice(TOPICS)
        out.append("\n".join(f"{ORDINALS[j]} " + " ".join(rng.choice(topic) for _ in range(rng.randint(2, 4))) + "."
                             for j in range(rng.randint(3, 8))))
    path.write_text("\n\n".join(out) + "\n", encoding="utf-8")
    return path


def fixed_tokenizer(corpus, directory):
    """The corpus's own words as a WordPiece vocabulary, in sorted order. Not `tokenizers`' trainer:
    it breaks ties between equally frequent pairs in hash-map order, so the same text trains another
    vocabulary in another process (huggingface/tokenizers#1794), and with it this file's held-out
    reorder accuracy moved between 0.65 and 0.74 from run to run."""
    import re

    from berts.tokenizer.wordpiece import SPECIAL_TOKENS, Tokenizer

    words = sorted(set(re.findall(r"\w+|[^\w\s]", corpus.read_text(encoding="utf-8").lower())))
    chars = sorted(set("".join(words)))
    tokens = [*SPECIAL_TOKENS, *chars, *("##" + c for c in chars), *(w for w in words if len(w) > 1)]
    Tokenizer.from_vocab({t: i for i, t in enumerate(tokens)}).save_pretrained(directory)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("structure")
    train = structured_corpus(root / "train.txt", docs=600)
    held_out = structured_corpus(root / "eval.txt", docs=200, seed=1)
    fixed_tokenizer(train, root / "tok")  # make_shards uses it (and the held-out shards a copy)
    out = {}
    for obj in ("reorder", "distance"):
        out[obj] = make_shards(root, train, objective=obj, max_seq_length=48, vocab_size=120)
        ev = root / "eval"
        if not ev.exists():
            ev.mkdir()
            shutil.copytree(root / "tok", ev / "tok")  # the same tokenizer
        out[obj + "-eval"] = make_shards(ev, held_out, objective=obj, max_seq_length=48, vocab_size=120)
    return out


# a model wide enough to learn the sentence tasks in a few seconds (dropout off)
SMALL = ["model.hidden_size=64", "model.intermediate_size=128", "model.hidden_dropout_prob=0",
         "model.attention_probs_dropout_prob=0", "train.batch_size=16", "optim.lr=2e-3", "log.every=100"]
# chance on held-out instances: reorder, a model that counts the [SEP]s (k) and guesses the order:
# 1/3 (1 + 1/2 + 1/6) = 5/9; distance: 1/3 (balanced classes)
CHANCE = {"reorder": 5 / 9, "distance": 1 / 3}


@pytest.mark.slow
@pytest.mark.parametrize("objective,extra", [("reorder", ()), ("distance", ()), ("distance", ("data.wso=true",))])
def test_short_pretraining_runs_learn_each_task(data, tmp_path, objective, extra):
    out = tmp_path / "run"
    steps = 900 if not extra else 300
    assert cli(pretrain_args(data[objective], out, f"train.max_steps={steps}", *SMALL,
                             f"data.eval_shards={data[objective + '-eval']}", *extra)) == 0
    rows = records(out)
    first, last = rows[0], rows[-1]
    parts = ["mlm"] + (["wso"] if extra else [objective])  # (300 steps are too few for the sentence task)
    for part in parts:
        assert last[part] < first[part] - 0.05, (part, first[part], last[part])
    saved = json.loads((out / "final" / "config.json").read_text())
    assert saved["objectives"] == ["mlm", objective] + (["wso"] if extra else [])
    evaluation = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                  if json.loads(line).get("kind") == "eval"][-1]
    print(objective, extra, "held-out", {k: round(v, 3) for k, v in evaluation.items() if isinstance(v, float)})
    if not extra:  # well above chance on held-out text (measured: see the test's report)
        assert evaluation[f"{objective}_acc"] > CHANCE[objective] + 0.08, evaluation
    else:
        assert 0 < evaluation["wso_acc"] <= 1 and evaluation["wso_loss"] < first["wso"]


def test_wso_resume_is_exact(data, tmp_path):
    out = tmp_path / "run"
    run = ["train.max_steps=12", "train.save_every=6", "train.keep_last=2", "log.every=6", "data.wso=true"]
    assert cli(pretrain_args(data["reorder"], out, *run)) == 0
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    shutil.rmtree(resumed / "final")
    shutil.rmtree(resumed / "checkpoints" / "step-12")
    assert cli(pretrain_args(data["reorder"], resumed, *run) + ["--resume", "auto"]) == 0
    a, b = weights(out / "final"), weights(resumed / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_prepare_command_reorder_is_deterministic_across_workers(tmp_path, capsys):
    path = structured_corpus(tmp_path / "c.txt", docs=200)
    from berts.tokenizer.wordpiece import Tokenizer

    Tokenizer.train([path], 120, show_progress=False).save_pretrained(tmp_path / "tok")
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"s{workers}"
        assert cli(["prepare", path, "--tokenizer", tmp_path / "tok", "--out", out, "--objective", "reorder",
                    "--max-seq-length", "48", "--workers", workers, "--quiet"]) == 0
        outs.append(out)
    printed = capsys.readouterr().out
    assert "classes 0:" in printed and "8:" in printed  # the class shares, in the one-line summary
    meta = json.loads((outs[0] / "meta.json").read_text())
    assert meta["objective"] == "reorder" and len(meta["labels"]) == 9
    for name in ("shard_00000.tokens.bin", "shard_00000.index.npy"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_held_out_mlm_is_measured_on_clean_text_and_wso_on_shuffled(data, tmp_path):
    """With WSO on, the held-out MLM figures come from the shards as they are (comparable with a run
    without WSO) and wso_* from the same shards through the trigram shuffle: each equals the task
    evaluated on that one dataset alone."""
    import contextlib
    from types import SimpleNamespace

    from berts.data.dataset import PretrainingDataset
    from berts.tasks.pretraining import PretrainingTask

    out = tmp_path / "run"
    eval_shards = data["distance-eval"]
    assert cli(pretrain_args(data["distance"], out, "train.max_steps=6", "log.every=3", "data.wso=true",
                             f"data.eval_shards={eval_shards}")) == 0
    held = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
            if json.loads(line).get("kind") == "eval"][-1]
    model = BertForPreTraining.from_pretrained(out / "final").eval()
    engine = SimpleNamespace(device=torch.device("cpu"), autocast=contextlib.nullcontext)
    clean = PretrainingDataset(eval_shards, seed=0)  # the run's masking: the defaults
    shuffled = PretrainingDataset(eval_shards, seed=0, transforms=[TrigramShuffle(0.05)])

    def task(ds):
        return PretrainingTask(model, ds, ds, objectives=["mlm", "distance", "wso"], eval_batches=20).evaluate(engine)

    on_clean, on_shuffled = task(clean), task(shuffled)
    for key in ("mlm_loss", "mlm_acc", "distance_acc"):
        assert held[key] == pytest.approx(on_clean[key], rel=1e-5, abs=1e-6), key
    for key in ("wso_loss", "wso_acc"):
        assert key not in on_clean and held[key] == pytest.approx(on_shuffled[key], rel=1e-5, abs=1e-6), key
    assert on_clean["mlm_acc"] != on_shuffled["mlm_acc"] or on_clean["mlm_loss"] != on_shuffled["mlm_loss"]
