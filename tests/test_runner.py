"""berts.model.runner: the one evaluation/prediction loop (tasks' evaluate, Classifier.logits).
Same numbers as a hand-written loop, eval mode put back, the step cap, autocast passed through
around the forward only, the order restored, and encoded examples padded by the one rule."""
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from berts.model.runner import batch_indices, pad_examples, reduce, rows, run


class Dataset:
    """A berts-style dataset: ``ds[(epoch, step, indices)]`` is a padded batch; it records the items."""

    def __init__(self, n=10, vocab=30, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.lengths = torch.randint(2, 9, (n,), generator=g).numpy()
        self.ids = [torch.randint(5, vocab, (int(k),), generator=g) for k in self.lengths]
        self.items = []

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, item):
        epoch, step, indices = item
        self.items.append((epoch, step, list(indices)))
        return {**pad_examples([{"input_ids": self.ids[i]} for i in indices]), "epoch": epoch, "step": step}


def tiny_model():
    from berts import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, num_labels=3,
                     hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5)
    return BertForSequenceClassification(cfg).train()


def hand_loop(model, ds, batch_size):
    model.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(ds), batch_size):
            b = pad_examples([{"input_ids": ds.ids[i]} for i in range(lo, min(lo + batch_size, len(ds)))])
            out.append(model(**b).logits)
    return torch.cat(out).numpy()


def test_same_logits_as_a_hand_loop_and_eval_mode_put_back():
    model, ds = tiny_model(), Dataset()
    expected = hand_loop(model, ds, 4)
    model.train()
    got = rows(model, ds, forward=lambda b: model(**{k: b[k] for k in ("input_ids", "attention_mask")}).logits,
               batch_size=4)
    assert model.training  # put back (dropout 0.5: the equality below holds only in eval mode)
    assert got.shape == (10, 3) and np.array_equal(got, expected)
    # the sampler's items: epoch 0, step i, consecutive positions
    assert ds.items == [(0, 0, [0, 1, 2, 3]), (0, 1, [4, 5, 6, 7]), (0, 2, [8, 9])]


def test_the_default_forward_and_the_yielded_batches():
    model, ds = tiny_model(), Dataset()
    seen = []
    for batch, out in run(model, ds, batch_size=3):
        assert not model.training  # eval mode inside the loop
        assert not out.logits.requires_grad and torch.is_grad_enabled()  # no_grad around the forward only
        seen.append((batch["index"].tolist(), out.logits.shape[0]))
    assert model.training
    assert seen == [([0, 1, 2], 3), ([3, 4, 5], 3), ([6, 7, 8], 3), ([9], 1)]


def test_order_is_restored_and_the_cap_keeps_the_first_batches():
    model, ds = tiny_model(), Dataset()
    expected = hand_loop(model, ds, 1)  # one at a time: no padding at all
    order = np.argsort(-ds.lengths, kind="stable")
    f = (lambda b: model(**{k: b[k] for k in ("input_ids", "attention_mask")}).logits)
    got = rows(model, ds, forward=f, batch_size=4, order=order)
    np.testing.assert_allclose(got, expected, atol=1e-5)  # padding changes nothing but rounding
    ds.items.clear()
    capped = rows(model, ds, forward=f, batch_size=4, order=order, max_batches=1)
    assert [i[2] for i in ds.items] == [order[:4].tolist()]
    np.testing.assert_allclose(capped, expected[np.sort(order[:4])], atol=1e-5)  # the dataset's order
    assert batch_indices(10, 4, max_batches=0) == [] and rows(model, ds, forward=f, max_batches=0) is None


def test_autocast_is_entered_around_each_forward_only():
    model, ds = tiny_model(), Dataset()
    entered, inside = [], []

    @contextmanager
    def autocast():
        entered.append(True)
        inside.append(True)
        yield
        inside.pop()

    def forward(b):
        assert inside == [True]
        return b["input_ids"].shape[0]

    sizes = [out for _, out in run(model, ds, forward=forward, batch_size=4, autocast=autocast)]
    assert sizes == [4, 4, 2] and len(entered) == 3 and inside == []
    # a real one: bf16 autocast on the CPU gives bf16 logits from the forward
    out = next(run(model, ds, batch_size=4, autocast=lambda: torch.autocast("cpu", dtype=torch.bfloat16)))[1]
    assert out.logits.dtype == torch.bfloat16


def test_mode_is_put_back_after_an_error_and_per_module():
    a, b = tiny_model(), tiny_model().eval()
    ds = Dataset()

    def boom(batch):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        list(run({"a": a, "b": b}, ds, forward=boom))
    assert a.training and not b.training


def test_reduce_inference_mode_and_a_list_of_encoded_examples():
    model = tiny_model()
    examples = [{"input_ids": [2, 7, 8, 3]}, {"input_ids": [2, 9, 3], "token_type_ids": [0, 0, 1]}]
    batch = pad_examples(examples, pad_id=0)
    assert batch["input_ids"].tolist() == [[2, 7, 8, 3, 0, 0, 0, 0], [2, 9, 3, 0, 0, 0, 0, 0]]  # pad_width: 8
    assert batch["attention_mask"].sum(1).tolist() == [4, 3] and batch["token_type_ids"][1, 2] == 1

    def count(state, batch, out):
        assert out.logits.is_inference()
        return state + int(batch["attention_mask"].sum())

    assert reduce(count, 0, model, examples, batch_size=1, inference=True) == 7
