"""Token classification end to end: the head against transformers' BertForTokenClassification both
ways, the CRF beside the directory, `berts finetune --task token-classification` (with and without
--crf), `berts evaluate` / `berts predict` on what it wrote, windows, and one-line errors."""
import json
import random
import re
import string
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from train_utils import cli

from berts import BertConfig
from berts.data.tagging import read_conll, split_words
from berts.errors import UserError
from berts.metrics.tagging import tagging_report
from berts.model.crf import CRF
from berts.tasks.token_classification import BertForTokenClassification, TaggingDataset

LABELS = ["O", "B-LOC", "B-PER", "I-PER"]
PER = ["alice", "bob", "carol", "dave"]
LOC = ["paris", "rome", "oslo", "lima"]
OTHER = "the dog sat ran flew over under near a big small red blue green house tree river hill in met saw".split()
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def tiny_config(**kw):
    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64, id2label=dict(enumerate(LABELS)), **kw)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    labels = torch.randint(0, len(LABELS), ids.shape, generator=g)
    labels[:, 0] = -100  # [CLS]
    labels[:, 3] = -100  # a later sub-token
    labels[mask == 0] = -100
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}, labels


def test_saved_directory_is_transformers_token_classifier(tmp_path):
    from conftest import randomize

    torch.manual_seed(0)
    ours = randomize(BertForTokenClassification(tiny_config())).eval()
    ours.save_pretrained(tmp_path / "m")
    theirs = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path / "m").eval()
    assert type(theirs).__name__ == "BertForTokenClassification"
    assert theirs.config.id2label == dict(enumerate(LABELS)) and theirs.config.label2id == {n: i for i, n in enumerate(LABELS)}
    inputs, labels = batch()
    with torch.no_grad():
        a, b = ours(**inputs, labels=labels), theirs(**inputs, labels=labels)
    assert a.logits.shape == (3, 11, 4)
    keep = inputs["attention_mask"].bool()  # transformers computes padding positions too; ours: zeros there (unpad)
    torch.testing.assert_close(a.logits[keep], b.logits[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=0)


def test_transformers_directory_loads_into_berts(tmp_path):
    cfg = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64, id2label=dict(enumerate(LABELS)),
                                  label2id={n: i for i, n in enumerate(LABELS)})
    torch.manual_seed(1)
    theirs = transformers.BertForTokenClassification(cfg).eval()
    theirs.save_pretrained(tmp_path / "hf")
    import berts

    ours = berts.load(tmp_path / "hf").eval()
    assert isinstance(ours, BertForTokenClassification) and ours.labels == LABELS and ours.crf is None
    assert not ours.loading_info["missing_keys"]
    inputs, labels = batch(1)
    with torch.no_grad():
        a, b = ours(**inputs, labels=labels), theirs(**inputs, labels=labels)
    keep = inputs["attention_mask"].bool()
    torch.testing.assert_close(a.logits[keep], b.logits[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=0)


def test_crf_lives_beside_the_directory_and_gives_the_loss(tmp_path):
    from safetensors.torch import load_file

    torch.manual_seed(0)
    model = BertForTokenClassification(tiny_config()).eval()
    model.set_crf(CRF(4), "BIO")
    model.save_pretrained(tmp_path / "m")
    assert {"crf.json", "crf.safetensors"} <= {p.name for p in (tmp_path / "m").iterdir()}
    assert not any(k.startswith("crf") for k in load_file(str(tmp_path / "m" / "model.safetensors")))
    meta = json.loads((tmp_path / "m" / "crf.json").read_text())
    assert meta["labels"] == LABELS and meta["scheme"] == "BIO"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path / "m",
                                                                              output_loading_info=True)[1]
    assert not theirs["unexpected_keys"] and not theirs["missing_keys"]
    back = BertForTokenClassification.from_pretrained(tmp_path / "m").eval()
    torch.testing.assert_close(back.crf.transitions, model.crf.transitions, atol=0, rtol=0)
    inputs, labels = batch(2)
    with torch.no_grad():
        out = back(**inputs, labels=labels)
        mask = labels != -100
        by_hand = back.crf(out.logits, labels, mask, reduction="none").mean()  # every row has a label
    assert out.losses == {"task": out.loss}
    torch.testing.assert_close(out.loss, by_hand)
    assert back.loss_counts({**inputs, "labels": labels}) == {"task": 3}
    # decode: the Viterbi path at the tagged positions equals the CRF's own decode
    tags, _ = back.decode(out.logits, mask)
    assert [row[m].tolist() for row, m in zip(tags, mask)] == back.crf.decode(out.logits, mask)


def test_label_all_subtokens_and_windows():
    from berts.tokenizer.wordpiece import Tokenizer

    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ali",
                                                           "##ce", "met", "bob"])})
    ds = TaggingDataset([["alice", "met", "bob"]], tok, LABELS, [["B-PER", "O", "B-PER"]], label_all_subtokens=True)
    assert ds.features[0]["labels"] == [-100, 2, 3, 0, 2, -100]  # alice = ali ##ce: B-PER, I-PER
    ds = TaggingDataset([["alice", "met", "bob"]], tok, LABELS, [["B-PER", "O", "B-PER"]])
    assert ds.features[0]["labels"] == [-100, 2, -100, 0, 2, -100]
    # a sentence longer than the window: overlapping windows, every word in one
    words = ["met", "bob"] * 10
    ds = TaggingDataset([words], tok, LABELS, [["O", "B-PER"] * 10], max_length=8, stride=2)
    assert len(ds) > 3 and all(len(f["input_ids"]) <= 8 for f in ds.features)
    covered = {w for f in ds.features for w in range(*f["window"])}
    assert covered == set(range(20))


def test_a_window_that_starts_inside_an_entity_trains_and_decodes_right():
    """A sentence longer than the window, cut without overlap (stride 0) so that its second window
    begins with I-PER: the batch marks that window free_start, the CRF trains on its gold path
    (no forbidden start) and Viterbi decodes I-PER there, so the entity comes back whole. The same
    emissions decoded as a sentence start cannot begin with I-PER (what the fix is for)."""
    from berts.data.tagging import allowed_transitions
    from berts.tasks.token_classification import tag_sentences
    from berts.tokenizer.wordpiece import Tokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PER, *OTHER]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(words)})
    rng = random.Random(0)
    sents, tags = [], []
    for _ in range(12):  # O O O B-PER I-PER | I-PER O O: the cut (5 words a window) falls inside the name
        name = [rng.choice(PER) for _ in range(3)]
        sents.append([rng.choice(OTHER) for _ in range(3)] + name + [rng.choice(OTHER) for _ in range(2)])
        tags.append(["O"] * 3 + ["B-PER", "I-PER", "I-PER"] + ["O"] * 2)
    ds = TaggingDataset(sents, tok, LABELS, tags, max_length=7, stride=0)
    assert [f["window"] for f in ds.features[:2]] == [(0, 5), (5, 8)]
    assert ds.features[1]["labels"][1] == LABELS.index("I-PER")  # the second window starts with I-PER
    b = ds[(0, 0, list(range(len(ds))))]
    assert b["free_start"].tolist() == [False, True] * 12
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=16, id2label=dict(enumerate(LABELS)))
    model = BertForTokenClassification(cfg)
    model.set_crf(CRF(len(LABELS), allowed_transitions(LABELS, "BIO")), "BIO")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    from berts.tasks.base import model_inputs

    for _ in range(60):
        loss = model(**model_inputs(b)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 1.0  # without free_start the gold path of every second window costs 1e4
    ids, _, _ = tag_sentences(model, ds, batch_size=8)
    assert [[LABELS[i] for i in s] for s in ids] == tags
    # the same emissions, second windows decoded as if they started their sentence: no I-PER first
    model.eval()
    with torch.no_grad():
        logits = model(**{k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    mask = ds.tag_mask(list(range(len(ds))), logits.shape[1])
    as_start, _ = model.decode(logits, mask)
    free, _ = model.decode(logits, mask, b["free_start"])
    assert (free[1::2, 1] == LABELS.index("I-PER")).all()
    assert (as_start[1::2, 1] != LABELS.index("I-PER")).all()


def test_a_window_that_ends_inside_an_entity_trains_and_decodes_right():
    """free_end, the twin: BIOES, where a sentence may not end in B- or I-. A sentence cut (stride
    0) inside a three-word name: the first window ends with I-PER, the second starts with I-PER.
    The batch marks the first windows free_end (and the second ones free_start), the CRF trains on
    both gold paths (no forbidden end or start) and the sentences decode to their gold tags; the
    same first windows scored as sentence ends pay the forbidden end, and decoded so cannot end
    in I-PER."""
    from berts.data.tagging import allowed_transitions
    from berts.tasks.base import model_inputs
    from berts.tasks.token_classification import tag_sentences
    from berts.tokenizer.wordpiece import Tokenizer

    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PER, *OTHER]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(words)})
    rng = random.Random(1)
    sents, tags = [], []
    for _ in range(12):  # O O B-PER I-PER I-PER | I-PER E-PER O: the cut (5 words a window) falls inside the name
        name = [rng.choice(PER) for _ in range(4)]
        sents.append([rng.choice(OTHER) for _ in range(2)] + name + [rng.choice(OTHER)])
        tags.append(["O"] * 2 + ["B-PER", "I-PER", "I-PER", "E-PER"] + ["O"])
    sents.append(["the", "dog", "sat"])  # a sentence that fits: one window, neither edge free
    tags.append(["O", "O", "O"])
    ds = TaggingDataset(sents, tok, labels, tags, max_length=7, stride=0)
    assert [f["window"] for f in ds.features[:2]] == [(0, 5), (5, 7)]
    assert ds.features[0]["labels"][5] == labels.index("I-PER")  # the first window ends with I-PER
    b = ds[(0, 0, list(range(len(ds))))]
    assert b["free_end"].tolist() == [True, False] * 12 + [False]
    assert b["free_start"].tolist() == [False, True] * 12 + [False]
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=16, id2label=dict(enumerate(labels)))
    model = BertForTokenClassification(cfg)
    model.set_crf(CRF(len(labels), allowed_transitions(labels, "BIOES")), "BIOES")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        loss = model(**model_inputs(b)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 1.0  # without free_end the gold path of every first window costs 1e4
    ids, _, _ = tag_sentences(model, ds, batch_size=8)
    assert [[labels[i] for i in s] for s in ids] == tags
    model.eval()
    ended = {**model_inputs(b), "free_end": torch.zeros_like(b["free_end"])}
    with torch.no_grad():
        assert float(model(**ended).loss) > 1e3
        logits = model(**{k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    mask = ds.tag_mask(list(range(len(ds))), logits.shape[1])
    as_end, _ = model.decode(logits, mask, b["free_start"])
    free, _ = model.decode(logits, mask, b["free_start"], b["free_end"])
    assert (free[0:24:2, 5] == labels.index("I-PER")).all()
    assert (as_end[0:24:2, 5] != labels.index("I-PER")).all()


def sentence(rng):
    toks, tags = [], []
    for _ in range(rng.randint(3, 10)):
        r = rng.random()
        if r < 0.15:
            n = rng.randint(1, 2)
            toks += [rng.choice(PER) for _ in range(n)]
            tags += ["B-PER"] + ["I-PER"] * (n - 1)
        elif r < 0.25:
            toks.append(rng.choice(LOC))
            tags.append("B-LOC")
        else:
            toks.append(rng.choice(OTHER))
            tags.append("O")
    return toks, tags


def write_conll(path, n, seed):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        t, g = sentence(rng)
        lines += [f"{a} {b}" for a, b in zip(t, g)] + [""]
    Path(path).write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny berts encoder, tagged data, and two fine-tuned taggers (softmax, CRF)."""
    from berts import BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("ner")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PER, *LOC, *OTHER, *string.ascii_lowercase,
              *["##" + c for c in string.ascii_lowercase], "."]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=32)).save_pretrained(root / "bert", tokenizer=tok)
    train, dev = write_conll(root / "train.conll", 160, 1), write_conll(root / "dev.conll", 30, 2)
    runs = {}
    for name, extra in (("plain", []), ("crf", ["--crf"])):
        out = root / name
        assert cli(["finetune", "--task", "token-classification", "--model", root / "bert", "--train", train,
                    "--dev", dev, "--out", out, "--max-steps", "30", "--batch-size", "16", "--lr", "3e-3",
                    "--eval-every", "15", "--keep-last", "0", *extra, *COMMON]) == 0
        runs[name] = out
    return root, runs


@pytest.mark.parametrize("name", ["plain", "crf"])
def test_finetune_logs_what_evaluate_and_the_tagger_compute(trained, name, capsys):
    from berts.serve.tagger import Tagger

    root, runs = trained
    out = runs[name]
    best = json.loads((out / "best" / "eval_results.json").read_text())
    assert best["metric"] == "f1"
    assert ((out / "best" / "crf.json").is_file()) == (name == "crf")
    tagger = Tagger.from_pretrained(out / "best", device="cpu")
    assert tagger.scheme == "BIO" and tagger.labels == LABELS
    sentences = read_conll(root / "dev.conll")
    report, predicted = tagger.evaluate(sentences)
    by_hand = tagging_report([s.tags for s in sentences], predicted, scheme="BIO")
    assert report["f1"] == by_hand["f1"] == pytest.approx(best["value"], abs=1e-9)  # best/ is the best eval
    assert report["accuracy"] == best["metrics"]["accuracy"]
    capsys.readouterr()
    assert cli(["evaluate", out / "best", root / "dev.conll", "--json", "--device", "cpu"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["f1"] == report["f1"] and printed["per_type"] == by_hand["per_type"]
    assert printed["invalid_transitions"]["predicted"] == by_hand["invalid_transitions"]["predicted"]
    matrix = torch.tensor(printed["confusion"]["matrix"])  # gold rows x predicted columns, per word
    assert printed["confusion"]["labels"] == LABELS and int(matrix.sum()) == sum(len(s.tokens) for s in sentences)
    assert int(matrix.trace()) / int(matrix.sum()) == pytest.approx(report["accuracy"], abs=1e-12)
    if name == "crf":  # the CRF's Viterbi path under the BIO constraints never breaks the scheme
        assert printed["invalid_transitions"]["predicted"] == 0


def test_predict_raw_text_offsets_and_conll(trained, tmp_path, capsys):
    from berts.serve.tagger import Tagger

    root, runs = trained
    tagger = Tagger.from_pretrained(runs["crf"] / "best", device="cpu")
    texts = ["Alice met bob in Paris.", "  the dog saw   carol near rome"]
    rows = tagger.predict_words(texts)
    for text, r in zip(texts, rows):
        assert r["words"] == split_words(tagger.tokenizer, text)[0] and len(r["tags"]) == len(r["words"])
        for e in r["entities"]:
            assert text[e["start"]:e["end"]] == e["text"] and 0 < e["score"] <= 1
    capsys.readouterr()
    assert cli(["predict", runs["crf"] / "best", "--text", texts[0], "--text", texts[1], "--device", "cpu"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["text"] for x in lines] == texts
    assert [x["entities"] for x in lines] == [[{**e, "score": round(e["score"], 6)} for e in r["entities"]]
                                              for r in rows]
    # pre-tokenized CoNLL words -> CoNLL out: TOKEN GOLD PREDICTED, the tags Tagger.tag gives
    sentences = read_conll(root / "dev.conll")[:5]
    tags, _ = tagger.tag([s.tokens for s in sentences])
    assert cli(["predict", runs["crf"] / "best", root / "dev.conll", "--conll", "--out", tmp_path / "p.conll",
                "--device", "cpu"]) == 0
    blocks = (tmp_path / "p.conll").read_text().split("\n\n")
    assert [line.split() for line in blocks[0].splitlines()] == [
        [w, g, p] for w, g, p in zip(sentences[0].tokens, sentences[0].tags, tags[0])]


def test_bad_input_is_one_line_and_writes_nothing(trained, tmp_path, capsys):
    root, runs = trained
    bad = tmp_path / "bad.conll"
    bad.write_text("alice B-PER\nmet O\n\nparis B-GPE\n")
    capsys.readouterr()
    assert cli(["evaluate", runs["plain"] / "best", bad, "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(r"bad\.conll:4: tag 'B-GPE' is not in the training labels", err)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tokens": ["alice", "met"], "tags": ["B-PER", "O"]}\n{"tokens": ["bob"], "tags": []}\n'
                   '{"tokens": ["a", "b"], "tags": ["O"]}\n')
    out = tmp_path / "never.jsonl"
    assert cli(["predict", runs["plain"] / "best", bad, "--out", out, "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(r"bad\.jsonl:3: 1 tags for 2 tokens", err)
    assert not out.exists()
    # the classifier path refuses the tagger's flags; the tagger refuses a classifier directory
    from berts.serve.tagger import Tagger

    with pytest.raises(UserError, match="not a token-classification model"):
        Tagger.from_pretrained(root / "bert")


def test_finetune_and_evaluate_from_a_datasets_directory_with_named_fields(trained, tmp_path, capsys):
    """A `datasets` save_to_disk directory (fields "words" / "ner" named by --text-column /
    --label-column) trains as its CoNLL file does; evaluate reads the model's fields by itself
    and scores it exactly as the same sentences in CoNLL."""
    from datasets import Dataset

    root, runs = trained
    sentences = read_conll(root / "dev.conll")
    Dataset.from_list([{"words": s.tokens, "ner": s.tags} for s in sentences]).save_to_disk(str(tmp_path / "dev"))
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "token-classification", "--model", runs["plain"] / "best", "--train",
                tmp_path / "dev", "--text-column", "words", "--label-column", "ner", "--out", out,
                "--max-steps", "1", "--batch-size", "8", "--keep-last", "0", *COMMON]) == 0
    saved = json.loads((out / "final" / "config.json").read_text())
    assert saved["finetune_data"]["tagging"]["tokens_field"] == "words"
    assert saved["finetune_data"]["tagging"]["tags_field"] == "ner"
    capsys.readouterr()
    assert cli(["evaluate", out / "final", tmp_path / "dev", "--json", "--device", "cpu"]) == 0
    from_dir = json.loads(capsys.readouterr().out)
    assert cli(["evaluate", out / "final", root / "dev.conll", "--json", "--device", "cpu"]) == 0
    from_conll = json.loads(capsys.readouterr().out)
    assert from_dir["sentences"] == len(sentences)
    assert (from_dir["f1"], from_dir["accuracy"]) == (from_conll["f1"], from_conll["accuracy"])


def test_evaluate_prints_and_draws_the_entity_confusion(trained, tmp_path, capsys):
    root, runs = trained
    best = runs["plain"] / "best"
    capsys.readouterr()
    assert cli(["evaluate", best, root / "dev.conll", "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    conf = report["entity_confusion"]
    assert conf["labels"][-1] == "(none)" and set(conf["labels"][:-1]) >= set(report["per_type"])
    for i, typ in enumerate(conf["labels"][:-1]):  # each gold entity in its row once
        assert sum(conf["matrix"][i]) == report["per_type"].get(typ, {"support": 0})["support"]
        assert conf["missed"][typ] == conf["matrix"][i][-1]
    png = tmp_path / "report.png"
    assert cli(["evaluate", best, root / "dev.conll", "--device", "cpu", "--report-png", png]) == 0
    printed = capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = printed[printed.index("confusion (row: true"):].splitlines()
    assert rows[1].split() == conf["labels"]
    assert rows[1 + len(conf["labels"])].split() == ["(none)", *map(str, conf["matrix"][-1])]


def test_cpu_tagger_packs_its_linears_for_onednn_with_the_same_logits(trained):
    from berts.compress.transforms import quantize_int8
    from berts.model import onednn
    from berts.serve.tagger import Tagger

    if not onednn.available():
        pytest.skip("this torch has no oneDNN")
    root, runs = trained
    tagger = Tagger.from_pretrained(runs["plain"] / "best", device="cpu")
    packed = [m for m in tagger.model.modules() if isinstance(m, onednn.PackedLinear)]
    assert len(packed) == 4  # the 1 layer's qkv, attention output, FFN up and down (the classifier is F.linear)
    ffn = tagger.model.bert.encoder.layers[0].ffn
    assert ffn.up.post == "gelu" and ffn.act is onednn._fused  # the exact GELU fused into the up-projection
    assert [m.post for m in packed].count("gelu") == 1
    plain = BertForTokenClassification.from_pretrained(runs["plain"] / "best").eval()
    plain.set_fast_path(unpad=True, pack=True)
    ids = torch.tensor([[2, 7, 8, 9, 3, 0], [2, 10, 11, 3, 0, 0]])
    inputs = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    with torch.no_grad():
        torch.testing.assert_close(tagger.model(**inputs).logits, plain(**inputs).logits, atol=1e-5, rtol=0)
    assert tagger.tag([["alice", "met", "bob"]]) == Tagger.from_pretrained(runs["plain"] / "best", device="cpu").tag(
        [["alice", "met", "bob"]])
    # int8 after packing quantizes the unpacked nn.Linears (evaluate --int8 loads fp32 first)
    quantize_int8(tagger.model)
    kinds = {type(m).__name__ for m in tagger.model.modules()}
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    quantized = [m for m in tagger.model.modules() if isinstance(m, DynamicLinear)]  # Int8Linear subclasses it
    assert "PackedLinear" not in kinds and len(quantized) == 4
    assert ffn.act is torch.nn.functional.gelu  # unpacking gave the FFN its activation back


def test_logit_distillation_per_token(trained, tmp_path):
    from berts.compress.logit_mse.task import LogitMSETask
    from berts.serve.tagger import Tagger

    root, runs = trained
    teacher = BertForTokenClassification.from_pretrained(runs["crf"] / "best").eval()
    student = BertForTokenClassification.from_pretrained(runs["plain"] / "best").eval()
    tok = Tagger.from_pretrained(runs["crf"] / "best", device="cpu").tokenizer
    sentences = read_conll(root / "dev.conll")[:4]
    ds = TaggingDataset([s.tokens for s in sentences], tok, LABELS, [s.tags for s in sentences])
    b = ds[(0, 0, [0, 1, 2, 3])]
    task = LogitMSETask(student, teacher, ds)
    (losses, metrics) = task.loss(type("M", (), {"model": student})(), b)
    real = b["attention_mask"].bool()
    with torch.no_grad():
        s, t = student(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, \
            teacher(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    by_hand = 0.5 * ((s[real] - t[real]) ** 2).sum(-1).mean()
    torch.testing.assert_close(losses["mse"].detach(), by_hand)
    assert task.counts(b) == {"mse": int(real.sum())}
    out = tmp_path / "student"
    assert cli(["distill", "--method", "logit-mse", "--teacher", runs["crf"] / "best", "--student-layers", "0",
                "--train", root / "train.conll", "--dev", root / "dev.conll", "--out", out, "--max-steps", "6",
                "--batch-size", "16", "--eval-every", "3", "--keep-last", "0", *COMMON]) == 0
    best = json.loads((out / "best" / "eval_results.json").read_text())
    served = Tagger.from_pretrained(out / "best", device="cpu")
    assert best["metric"] == "f1" and served.model.crf is not None  # the teacher's CRF came along
    torch.testing.assert_close(served.model.crf.transitions, teacher.crf.transitions)
    report, _ = served.evaluate(read_conll(root / "dev.conll"))
    assert report["f1"] == pytest.approx(best["value"], abs=1e-9)


def test_compare_rows_for_taggers(trained):
    from berts.tools.compare import compare

    root, runs = trained
    rows = compare([runs["crf"] / "best", runs["plain"] / "best"], root / "dev.conll", latency_examples=4,
                   repeats=1, int8=True)
    assert [(r["precision"], r["crf"]) for r in rows] == [("fp32", True), ("int8", True), ("fp32", False),
                                                          ("int8", False)]
    from berts.serve.tagger import Tagger

    f1 = Tagger.from_pretrained(runs["plain"] / "best", device="cpu").evaluate(read_conll(root / "dev.conll"))[0]["f1"]
    assert rows[2]["metric"] == "f1" and rows[2]["score"] == f1 and 0 <= rows[1]["agreement"] <= 1


@pytest.mark.onnx
def test_onnx_export_parity(trained, tmp_path):
    from berts.serve.export import export_onnx

    root, runs = trained
    texts = [" ".join(s.tokens) for s in read_conll(root / "dev.conll")[:12]]
    report = export_onnx(runs["crf"] / "best", tmp_path / "ner.onnx", int8=True, texts=texts)
    assert report["outputs"] == ["logits"] and report["max_abs_diff"] <= 1e-4
    assert 0.9 <= report["int8"]["label_agreement"] <= 1


def test_resume_restores_the_crf_exactly(trained, tmp_path):
    import shutil

    from safetensors.torch import load_file

    root, _ = trained
    out = tmp_path / "run"
    args = ["finetune", "--task", "token-classification", "--crf", "--model", root / "bert", "--train",
            root / "train.conll", "--out", out, "--max-steps", "4", "--batch-size", "16", "--lr", "3e-3",
            "--keep-last", "2", "--set", "train.save_every=2", *COMMON]
    assert cli(args) == 0
    whole = load_file(str(out / "final" / "crf.safetensors"))
    assert load_file(str(out / "checkpoints" / "step-2" / "crf.safetensors"))["transitions"].ne(
        whole["transitions"]).any()  # the CRF trains
    shutil.rmtree(out / "checkpoints" / "step-4")
    shutil.rmtree(out / "final")
    assert cli(args + ["--resume", "auto"]) == 0  # from step 2: the CRF read back in place, then trained on
    again = load_file(str(out / "final" / "crf.safetensors"))
    assert all(torch.equal(again[k], whole[k]) for k in whole)
