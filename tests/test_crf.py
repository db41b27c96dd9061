"""The linear-chain CRF (berts.model.crf): log Z and the best path against brute-force enumeration
of every tag sequence, padded batches against one-at-a-time, constraints, save/load."""
import itertools
import json

import pytest
import torch

from berts.data.tagging import allowed_transitions
from berts.errors import UserError
from berts.model.crf import CRF, load_crf, save_crf


def random_crf(T, seed=0, allowed=None):
    torch.manual_seed(seed)
    crf = CRF(T, allowed=allowed)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape))
    return crf


def brute(crf, em, mask, free_start=False, free_end=False):
    """Every tag sequence over the unmasked positions of one row: (log Z, best path, best score).
    ``free_start``: the row begins inside a longer sequence: its first tag has no start score;
    ``free_end``: the row stops inside a longer sequence: its last tag has no end score."""
    pos = [i for i in range(em.shape[0]) if mask[i]]
    T = crf.num_tags
    start, trans, end = crf._start(), crf._trans(), crf._end()
    if free_start:
        start = torch.zeros_like(start)
    if free_end:
        end = torch.zeros_like(end)
    scores, paths = [], []
    for path in itertools.product(range(T), repeat=len(pos)):
        s = start[path[0]] + end[path[-1]] + sum(em[i, t] for i, t in zip(pos, path))
        s = s + sum(trans[a, b] for a, b in zip(path, path[1:]))
        scores.append(s)
        paths.append(list(path))
    scores = torch.stack(scores)
    return torch.logsumexp(scores, 0), paths[int(scores.argmax())], scores.max()


@pytest.mark.parametrize("S", [1, 2, 3, 4])
def test_partition_and_viterbi_equal_brute_force(S):
    T = 3
    crf = random_crf(T, seed=S)
    torch.manual_seed(100 + S)
    em = torch.randn(2, S, T, dtype=torch.float64)
    crf = crf.double()
    mask = torch.ones(2, S, dtype=torch.bool)
    logz = crf.log_partition(em, mask)
    tags, score = crf.viterbi(em, mask)
    for b in range(2):
        z, best, best_score = brute(crf, em[b], mask[b])
        assert torch.allclose(logz[b], z, atol=1e-10)
        assert tags[b].tolist() == best
        assert torch.allclose(score[b], best_score, atol=1e-10)
        # the score of the best path as computed by score() is the Viterbi score
        assert torch.allclose(crf.score(em[b:b + 1], tags[b:b + 1], mask[b:b + 1])[0], best_score)


def test_holes_in_the_mask_skip_positions():
    """A mask with holes (sub-tokens after a word's first) equals the compacted sequence."""
    crf = random_crf(3, seed=7).double()
    torch.manual_seed(1)
    em = torch.randn(1, 6, 3, dtype=torch.float64)
    mask = torch.tensor([[0, 1, 0, 1, 1, 0]], dtype=torch.bool)
    z, best, _ = brute(crf, em[0], mask[0])
    assert torch.allclose(crf.log_partition(em, mask)[0], z)
    assert crf.decode(em, mask) == [best]
    compact = em[:, mask[0]]
    assert torch.allclose(crf.log_partition(compact)[0], z)
    tags = torch.tensor([[2, 0, 1, 1, 2, 0]])
    assert torch.allclose(crf.score(em, tags, mask), crf.score(compact, tags[:, mask[0]]))


def test_padded_batch_equals_one_at_a_time_and_grads_finite():
    T, S = 4, 7
    crf = random_crf(T, seed=3)
    torch.manual_seed(2)
    lengths = [7, 3, 1, 5]
    em = torch.randn(len(lengths), S, T, requires_grad=True)
    mask = torch.zeros(len(lengths), S, dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, :n] = True
    tags = torch.randint(0, T, (len(lengths), S))
    nll = crf(em, tags, mask, reduction="none")
    paths = crf.decode(em, mask)
    for b, n in enumerate(lengths):
        one = crf(em[b:b + 1, :n], tags[b:b + 1, :n], reduction="none")
        assert torch.allclose(nll[b], one[0], atol=1e-5)
        assert paths[b] == crf.decode(em[b:b + 1, :n])[0]
        assert len(paths[b]) == n
    assert (nll > 0).all()  # -log p of one sequence among many
    crf(em, tags, mask).backward()
    for g in [em.grad] + [p.grad for p in crf.parameters()]:
        assert g is not None and torch.isfinite(g).all()
    # the gradient of log Z wrt emissions is the marginals: each unmasked position sums to 1
    em2 = em.detach().clone().requires_grad_(True)
    crf.log_partition(em2, mask).sum().backward()
    sums = em2.grad.sum(-1)
    assert torch.allclose(sums[mask], torch.ones(int(mask.sum())), atol=1e-5)
    assert torch.all(sums[~mask] == 0)


def test_empty_rows_and_mean_reduction():
    crf = random_crf(3)
    em = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    tags = torch.zeros(2, 4, dtype=torch.long)
    nll = crf(em, tags, mask, reduction="none")
    assert nll[1] == 0 and crf.decode(em, mask)[1] == []
    assert torch.allclose(crf(em, tags, mask), nll.mean())
    assert torch.allclose(crf(em, tags, mask, reduction="sum"), nll.sum())


def test_bio_constraints_forbid_o_to_i():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    start, trans, end = allowed_transitions(labels, "BIO")
    assert start == [True, True, False, True, False]
    assert trans[0] == [True, True, False, True, False]  # O -> I-X forbidden
    assert trans[1] == [True, True, True, True, False]  # B-PER -> I-PER yes, I-LOC no
    crf = CRF(5, allowed=(start, trans, end))  # zero-ish scores: only the emissions decide
    with torch.no_grad():
        for p in crf.parameters():
            p.zero_()
    # emissions that want "O I-PER I-LOC" unconstrained
    em = torch.full((1, 3, 5), -5.0)
    em[0, 0, 0] = 5; em[0, 1, 2] = 5; em[0, 2, 4] = 5
    em[0, 1, 1] = 4; em[0, 2, 3] = 4
    assert CRF(5).requires_grad_(False).decode(em * 100)[0] == [0, 2, 4]
    path = crf.decode(em)[0]
    assert [labels[i] for i in path] == ["O", "B-PER", "B-LOC"]
    # BIOES: a B must be closed by an E
    labels = ["O", "B-X", "I-X", "E-X", "S-X"]
    start, trans, end = allowed_transitions(labels, "BIOES")
    assert end == [True, False, False, True, True]
    assert trans[1] == [False, False, True, True, False]


def test_save_load_round_trip(tmp_path):
    labels = ["O", "B-PER", "I-PER"]
    crf = random_crf(3, allowed=allowed_transitions(labels, "BIO"))
    save_crf(tmp_path, crf, labels, scheme="BIO")
    meta = json.loads((tmp_path / "crf.json").read_text())
    assert meta["labels"] == labels and meta["scheme"] == "BIO" and meta["num_tags"] == 3
    back, names = load_crf(tmp_path)
    assert names == labels
    for k, v in crf.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    em = torch.randn(2, 5, 3)
    assert back.decode(em) == crf.decode(em)
    assert load_crf(tmp_path, labels)[1] == labels
    with pytest.raises(UserError, match="crf.json: the CRF's labels .* are not the model's"):
        load_crf(tmp_path, ["O", "I-PER", "B-PER"])
    (tmp_path / "crf.json").write_text('{"format": "other"}')
    with pytest.raises(UserError, match="crf.json: not a berts CRF"):
        load_crf(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        load_crf(tmp_path / "nowhere")
    with pytest.raises(ValueError):
        save_crf(tmp_path, crf, ["O"])


@pytest.mark.parametrize("scheme,labels", [("BIO", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]),
                                           ("BIOES", ["O", "B-X", "I-X", "E-X", "S-X"])])
def test_constrained_decoding_is_always_valid_and_equals_brute_force(scheme, labels):
    from berts.data.tagging import invalid_transitions

    allowed = allowed_transitions(labels, scheme)
    crf = random_crf(len(labels), seed=5, allowed=allowed).double()
    torch.manual_seed(9)
    em = torch.randn(16, 9, len(labels), dtype=torch.float64) * 3
    lengths = torch.randint(1, 10, (16,))
    mask = torch.arange(9)[None, :] < lengths[:, None]
    for path in crf.decode(em, mask):
        assert invalid_transitions([labels[i] for i in path], scheme) == []
    # brute force (with the penalties) agrees on short rows
    small = em[:3, :3]
    z, best, _ = brute(crf, small[0], torch.ones(3, dtype=torch.bool))
    assert torch.allclose(crf.log_partition(small[:1])[0], z) and crf.decode(small[:1])[0] == best


@pytest.mark.parametrize("S", [1, 2, 3, 4])
def test_free_start_rows_equal_brute_force_without_the_start_score(S):
    """A row that begins inside its sentence (a later window): no start score, no start constraint;
    log Z, the best path, the gold score and the NLL equal brute force over every path."""
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    crf = random_crf(5, seed=20 + S, allowed=allowed_transitions(labels, "BIO")).double()
    torch.manual_seed(30 + S)
    em = torch.randn(3, S + 1, 5, dtype=torch.float64) * 2
    mask = torch.ones(3, S + 1, dtype=torch.bool)
    mask[1, 0] = False  # a hole at the front: the first unmasked position is the "first tag"
    mask[2, S] = False  # right padding
    free = torch.tensor([True, True, False])
    logz = crf.log_partition(em, mask, free_start=free)
    tags, score = crf.viterbi(em, mask, free_start=free)
    gold = torch.randint(0, 5, (3, S + 1))
    nll = crf(em, gold, mask, reduction="none", free_start=free)
    for b in range(3):
        z, best, best_score = brute(crf, em[b], mask[b], free_start=bool(free[b]))
        assert torch.allclose(logz[b], z, atol=1e-10)
        assert tags[b][mask[b]].tolist() == best
        assert torch.allclose(score[b], best_score, atol=1e-10)
        s = crf.score(em[b:b + 1], gold[b:b + 1], mask[b:b + 1], free_start=free[b:b + 1])[0]
        assert torch.allclose(nll[b], z - s, atol=1e-10)
    # free_start=False everywhere is the old behaviour exactly
    none = torch.zeros(3, dtype=torch.bool)
    assert torch.equal(crf.log_partition(em, mask, free_start=none), crf.log_partition(em, mask))
    assert torch.equal(crf.viterbi(em, mask, free_start=none)[0], crf.viterbi(em, mask)[0])


def test_free_start_lifts_the_start_constraint_only():
    """Emissions that want I-PER first: a sentence start may not begin with I- (it decodes B-PER),
    a free_start row may; transitions inside the row stay constrained (no O -> I-PER)."""
    labels = ["O", "B-PER", "I-PER"]
    crf = CRF(3, allowed=allowed_transitions(labels, "BIO"))
    with torch.no_grad():
        for p in crf.parameters():
            p.zero_()
    em = torch.full((2, 3, 3), -5.0)
    em[:, 0, 2] = 5; em[:, 0, 1] = 4  # I-PER wanted, B-PER next best
    em[:, 1, 0] = 5  # O
    em[:, 2, 2] = 5; em[:, 2, 1] = 4  # I-PER after O: forbidden everywhere
    free = torch.tensor([False, True])
    paths = crf.decode(em, free_start=free)
    assert [labels[i] for i in paths[0]] == ["B-PER", "O", "B-PER"]
    assert [labels[i] for i in paths[1]] == ["I-PER", "O", "B-PER"]
    gold = torch.tensor([[2, 0, 1], [2, 0, 1]])
    nll = crf(em, gold, free_start=free, reduction="none")
    assert nll[0] > 1e3 and nll[1] < 1  # gold starting with I-PER: penalised only at a sentence start
    with pytest.raises(ValueError, match="free_start must be"):
        crf.log_partition(em, free_start=torch.tensor([True]))


def brute_score(crf, em, tags, mask, free_start=False, free_end=False):
    """The score of one tag sequence over the unmasked positions of one row, written out."""
    pos = [i for i in range(em.shape[0]) if mask[i]]
    path = [int(tags[i]) for i in pos]
    s = sum(em[i, t] for i, t in zip(pos, path))
    s = s + sum(crf._trans()[a, b] for a, b in zip(path, path[1:]))
    if not free_start:
        s = s + crf._start()[path[0]]
    if not free_end:
        s = s + crf._end()[path[-1]]
    return s


@pytest.mark.parametrize("S", [1, 2, 3, 4])
def test_free_end_rows_equal_brute_force_without_the_end_score(S):
    """Rows that stop inside their sentence (a window cut before the last word): no end score, no
    end constraint (BIOES: a sentence may not end in B- or I-). Every free_start x free_end mix in
    one padded batch with holes: log Z, the best path and its score, the gold score and the NLL
    equal brute force over every path, and each row run alone (unpadded) gives the same."""
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    crf = random_crf(5, seed=40 + S, allowed=allowed_transitions(labels, "BIOES")).double()
    torch.manual_seed(50 + S)
    B = 6
    em = torch.randn(B, S + 2, 5, dtype=torch.float64) * 2
    mask = torch.ones(B, S + 2, dtype=torch.bool)
    mask[:, S:] = False  # S tags a row, right padding after them
    mask[1, 0] = False; mask[1, S] = True  # a hole at the front
    mask[3, S + 1] = True; mask[3, S] = False  # a hole before the last tag
    free_start = torch.tensor([False, True, False, True, False, True])
    free_end = torch.tensor([False, False, True, True, True, True])
    gold = torch.randint(0, 5, (B, S + 2))
    logz = crf.log_partition(em, mask, free_start, free_end)
    tags, score = crf.viterbi(em, mask, free_start, free_end)
    nll = crf(em, gold, mask, reduction="none", free_start=free_start, free_end=free_end)
    gold_score = crf.score(em, gold, mask, free_start, free_end)
    paths = crf.decode(em, mask, free_start, free_end)
    for b in range(B):
        fs, fe = bool(free_start[b]), bool(free_end[b])
        z, best, best_score = brute(crf, em[b], mask[b], free_start=fs, free_end=fe)
        assert torch.allclose(logz[b], z, atol=1e-10)
        assert tags[b][mask[b]].tolist() == best == paths[b]
        assert torch.allclose(score[b], best_score, atol=1e-10)
        s = brute_score(crf, em[b], gold[b], mask[b], free_start=fs, free_end=fe)
        assert torch.allclose(gold_score[b], s, atol=1e-10)
        assert torch.allclose(nll[b], z - s, atol=1e-10)
        # one at a time, without the padding: the same numbers
        keep = mask[b]
        one = em[b:b + 1, keep]
        f1, f2 = free_start[b:b + 1], free_end[b:b + 1]
        assert torch.allclose(crf.log_partition(one, None, f1, f2)[0], logz[b], atol=1e-10)
        assert crf.viterbi(one, None, f1, f2)[0][0].tolist() == best
        assert torch.allclose(crf(one, gold[b:b + 1, keep], None, "none", f1, f2)[0], nll[b], atol=1e-10)
    # free_end=False everywhere is the old behaviour exactly
    none = torch.zeros(B, dtype=torch.bool)
    assert torch.equal(crf.log_partition(em, mask, free_start, none), crf.log_partition(em, mask, free_start))
    assert torch.equal(crf.viterbi(em, mask, free_start, none)[0], crf.viterbi(em, mask, free_start)[0])
    assert torch.equal(crf.score(em, gold, mask, free_start, none), crf.score(em, gold, mask, free_start))


def test_free_end_lifts_the_end_constraint_only():
    """BIOES, emissions that want the row to end in B-PER: a sentence end may not (S-PER, the
    single-word entity, is the best allowed), a free_end row may; transitions inside the row stay
    constrained (no O -> E-PER), and so does the start (no E-PER first) unless free_start."""
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    crf = CRF(5, allowed=allowed_transitions(labels, "BIOES"))
    with torch.no_grad():
        for p in crf.parameters():
            p.zero_()
    em = torch.full((2, 3, 5), -5.0)
    em[:, 0, 3] = 5; em[:, 0, 0] = 4  # E-PER wanted first (forbidden at a sentence start), O next
    em[:, 1, 3] = 5; em[:, 1, 0] = 4  # E-PER after O: forbidden everywhere, O next
    em[:, 2, 1] = 5; em[:, 2, 4] = 4  # B-PER wanted last, S-PER next best
    free = torch.tensor([False, True])
    paths = crf.decode(em, free_end=free)
    assert [labels[i] for i in paths[0]] == ["O", "O", "S-PER"]
    assert [labels[i] for i in paths[1]] == ["O", "O", "B-PER"]
    gold = torch.tensor([[0, 0, 1], [0, 0, 1]])
    nll = crf(em, gold, free_end=free, reduction="none")
    assert nll[0] > 1e3 and nll[1] < 2  # gold ending in B-PER: penalised only at a sentence end
    both = crf.decode(em, free_start=torch.tensor([True, True]), free_end=free)
    assert [labels[i] for i in both[1]] == ["E-PER", "O", "B-PER"]  # free at both edges, still no O -> E-PER
    with pytest.raises(ValueError, match="free_end must be"):
        crf.log_partition(em, free_end=torch.tensor([True]))
