"""Collator and dataset: batch contract, loader workers, DDP ranks, exact resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_data_support import make_tokenizer, random_corpus

from berts.data import PretrainingCollator, PretrainingDataset, consumed_state, make_pretraining_loader, prepare
from berts.errors import UserError

MASK = 4


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    tok = make_tokenizer(root / "tok")
    corpus = random_corpus(root / "c.txt", 400, seed=11)
    prepare([corpus], tok, root / "nsp", objective="nsp", max_seq_length=64, workers=1, seed=3)
    return root


def originals(batch):
    """Rows with the masked positions given back their labels: the instances as stored."""
    ids = batch["input_ids"].clone().view(-1)
    ids[batch["mlm_positions"]] = batch["mlm_labels"]
    return ids.view(batch["input_ids"].shape)


def test_batch_contract(shards):
    ds = PretrainingDataset(shards / "nsp", masking="wwm", sbo=True, seed=1)
    assert ds.meta["objective"] == "nsp" and ds.meta["vocab_size"] > 100
    indices = np.array([5, 0, 17, 3, 42])
    batch = ds[(2, 7, indices)]
    assert batch["epoch"] == 2 and batch["step"] == 7
    ids, att, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    lengths = ds.lengths[indices]
    bsz, width = ids.shape
    assert bsz == 5 and width % 8 == 0 and width - 8 < lengths.max() <= width
    for key in ("input_ids", "attention_mask", "token_type_ids", "mlm_positions", "mlm_labels",
                "next_sentence_label", "sbo_left", "sbo_right", "sbo_rel"):
        assert batch[key].dtype == torch.long, key
    assert att.sum(1).tolist() == lengths.tolist()
    orig = originals(batch)
    for r, i in enumerate(indices):
        x = ds[int(i)]
        n, b = len(x["input_ids"]), x["b_start"]
        assert orig[r, :n].tolist() == x["input_ids"].tolist() and (orig[r, n:] == 0).all()
        assert types[r].tolist() == [0] * b + [1] * (n - b) + [0] * (width - n)
        assert batch["next_sentence_label"][r].item() == x["label"]
    pos = batch["mlm_positions"]
    assert torch.all(pos[1:] > pos[:-1]) and len(pos) == len(batch["mlm_labels"]) == len(batch["sbo_rel"])
    flat = ids.view(-1)
    assert (flat[pos] == MASK).float().mean() > 0.6  # the gather shows the masked tokens
    assert torch.equal(orig.view(-1)[pos], batch["mlm_labels"])
    assert torch.all(batch["sbo_left"] // width == pos // width) and torch.all(batch["sbo_right"] // width == pos // width)


def test_collator_on_example_dicts():
    coll = PretrainingCollator(vocab_size=50, pad_id=0, mask_id=MASK, special_ids=[0, 1, 2, 3, 4],
                               masking="token", pad_to_multiple_of=8, sentence_labels=False)
    examples = [{"input_ids": np.array([2] + list(range(10, 19)) + [3])}, {"input_ids": np.array([2, 20, 21, 3])}]
    batch = coll(examples, rng=0)
    assert batch["input_ids"].shape == (2, 16)
    assert batch["attention_mask"].sum(1).tolist() == [11, 4]
    assert batch["token_type_ids"].sum().item() == 0 and "next_sentence_label" not in batch
    assert len(batch["mlm_positions"]) == 2  # round(9 * .15) and at least 1
    assert (batch["input_ids"][:, 11:] == 0).all() and (batch["input_ids"][1, 4:] == 0).all()
    assert set((batch["mlm_positions"] // 16).tolist()) == {0, 1}


def row(batch, r):
    """Row r as masked: its real tokens, its masked columns and labels, and its SBO columns."""
    width = batch["input_ids"].shape[1]
    n = int(batch["attention_mask"][r].sum())
    mine = batch["mlm_positions"] // width == r
    out = [batch["input_ids"][r, :n].tolist(), (batch["mlm_positions"][mine] % width).tolist(),
           batch["mlm_labels"][mine].tolist()]
    if "sbo_left" in batch:
        out += [(batch[k][mine] % width).tolist() for k in ("sbo_left", "sbo_right", "sbo_rel")]
    return out


def test_masks_change_with_epoch_and_static_mode(shards):
    ds = PretrainingDataset(shards / "nsp", seed=0)
    idx = np.arange(32)
    a, b, again = ds[(0, 0, idx)], ds[(1, 0, idx)], ds[(0, 0, idx)]
    assert not torch.equal(a["mlm_positions"], b["mlm_positions"])
    assert torch.equal(a["input_ids"], again["input_ids"]) and torch.equal(a["mlm_positions"], again["mlm_positions"])
    assert ds[(0, 9, idx)]["input_ids"].equal(a["input_ids"])  # the step does not matter, the epoch does
    static = PretrainingDataset(shards / "nsp", seed=0, static_masking=True)
    s0, s1 = static[(0, 0, idx)], static[(5, 3, idx)]
    assert torch.equal(s0["input_ids"], s1["input_ids"])
    assert not torch.equal(s0["input_ids"], a["input_ids"])


@pytest.mark.parametrize("masking,static", [("token", False), ("wwm", False), ("span", False), ("token", True)])
def test_an_examples_mask_is_its_own(shards, masking, static):
    """Whatever batch an example lands in, whatever its padded width (pad_to_multiple_of 8 or
    64, a short or a long batch), whichever half of a global batch a rank gets: the same mask."""
    kw = {"seed": 5, "masking": masking, "sbo": masking == "span", "static_masking": static}
    ds, wide = PretrainingDataset(shards / "nsp", **kw), PretrainingDataset(shards / "nsp", pad_to_multiple_of=64, **kw)
    order = np.argsort(ds.lengths, kind="stable")
    short = order[:4]  # short examples: a narrow batch
    assert ds[(2, 0, short)]["input_ids"].shape[1] < 64
    glob = np.concatenate([short, order[-4:]])
    whole = ds[(2, 0, glob)]
    halves = ds[(2, 1, glob[:4])], ds[(2, 1, glob[4:])]  # two ranks, the same global batch
    shuffled = ds[(2, 7, glob[::-1])]
    padded = wide[(2, 0, glob[:4])]
    assert padded["input_ids"].shape[1] == 64 > halves[0]["input_ids"].shape[1]
    for r in range(8):
        want = row(whole, r)
        assert len(want[1]) >= 1
        assert row(halves[r // 4], r % 4) == want
        assert row(shuffled, 7 - r) == want
        if r < 4:
            assert row(padded, r) == want
            assert row(ds[(2, 0, glob[r:r + 1])], 0) == want  # alone
    assert row(ds[(3, 0, glob)], 0) != row(whole, 0) or static  # another epoch


def collect(loader, limit=None):
    out = []
    for k, batch in enumerate(loader):
        if limit is not None and k >= limit:
            break
        out.append(batch)
    return out


def same(x, y):
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) if torch.is_tensor(x[k]) else x[k] == y[k] for k in x)


def test_same_batches_whatever_the_number_of_loader_workers(shards):
    kw = dict(seed=4, masking="span", sbo=True)
    serial, _ = make_pretraining_loader(shards / "nsp", 16, num_workers=0, **kw)
    parallel, _ = make_pretraining_loader(shards / "nsp", 16, num_workers=2, **kw)
    a, b = collect(serial), collect(parallel)
    assert len(a) == len(b) > 10
    assert all(same(x, y) for x, y in zip(a, b))


def test_ddp_ranks_get_disjoint_examples(shards):
    ds = PretrainingDataset(shards / "nsp")
    stored = {tuple(ds[i]["input_ids"].tolist()): i for i in range(len(ds))}
    assert len(stored) == len(ds)  # instances are distinct, so a row names its index
    seen = []
    for rank in (0, 1):
        loader, sampler = make_pretraining_loader(shards / "nsp", 8, seed=9, rank=rank, world_size=2)
        rows = set()
        for batch in loader:
            orig = originals(batch)
            for r, n in enumerate(batch["attention_mask"].sum(1).tolist()):
                rows.add(stored[tuple(orig[r, :n].tolist())])
        assert len(rows) == len(sampler) * 8
        seen.append(rows)
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == len(ds) // 16 * 16


def test_exact_resume(shards):
    loader, _ = make_pretraining_loader(shards / "nsp", 8, seed=2, masking="ngram")
    full = collect(loader, limit=6)
    state = consumed_state(full[2]["epoch"], full[2]["step"], loader.sampler)
    resumed, _ = make_pretraining_loader(shards / "nsp", 8, seed=2, masking="ngram", state=state)
    rest = collect(resumed, limit=3)
    assert [b["step"] for b in rest] == [3, 4, 5]
    assert all(same(x, y) for x, y in zip(rest, full[3:6]))


def test_length_bucketing_and_entity_needs_units(shards):
    loader, _ = make_pretraining_loader(shards / "nsp", 8, bucket_size=4)
    widths = [b["input_ids"].shape[1] for b in collect(loader)]
    assert all(w % 8 == 0 for w in widths)
    with pytest.raises(UserError, match="entity masking needs"):
        PretrainingDataset(shards / "nsp", masking="entity")
    with pytest.raises(UserError, match="not a prepared data directory"):
        PretrainingDataset(shards)


def test_max_predictions_default_and_warning(shards):
    assert PretrainingDataset(shards / "nsp", max_predictions_per_seq=None).max_predictions_per_seq == 10  # 64 tokens
    with pytest.warns(UserWarning, match="caps masking"):
        PretrainingDataset(shards / "nsp", max_predictions_per_seq=3)


def test_one_row_is_not_rounded_up_but_a_batch_is():
    """Batch-1 serving: a single row is padded to its own length (no padding: the encoder then
    skips its unpad machinery); two rows or more pad to the longest rounded up to 8."""
    from berts.data.classification import ClassificationDataset
    from berts.data.tables import Example
    from berts.tokenizer.wordpiece import Tokenizer

    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"])})
    ds = ClassificationDataset([Example("a b a", None, None, 1, "x"), Example("a", None, None, 2, "x")], tok,
                               max_length=64)
    one = ds.collate([0])
    assert one["input_ids"].shape == (1, 5) and one["attention_mask"].all()  # [CLS] a b a [SEP]
    two = ds.collate([0, 1])
    assert two["input_ids"].shape == (2, 8) and two["attention_mask"].sum().item() == 5 + 3
