"""TinyBERT data augmentation (berts/augment.py, `berts augment`): the MLM candidates equal the top-k
of the model's own logits at the masked word on the reference's [CLS] masked [SEP] text [SEP] input;
embedding neighbours equal a hand cosine top-k; variants follow the reference's loop, are seeded
per text (the same whatever the chunking), distinct, and p = 0 gives none; the file keeps every
row first, copies labels and reads back with berts' reader; pairs augment one side at a time;
bad flags are one line."""
import string

import numpy as np
import pytest
import torch

from berts.tools.augment import Augmenter, AugmentStats, augment_file, is_candidate
from berts.model.config import BertConfig
from berts.model.heads import BertForMaskedLM, BertForSequenceClassification

WORDS = "cat dog bird tree river hill house red blue green big small".split()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("augment")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "is", ".", ",", *WORDS,
              "##s", "##ing", "run", *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    cfg = dict(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(**cfg)).save_pretrained(root / "mlm", tok)
    BertForSequenceClassification(BertConfig(**cfg, num_labels=2, id2label={0: "no", 1: "yes"},
                                             label2id={"no": 0, "yes": 1})).save_pretrained(root / "clf", tok)
    rows = ["text\tlabel", "The cat is big.\tyes", "a dog runs by the river\tno", "Red trees, blue hills.\tyes",
            "the small bird\tno"]
    (root / "train.tsv").write_text("\n".join(rows) + "\n")
    (root / "pairs.tsv").write_text("a\tb\tlabel\nthe cat\tthe dog\tyes\nred house\tblue tree\tno\n")
    return root


def test_candidate_words_are_alphabetic_non_stop_words():
    assert is_candidate("cat") and is_candidate("电") and is_candidate("Dog")
    assert not is_candidate("the") and not is_candidate("The") and not is_candidate(",")
    assert not is_candidate("42") and not is_candidate("don't")


def test_mlm_candidates_are_the_models_top_k_on_the_references_input(dirs):
    aug = Augmenter.from_pretrained(dirs / "mlm", top_k=3)
    assert aug.mlm is not None
    tok, model = aug.tok, aug.model
    words = aug.words("The cat is big.")
    assert words == ["the", "cat", "is", "big", "."]
    cands = aug.candidates([words], AugmentStats())[0]
    assert sorted(cands) == [1, 3]  # cat, big (the, is: stop words; .: not alphabetic)
    ids = tok.encode_ids_batch(words)
    flat = [i for p in ids for i in p]
    for w in (1, 3):
        masked = list(flat)
        masked[w] = tok.mask_id
        x = torch.tensor([[tok.cls_id, *masked, tok.sep_id, *flat, tok.sep_id]])
        types = torch.tensor([[0] * (len(flat) + 2) + [1] * (len(flat) + 1)])
        with torch.no_grad():
            logits = model(x, token_type_ids=types).logits[0, 1 + w]  # dense logits, [vocab]
        vocab = tok.vocab()
        allowed = [i for t, i in vocab.items() if t.isalpha() and not t.startswith("##")
                   and i not in tok.special_ids]
        order = sorted(allowed, key=lambda i: -float(logits[i]))[:3]
        assert cands[w] == [tok.convert_ids_to_tokens(i) for i in order]


def test_embedding_neighbours_without_an_mlm_head_are_a_cosine_top_k(dirs):
    aug = Augmenter.from_pretrained(dirs / "clf", top_k=4)
    assert aug.mlm is None
    stats = AugmentStats()
    cands = aug.candidates([aug.words("the cat runs")], stats)[0]
    assert set(cands) == {1}  # "runs" = run ##s: several pieces, kept
    assert (stats.by_embedding, stats.kept, stats.by_mlm) == (1, 1, 0)
    vocab = aug.tok.vocab()
    emb = aug.model.bert.embeddings.word_embeddings.weight.detach()
    cat = emb[vocab["cat"]]
    others = [t for t, i in vocab.items() if t.isalpha() and not t.startswith("##") and t != "cat"
              and i not in aug.tok.special_ids]
    sims = {t: float(torch.nn.functional.cosine_similarity(emb[vocab[t]], cat, dim=0)) for t in others}
    assert cands[1] == sorted(others, key=lambda t: -sims[t])[:4]


def test_variants_follow_the_loop_and_are_seeded_per_text(dirs):
    aug = Augmenter.from_pretrained(dirs / "mlm", n=6, p=0.5, top_k=3, seed=7)
    texts = ["The cat is big.", "a dog runs by the river", "Red trees, blue hills."]
    whole = aug.augment(texts)
    parts = aug.augment(texts[:1]) + aug.augment(texts[1:], start=1)
    assert whole == parts  # per-text seeds: chunking does not matter
    for text, out in zip(texts, whole):
        assert out[0] == text and len(out) == len(set(out)) and len(out) <= 7
        words = aug.words(text)
        cands = aug.candidates([words], AugmentStats())[0]
        for v in out[1:]:
            new = v.split()
            assert len(new) == len(words)
            for j, (a, b) in enumerate(zip(words, new)):
                assert a == b or (j in cands and b in cands[j])  # only candidate words change, to candidates
    # the reference's draws, by hand for the first text
    words = aug.words(texts[0])
    cands = aug.candidates([words], AugmentStats())[0]
    rng = np.random.default_rng((7, 0))
    expect, seen = [], {texts[0], " ".join(words)}
    for _ in range(6):
        new = list(words)
        for w in sorted(cands):
            c = cands[w][int(rng.integers(len(cands[w])))]
            if rng.random() < 0.5:
                new[w] = c
        if " ".join(new) not in seen:
            seen.add(" ".join(new))
            expect.append(" ".join(new))
    assert whole[0][1:] == expect
    assert Augmenter.from_pretrained(dirs / "mlm", n=6, p=0.0).augment(texts) == [[t] for t in texts]
    # a text longer than the position table (64) holds twice: windows around the masked word
    long = " ".join(["the red cat"] * 30)
    out = aug.augment([long])[0]
    assert len(out) > 1 and all(len(v.split()) == 90 for v in out[1:])


def test_augment_file_keeps_rows_first_copies_labels_and_reads_back(dirs, tmp_path):
    from berts.data.tables import read_examples
    from berts.config.schema import FinetuneData

    out = tmp_path / "aug.tsv"
    stats = augment_file(dirs / "train.tsv", out, FinetuneData(), model_dir=dirs / "mlm", n=3, p=0.5, top_k=3,
                         progress=False)
    rows, _ = read_examples(out, text_column="text", label_column="label")
    assert stats.rows == len(rows) == 4 + stats.variants and stats.texts == 4
    original, _ = read_examples(dirs / "train.tsv", text_column="text", label_column="label")
    i = 0
    for e in original:  # each row, then its variants, with its label
        assert rows[i].text == e.text and rows[i].label == e.label
        i += 1
        while i < len(rows) and rows[i].text not in {o.text for o in original}:
            assert rows[i].label == e.label
            i += 1
    assert i == len(rows)

    pairs = tmp_path / "pairs-aug.tsv"
    data = FinetuneData(text_column="a", pair_column="b")
    pstats = augment_file(dirs / "pairs.tsv", pairs, data, model_dir=dirs / "mlm", n=3, p=1.0, top_k=3,
                          progress=False)
    got, _ = read_examples(pairs, text_column="text", text_pair_column="text_pair", label_column="label")
    assert (got[0].text, got[0].text_pair) == ("the cat", "the dog")
    originals = {("the cat", "the dog"), ("red house", "blue tree")}
    assert sum((e.text, e.text_pair) in originals for e in got) == 2 and len(got) > 2
    assert pstats.texts == 2 and pstats.rows == len(got) == 2 + pstats.variants
    for e in got:  # one side changed at a time, the other as written
        if (e.text, e.text_pair) in originals:
            continue
        assert (e.text in ("the cat", "red house")) != (e.text_pair in ("the dog", "blue tree"))


def test_cli_augment_and_its_one_line_errors(dirs, tmp_path, capsys):
    from berts.cli import main

    out = tmp_path / "a.tsv"
    assert main(["augment", str(dirs / "train.tsv"), "--model", str(dirs / "clf"), "--out", str(out), "--n", "2",
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "4 texts ->" in captured.out and out.read_text().startswith("text\tlabel\n")
    assert "no MLM head, so every candidate comes from the nearest words" in captured.err  # said, not silent
    with pytest.raises(SystemExit):  # argparse (berts.util.values), before the model loads
        main(["augment", str(dirs / "train.tsv"), "--model", str(dirs / "clf"), "--out", str(out), "--p", "1.5"])
    err = capsys.readouterr().err.strip()
    assert "--p: a number in [0, 1] expected, got '1.5'" in err and len(err.splitlines()) == 1
    assert main(["augment", str(dirs / "train.tsv"), "--model", str(dirs / "clf"),
                 "--out", str(dirs / "train.tsv")]) != 0
    assert "is the input" in capsys.readouterr().err
