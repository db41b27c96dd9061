"""WordPiece tokenizer: training, HF parity (transformers.AutoTokenizer is the oracle), import, CLI."""
from __future__ import annotations

import gzip
import io
import json
import random

import numpy as np
import pytest
import torch

from berts.cli import main
from berts.errors import UserError
from berts.data.corpus import Corpus
from berts.tokenizer.wordpiece import SPECIAL_TOKENS, Tokenizer, load_tokenizer

transformers = pytest.importorskip("transformers")
AutoTokenizer = transformers.AutoTokenizer

SYLLABLES = ["ka", "ro", "mi", "tes", "un", "ble", "ing", "pre", "tion", "ver", "al", "st", "qu", "or",
             "ent", "ly", "ze", "bra", "dor", "fin"]
ENGLISH = ("the quick brown fox jumps over the lazy dog while training language models from scratch "
           "is fun and tokenization matters for pretraining unbelievable results").split()
ACCENTED = ["café", "crème", "brûlée", "über", "Ñandú", "naïve", "Straße", "résumé", "Ürün", "São"]
CHINESE = "我们今天去北京大学学习自然语言处理机器很有意思中文分词模型训练数据"
EMOJI = ["🙂", "🎉"]


def _lines(n: int = 1500, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(4, 12)):
            r = rng.random()
            if r < 0.35:
                words.append(rng.choice(ENGLISH).capitalize() if rng.random() < 0.2 else rng.choice(ENGLISH))
            elif r < 0.65:
                words.append("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
            elif r < 0.8:
                words.append(rng.choice(ACCENTED))
            elif r < 0.95:
                words.append("".join(rng.choice(CHINESE) for _ in range(rng.randint(1, 5))))
            else:
                words.append(rng.choice(EMOJI))
        out.append(" ".join(words) + rng.choice([".", "!", "?", ","]))
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def trained(request, corpus, tmp_path_factory):
    """(our tokenizer, its saved directory, transformers' tokenizer loaded from that directory)."""
    tok = Tokenizer.train([corpus], 600, lowercase=request.param, min_frequency=2, show_progress=False)
    out = tok.save_pretrained(tmp_path_factory.mktemp("tok") / "tokenizer")
    return tok, out, AutoTokenizer.from_pretrained(str(out))


LONG_WORD = "supercalifragilistic" * 11  # 220 chars > 200 -> [UNK]
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Café crème brûlée über Ñandú, naïve résumé São.",
    "我们今天去北京大学学习自然语言处理。",
    "Mixed 中文 and English: kamiro unbleing 模型训练!",
    "emoji 🙂 and 🚀 and 🎉 here",
    "control\x00chars\x07 in\x1b the\u200b text\ttab\r\nnewline",
    f"a {LONG_WORD} word",
    "[MASK] is special, [CLS] too",
    "",
    "   ",
]
PAIRS = [
    ("Café crème 北京", "über Ñandú 🙂"),
    ("the quick brown fox " * 8, "lazy dog"),
    ("short", "我们今天去北京大学学习自然语言处理机器很有意思 " * 3),
    ("control\x00\x07", f"{LONG_WORD} kamiro"),
]


def _hf(hf, text, pair=None, **kw):
    enc = hf(text, pair, **kw)
    return enc["input_ids"], enc["token_type_ids"]


def _ours(tok, text, pair=None, **kw):
    enc = tok.encode(text, pair, **kw)
    return enc["input_ids"], enc["token_type_ids"]


# ----------------------------------------------------------------------------- training and layout
def test_trained_vocab_layout(trained):
    tok, out, _ = trained
    assert 300 <= tok.vocab_size <= 600
    assert [tok.convert_ids_to_tokens(i) for i in range(5)] == list(SPECIAL_TOKENS)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.special_ids == frozenset(range(5))
    assert tok.backend.model.max_input_chars_per_word == 200
    vocab = tok.vocab()
    assert len(vocab) == tok.vocab_size and sorted(vocab.values()) == list(range(tok.vocab_size))
    # vocab.txt: one token a line in id order
    lines = (out / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and lines[:-1] == tok.convert_ids_to_tokens(range(tok.vocab_size))
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer"
    assert config["do_lower_case"] is tok.lowercase and config["strip_accents"] is None
    assert config["tokenize_chinese_chars"] is True and config["model_max_length"] == 512
    assert config["cls_token"] == "[CLS]" and config["mask_token"] == "[MASK]"
    assert json.loads((out / "special_tokens_map.json").read_text())["pad_token"] == "[PAD]"
    # continuation mask: exactly the ## pieces
    cont = tok.is_continuation
    assert cont.dtype == np.bool_ and cont.shape == (tok.vocab_size,)
    assert cont.any()
    for token, i in vocab.items():
        assert cont[i] == (token.startswith("##") and len(token) > 2)
    assert not cont[list(tok.special_ids)].any()


def test_normalization(trained):
    tok, _, _ = trained
    assert tok.tokenize("hel\x00lo\x07 wor\x1bld") == tok.tokenize("hello world")  # control chars removed
    assert tok.tokenize("北京大学") == ["北", "京", "大", "学"]                        # each CJK char a word
    assert tok.tokenize("🚀") == ["[UNK]"]                                           # never seen
    assert tok.tokenize("🙂") == ["🙂"]                                              # in the corpus
    assert tok.tokenize(f"a {LONG_WORD} b") == (["a", "[UNK]", "b"] if tok.lowercase else
                                                 tok.tokenize("a") + ["[UNK]"] + tok.tokenize("b"))
    assert "[UNK]" not in tok.tokenize("k" * 150)  # up to 200 chars a word is split into pieces
    assert tok.tokenize("x [MASK] y")[1] == "[MASK]"
    if tok.lowercase:
        assert tok.tokenize("CAFÉ Ñandú") == tok.tokenize("cafe nandu")
        assert tok.tokenize("café") == ["cafe"]
    else:
        assert tok.tokenize("café") == ["café"]
        assert tok.tokenize("Café") != tok.tokenize("café")
        assert "Ñ" in "".join(tok.tokenize("Ñandú"))


# ----------------------------------------------------------------------------- transformers parity
def test_hf_parity_single(trained):
    tok, _, hf = trained
    for text in TEXTS:
        assert _ours(tok, text) == _hf(hf, text), text
        for n in (3, 5, 9):
            assert _ours(tok, text, max_length=n) == _hf(hf, text, truncation=True, max_length=n), (text, n)
        assert tok.encode(text, add_special_tokens=False)["input_ids"] == hf(text, add_special_tokens=False)["input_ids"]
        assert tok.tokenize(text) == hf.tokenize(text)


def test_hf_parity_pairs_and_truncation(trained):
    tok, _, hf = trained
    for a, b in PAIRS:
        ids, types = _ours(tok, a, b)
        assert (ids, types) == _hf(hf, a, b)
        n_a = len(tok.tokenize(a))
        assert types == [0] * (n_a + 2) + [1] * (len(ids) - n_a - 2)
        assert ids[0] == tok.cls_id and ids[n_a + 1] == tok.sep_id and ids[-1] == tok.sep_id
        for n in (8, 12, 20):
            got = _ours(tok, a, b, max_length=n)
            assert got == _hf(hf, a, b, truncation="longest_first", max_length=n), (a, b, n)
            assert len(got[0]) == min(n, len(ids))
    # longest_first: the longer text loses tokens first
    a, b = PAIRS[1]
    la, lb = len(tok.tokenize(a)), len(tok.tokenize(b))
    assert la > 12 and lb <= 3
    ids, types = _ours(tok, a, b, max_length=12)
    assert types.count(1) == lb + 1 and types.count(0) == 12 - lb - 1
    # no truncation: the whole thing, longer than max_length
    assert len(tok.encode(a, b, max_length=12, truncation=False)["input_ids"]) == la + lb + 3


def test_hf_parity_batch_padding_and_decode(trained):
    tok, _, hf = trained
    texts = TEXTS[:6]
    ours = tok(texts, padding="longest", max_length=16)
    theirs = hf(texts, padding="longest", truncation=True, max_length=16)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key] == theirs[key], key
    pairs = [b for _, b in PAIRS]
    ours = tok([a for a, _ in PAIRS], pairs, padding="max_length", max_length=24, return_tensors="pt")
    theirs = hf([a for a, _ in PAIRS], pairs, padding="max_length", truncation=True, max_length=24,
                return_tensors="pt")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key].dtype == torch.long and ours[key].shape == (4, 24)
        assert torch.equal(ours[key], theirs[key]), key
    padded = tok(["a b", "kamiro"], padding="longest", pad_to_multiple_of=8)
    assert [len(r) for r in padded["input_ids"]] == [8, 8]
    assert padded["attention_mask"][0] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert padded["input_ids"][0][4:] == [tok.pad_id] * 4
    single = tok("kamiro", return_tensors="pt")
    assert single["input_ids"].shape == (1, len(tok.encode("kamiro")["input_ids"]))
    for text in TEXTS[:5]:
        ids = tok.encode(text)["input_ids"]
        assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=True)
    assert tok.decode(tok.encode("the lazy dog")["input_ids"], skip_special_tokens=False) == "[CLS] the lazy dog [SEP]"
    batch = tok.encode_ids_batch(TEXTS)
    assert batch == [tok.encode(t, add_special_tokens=False, truncation=False)["input_ids"] for t in TEXTS]
    assert tok.encode_ids_batch(["dog"], add_special_tokens=True)[0][0] == tok.cls_id


# ----------------------------------------------------------------------------- loading
def test_reload_ours_and_transformers_dirs(trained, tmp_path):
    tok, out, hf = trained
    again = Tokenizer.from_pretrained(out)
    assert again.vocab() == tok.vocab() and again.lowercase == tok.lowercase
    hf.save_pretrained(str(tmp_path / "hf"))  # transformers 5 writes tokenizer.json + config only
    from_hf = Tokenizer.from_pretrained(tmp_path / "hf")
    assert from_hf.vocab() == tok.vocab() and from_hf.lowercase == tok.lowercase
    for text in TEXTS:
        assert from_hf.encode(text) == tok.encode(text) == again.encode(text)
    with pytest.raises(UserError, match="nope"):
        Tokenizer.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no tokenizer.json or vocab.txt"):
        Tokenizer.from_pretrained(tmp_path / "empty")


def test_vocab_txt_import_round_trip(trained, tmp_path):
    tok, out, _ = trained
    vocab_txt = tmp_path / "vocab.txt"
    vocab_txt.write_bytes((out / "vocab.txt").read_bytes())
    # a vocab.txt file directly, and a vocab.txt-only directory with do_lower_case in its config
    direct = Tokenizer.from_pretrained(vocab_txt, lowercase=tok.lowercase)
    only_vocab = tmp_path / "only_vocab"
    only_vocab.mkdir()
    (only_vocab / "vocab.txt").write_bytes(vocab_txt.read_bytes())
    (only_vocab / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": tok.lowercase}))
    from_dir = Tokenizer.from_pretrained(only_vocab)
    assert direct.lowercase == from_dir.lowercase == tok.lowercase
    args = ["tokenizer", "import", str(vocab_txt), "--out", str(tmp_path / "imported")]
    assert main(args + ([] if tok.lowercase else ["--cased"])) == 0
    imported = Tokenizer.from_pretrained(tmp_path / "imported")
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "imported"))
    assert imported.vocab() == direct.vocab() == tok.vocab()
    for text in TEXTS:
        assert imported.encode(text) == direct.encode(text) == from_dir.encode(text) == tok.encode(text)
        assert _hf(hf, text) == _ours(tok, text)
    for a, b in PAIRS:
        assert _hf(hf, a, b, truncation=True, max_length=10) == _ours(tok, a, b, max_length=10)


def test_google_style_vocab(tmp_path):
    """Google's layout: [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103."""
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += ["the", "dog", "un", "##aff", "##able", "北", "京", "cafe", "café", "##s", "!"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tok = Tokenizer.from_pretrained(path)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 100, 101, 102, 103)
    assert tok.vocab_size == len(tokens)
    enc = tok.encode("The unaffable Café 北京 dogs!", "cats")
    assert enc["input_ids"] == [101, 104, 106, 107, 108, 111, 109, 110, 105, 113, 114, 102, 100, 102]
    assert enc["token_type_ids"] == [0] * 12 + [1] * 2
    assert tok.is_continuation.nonzero()[0].tolist() == [107, 108, 113]
    assert main(["tokenizer", "import", str(path), "--out", str(tmp_path / "g"), "--cased"]) == 0
    cased = Tokenizer.from_pretrained(tmp_path / "g")
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "g"))
    assert not cased.lowercase
    assert cased.tokenize("café Café") == ["café", "[UNK]"]
    for text in ["The unaffable Café 北京 dogs!", "café cafe", "[MASK] dog"]:
        assert _ours(cased, text) == _hf(hf, text)
    bad = tmp_path / "bad.txt"
    bad.write_text("[PAD]\n[UNK]\nthe\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.txt.*\[CLS\]"):
        Tokenizer.from_pretrained(bad)


# ----------------------------------------------------------------------------- corpus formats
def test_gzip_jsonl_and_bad_utf8(corpus, tmp_path, capsys):
    lines = corpus.read_text(encoding="utf-8").splitlines()
    gz = tmp_path / "corpus.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "id": i}, ensure_ascii=False) + "\n"
                             for i, t in enumerate(lines)), encoding="utf-8")
    jsonl_gz = tmp_path / "corpus.jsonl.gz"
    with gzip.open(jsonl_gz, "wb") as f:
        f.write(jsonl.read_bytes())
    bad = tmp_path / "bad.txt"  # two lines that are not UTF-8 among the good ones
    bad.write_bytes(b"\xff\xfe broken\n" + "\n".join(lines).encode("utf-8") + b"\nbad \xc3\x28 line\n")

    # the trainer breaks frequency ties in hash-map order, so two trainings may differ in ids:
    # compare the texts the trainer is fed, then check each format trains to the full vocab size
    assert list(Corpus([corpus]).texts()) == lines
    for path in (gz, jsonl, jsonl_gz):
        assert list(Corpus([path]).texts()) == lines, path.name
        tok = Tokenizer.train([path], 500, show_progress=False)
        assert tok.vocab_size == 500 and tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == list(SPECIAL_TOKENS)
        assert tok.train_stats == {**tok.train_stats, "files": 1, "lines": len(lines), "skipped_lines": 0}
        assert tok.tokenize("Café 北京 kamiro") == ["cafe", "北", "京"] + tok.tokenize("kamiro")
    capsys.readouterr()
    reader = Corpus([bad, jsonl])
    assert list(reader.texts()) == lines + lines and dict(reader.problems.counts) == {"invalid_utf8_line": 2}
    assert "bad.txt:1: invalid UTF-8 (byte 0xff at column 1), line skipped" in capsys.readouterr().err
    tok = Tokenizer.train([bad], 500, show_progress=True)  # show_progress: counts lines for the bar
    assert tok.vocab_size == 500
    assert tok.train_stats["skipped_lines"] == 2 and tok.train_stats["lines"] == len(lines)
    assert f"bad.txt:{len(lines) + 2}: invalid UTF-8" in capsys.readouterr().err

    # a bad JSONL record is skipped and reported as `berts prepare` does; nothing left is an error
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine words here"}\n{"text": 3}\n', encoding="utf-8")
    tok = Tokenizer.train([broken], 100, show_progress=False)
    assert tok.train_stats["lines"] == 1 and tok.train_stats["skipped"] == {"bad_record": 1}
    assert 'broken.jsonl:2: no string "text" field, record skipped' in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": 3}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"no text found in the corpus: .*empty\.jsonl"):
        Tokenizer.train([empty], 100, show_progress=False)
    with pytest.raises(UserError, match=r"missing\.txt: no such file"):
        Tokenizer.train([corpus, tmp_path / "missing.txt"], 100, show_progress=False)


def test_load_tokenizer_errors(trained, tmp_path):
    tok, out, _ = trained
    assert load_tokenizer(out).vocab() == tok.vocab()
    assert load_tokenizer(out / "vocab.txt").vocab_size == tok.vocab_size  # a vocab.txt file itself
    with pytest.raises(UserError, match=r"^\S*nope: no such tokenizer directory$"):
        load_tokenizer(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: no tokenizer files \(tokenizer\.json or vocab\.txt\)$"):
        load_tokenizer(tmp_path / "empty")


# ----------------------------------------------------------------------------- CLI
def test_cli(corpus, tmp_path, capsys):
    out = tmp_path / "cli_tok"
    assert main(["tokenizer", "train", "--corpus", str(corpus), "--vocab-size", "400", "--out", str(out),
                 "--cased", "--min-frequency", "3"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and "vocab 400 (cased)" in summary[0] and "1 file(s)" in summary[0]
    tok = Tokenizer.from_pretrained(out)
    assert tok.vocab_size == 400 and not tok.lowercase
    assert json.loads((out / "tokenizer_config.json").read_text())["do_lower_case"] is False

    assert main(["tokenizer", "encode", str(out), "Café 北京", "--pair", "the dog"]) == 0
    printed = capsys.readouterr().out.splitlines()
    enc = tok.encode("Café 北京", "the dog")
    assert printed == [
        "tokens: " + " ".join(tok.convert_ids_to_tokens(enc["input_ids"])),
        "ids: " + " ".join(map(str, enc["input_ids"])),
        "type_ids: " + " ".join(map(str, enc["token_type_ids"])),
    ]
    assert printed[0].startswith("tokens: [CLS] ") and printed[0].endswith(" [SEP]")

    missing = tmp_path / "no_such_corpus.txt"
    assert main(["tokenizer", "train", "--corpus", str(corpus), str(missing), "--vocab-size", "400",
                 "--out", str(tmp_path / "x")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("berts: error: ") and str(missing) in err[0]
    assert not (tmp_path / "x").exists()
    assert main(["tokenizer", "encode", str(tmp_path / "nowhere"), "hi"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_cased_with_accent_stripping(corpus, tmp_path):
    tok = Tokenizer.train([corpus], 400, lowercase=False, strip_accents=True, show_progress=False)
    assert not tok.lowercase and tok.strip_accents is True
    assert tok.tokenize("Café") == tok.tokenize("Cafe") and tok.tokenize("Café") != tok.tokenize("cafe")
    out = tok.save_pretrained(tmp_path / "t")
    assert json.loads((out / "tokenizer_config.json").read_text())["strip_accents"] is True
    hf = AutoTokenizer.from_pretrained(str(out))
    for text in TEXTS:
        assert _ours(tok, text) == _hf(hf, text)
    assert Tokenizer.from_pretrained(out).strip_accents is True


# ----------------------------------------------------------------------------- issue 13: nothing lost, no garbage
def test_train_and_import_refuse_a_directory_that_is_not_theirs(corpus, tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["tokenizer", "train", "--corpus", str(corpus), "--vocab-size", "300", "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (f"berts: error: {out}: holds 1 file that berts did not write (notes.txt); "
                                       "choose an empty or new directory, or pass --overwrite to write beside "
                                       "them (they are kept)\n")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main(args + ["--overwrite"]) == 0  # beside them: the user's file stays
    capsys.readouterr()
    assert (out / "notes.txt").read_text() == "mine" and Tokenizer.from_pretrained(out).vocab_size == 300

    # an earlier tokenizer: replaced only when told
    assert main(args[:-4] + ["--vocab-size", "250", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"berts: error: {out}: holds an earlier tokenizer (special_tokens_map.json, "
                                       "tokenizer.json, tokenizer_config.json, vocab.txt); pass --overwrite to "
                                       "replace it\n")
    assert Tokenizer.from_pretrained(out).vocab_size == 300
    assert main(args[:-4] + ["--vocab-size", "250", "--out", str(out), "--overwrite"]) == 0
    assert Tokenizer.from_pretrained(out).vocab_size == 250 and (out / "notes.txt").read_text() == "mine"
    capsys.readouterr()

    # import: the same rule, and never over the vocab.txt it reads
    assert main(["tokenizer", "import", str(out / "vocab.txt"), "--out", str(out)]) == 2
    assert "holds an earlier tokenizer" in capsys.readouterr().err
    assert main(["tokenizer", "import", str(out / "vocab.txt"), "--out", str(out), "--overwrite"]) == 2
    assert capsys.readouterr().err == (f"berts: error: {out}: this run reads {(out / 'vocab.txt').resolve()}, "
                                       f"which lies inside {out / 'vocab.txt'} that --overwrite would remove; "
                                       "write to another --out\n")
    assert Tokenizer.from_pretrained(out).vocab_size == 250
    assert main(["tokenizer", "import", str(out / "vocab.txt"), "--out", str(tmp_path / "imported")]) == 0
    assert Tokenizer.from_pretrained(tmp_path / "imported").vocab_size == 250
    (tmp_path / "f").write_text("x")
    assert main(["tokenizer", "import", str(out / "vocab.txt"), "--out", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.endswith(f"{tmp_path / 'f'}: exists and is not a directory\n")


def test_a_corpus_with_no_usable_text(tmp_path, capsys):
    corpus = tmp_path / "blank.txt"
    corpus.write_text(" \n\t\n\u200b\n" * 50)  # lines, but nothing a tokenizer keeps
    assert main(["tokenizer", "train", "--corpus", str(corpus), "--vocab-size", "100", "--out",
                 str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("berts: error: no usable text in the corpus (") and err.endswith(f"{corpus}\n")
    assert not (tmp_path / "t").exists()


def test_a_vocabulary_far_below_vocab_size_warns(tmp_path, capsys):
    corpus = tmp_path / "small.txt"
    corpus.write_text("a small corpus of few words\n" * 20)
    assert main(["tokenizer", "train", "--corpus", str(corpus), "--vocab-size", "1000", "--out",
                 str(tmp_path / "t")]) == 0
    cap = capsys.readouterr()
    size = Tokenizer.from_pretrained(tmp_path / "t").vocab_size
    assert size < 500
    assert cap.err == (f"berts: warning: the vocabulary has {size} tokens, far below --vocab-size 1000: the "
                       f"corpus is too small for it (20 lines; or lower --min-frequency 2)\n")
    tok = Tokenizer.train([corpus], 1000, show_progress=False, warnings_stream=io.StringIO())
    assert tok.train_stats["warning"].startswith(f"the vocabulary has {size} tokens")


def test_encode_max_length_must_be_positive(trained, tmp_path, capsys):
    tok = trained[0]
    tok.save_pretrained(tmp_path / "t")
    for n in ("0", "-3"):
        with pytest.raises(SystemExit) as exit_:  # argparse (berts.util.values), one line
            main(["tokenizer", "encode", str(tmp_path / "t"), "some text", "--max-length", n])
        assert exit_.value.code == 2
        assert capsys.readouterr().err == (f"berts tokenizer encode: error: argument --max-length: an integer >= 1 "
                                           f"expected, got '{n}' (see berts tokenizer encode --help)\n")
    with pytest.raises(UserError, match="max length must be at least 1, got 0"):
        tok.encode("some text", max_length=0)
    assert main(["tokenizer", "encode", str(tmp_path / "t"), "some text", "--max-length", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[1].count(" ") == 3  # "ids:" and 3 ids


def test_save_pretrained_keeps_other_files(trained, tmp_path):
    tok = trained[0]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "notes.txt").write_text("mine")
    tok.save_pretrained(tmp_path / "t")
    assert (tmp_path / "t" / "notes.txt").read_text() == "mine"
    assert Tokenizer.from_pretrained(tmp_path / "t").vocab() == tok.vocab()
