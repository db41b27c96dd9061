"""The tokenizer split by job: the vocabulary alone (WordPieceVocab: save/load, ids) and the HF call
layer (HFCall) against transformers' BertTokenizerFast loaded from the same directory; the bench's
special ids read from the tokenizer."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from berts.tokenizer.files import TOKENIZER_FILES
from berts.tokenizer.hf_call import HFCall
from berts.tokenizer.vocab import SpecialIds, WordPieceVocab
from berts.tokenizer.wordpiece import Tokenizer, load_tokenizer

transformers = pytest.importorskip("transformers")

# specials scattered, none at BERT's ids (0..4 trained, 0/100..103 Google): a wrong default shows
TOKENS = ["the", "[SEP]", "dog", "[MASK]", "cat", "[PAD]", "un", "##aff", "##able", "[CLS]", "[UNK]",
          "quick", "brown", "fox", "jumps", "over", "lazy", "a", "b", "##s", "!", ".", "北", "京", "cafe"]
VOCAB = {t: i for i, t in enumerate(TOKENS)}
SPECIALS = SpecialIds(pad=5, unk=10, cls=9, sep=1, mask=3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(our Tokenizer, transformers' BertTokenizerFast), both loaded from one saved directory."""
    directory = Tokenizer.from_vocab(VOCAB).save_pretrained(tmp_path_factory.mktemp("tok") / "t")
    return Tokenizer.from_pretrained(directory), transformers.BertTokenizerFast.from_pretrained(str(directory))


# ----------------------------------------------------------------------------- the vocabulary alone
def test_the_vocabulary_alone_round_trips_save_and_load(tmp_path):
    vocab = WordPieceVocab.from_vocab(VOCAB, lowercase=True)
    assert not isinstance(vocab, HFCall) and not callable(vocab) and not hasattr(vocab, "encode")
    assert vocab.specials == SPECIALS and vocab.special_ids == frozenset({1, 3, 5, 9, 10})
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (5, 10, 9, 1, 3)
    assert vocab.tokenize("The unaffable dogs!") == ["the", "un", "##aff", "##able", "dog", "##s", "!"]
    assert vocab.encode_ids_batch(["The dogs", "Café 北京"]) == [[0, 2, 19], [24, 22, 23]]
    assert vocab.encode_ids_batch(["cat"], add_special_tokens=True) == [[9, 4, 1]]  # [CLS] cat [SEP]
    assert vocab.decode([9, 6, 7, 8, 1]) == "unaffable"
    assert vocab.decode([9, 6, 7, 8, 1], skip_special_tokens=False) == "[CLS] unaffable [SEP]"
    assert vocab.convert_tokens_to_ids(["fox", "zebra"]) == [13, 10] and vocab.convert_ids_to_tokens(13) == "fox"
    assert vocab.is_continuation.nonzero()[0].tolist() == [7, 8, 19]

    out = vocab.save_pretrained(tmp_path / "v")
    assert sorted(p.name for p in out.iterdir()) == sorted(TOKENIZER_FILES)
    assert (out / "vocab.txt").read_text(encoding="utf-8") == "".join(t + "\n" for t in TOKENS)
    again = WordPieceVocab.from_pretrained(out)
    assert type(again) is WordPieceVocab
    assert again.vocab() == VOCAB and again.specials == SPECIALS and again.lowercase is True
    assert again.special_tokens == vocab.special_tokens and again.model_max_length == 512
    for text in ["The unaffable dogs!", "Café 北京 quick brown fox", "zebra"]:
        assert again.tokenize(text) == vocab.tokenize(text)
    # the whole tokenizer writes the same bytes and reads the vocabulary's directory
    full = Tokenizer.from_vocab(VOCAB).save_pretrained(tmp_path / "t")
    for name in TOKENIZER_FILES:
        assert (full / name).read_bytes() == (out / name).read_bytes(), name
    tok = load_tokenizer(out)
    assert isinstance(tok, Tokenizer) and isinstance(tok, WordPieceVocab) and tok.specials == SPECIALS


def test_trained_vocabulary_is_the_tokenizers_one(tmp_path):
    rng = random.Random(0)
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(" ".join(rng.choice(TOKENS[11:19] + ["dogs", "cats"]) for _ in range(6)) + "\n"
                              for _ in range(200)), encoding="utf-8")
    vocab = WordPieceVocab.train([corpus], 60, show_progress=False)
    assert type(vocab) is WordPieceVocab and vocab.train_stats["lines"] == 200
    assert vocab.specials == SpecialIds(pad=0, unk=1, cls=2, sep=3, mask=4)
    tok = Tokenizer.train([corpus], 60, show_progress=False)
    assert type(tok) is Tokenizer and tok.encode("quick fox")["input_ids"][0] == 2


# ----------------------------------------------------------------------------- the call layer
TEXTS = ["The unaffable dogs!", "quick brown fox jumps over the lazy dog .", "北京", "", "cafe cats zebra"]
PAIRS = ["a b", "the dog", "unaffable quick brown fox jumps over", "cat", ""]


def _ours(tok, *args, **kw):
    out = tok(*args, **kw)
    return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}


def _theirs(hf, *args, **kw):
    out = hf(*args, **kw)
    return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in out.items()
            if k in ("input_ids", "token_type_ids", "attention_mask")}


@pytest.mark.filterwarnings("ignore:`max_length` is ignored")  # transformers' note on padding=True, no truncation
@pytest.mark.parametrize("max_length", [None, 4, 7, 8, 11])
@pytest.mark.parametrize("padding", [False, True, "longest", "max_length"])
def test_call_layer_equals_bert_tokenizer_fast(saved, padding, max_length):
    tok, hf = saved
    for multiple in (None, 4):
        if padding == "max_length" and max_length is None:
            continue  # 512 columns: nothing new to see
        if padding and multiple and max_length and max_length % multiple:
            continue  # transformers refuses a truncation length that is not a multiple (we pad past it)
        kw = dict(padding=padding, truncation=True, max_length=max_length, pad_to_multiple_of=multiple)
        assert _ours(tok, TEXTS, **kw) == _theirs(hf, TEXTS, **kw), kw
        assert _ours(tok, TEXTS, PAIRS, **kw) == _theirs(hf, TEXTS, PAIRS, **kw), kw
        assert _ours(tok, TEXTS[1], PAIRS[2], **kw) == _theirs(hf, TEXTS[1], PAIRS[2], **kw), kw
        if padding:
            pt = dict(kw, return_tensors="pt")
            assert _ours(tok, TEXTS, PAIRS, **pt) == _theirs(hf, TEXTS, PAIRS, **pt), pt
        if max_length is not None:  # no truncation: max_length is the padding width only
            kw["truncation"] = False
            assert _ours(tok, TEXTS, PAIRS, **kw) == _theirs(hf, TEXTS, PAIRS, **kw), kw
        single = dict(max_length=max_length, truncation=True)
        for text, pair in zip(TEXTS, PAIRS[:-1]):  # unbatched, transformers drops an empty pair ("")
            assert tok.encode(text, pair, **single) == _theirs(hf, text, pair, **single)


def test_call_layer_by_hand(saved):
    """[CLS] the dog [SEP] a b [SEP] and [CLS] cat [SEP] fox [SEP], padded to 8 with [PAD] = 5."""
    tok, _ = saved
    out = tok(["the dog", "cat"], ["a b", "fox"], padding="longest", pad_to_multiple_of=8)
    assert out["input_ids"] == [[9, 0, 2, 1, 17, 18, 1, 5], [9, 4, 1, 13, 1, 5, 5, 5]]
    assert out["token_type_ids"] == [[0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 0, 0, 0]]
    assert out["attention_mask"] == [[1] * 7 + [0], [1] * 5 + [0] * 3]
    # longest_first truncation to 5: the longer text gives up tokens first
    assert tok.encode("quick brown fox jumps", "dog", max_length=5)["input_ids"] == [9, 11, 1, 2, 1]
    # the backend is left with neither truncation nor padding (the vocabulary's encode_ids_batch)
    assert tok.backend.truncation is None and tok.backend.padding is None
    assert tok.encode_ids_batch(["quick brown fox jumps"]) == [[11, 12, 13, 14]]
    with pytest.raises(ValueError, match="padding must be"):
        tok(["a"], padding="left")
    assert tok.backend.truncation is None and tok.backend.padding is None


# ----------------------------------------------------------------------------- the bench's special ids
def test_bench_special_ids_are_the_tokenizers(saved):
    from berts.model.config import preset
    from berts.tools.bench import BatchMaker, BenchOptions
    from berts.tools.bench.batches import Specials

    tok, _ = saved
    special = Specials.of(tok)
    assert (special.pad, special.cls, special.sep, special.mask) == (tok.pad_id, tok.cls_id, tok.sep_id,
                                                                     tok.mask_id) == (5, 9, 1, 3)
    assert special.ids == tuple(sorted(tok.special_ids)) == (1, 3, 5, 9, 10) and special.first == 11
    assert Specials.of() == Specials(pad=0, cls=2, sep=3, mask=4, ids=(0, 1, 2, 3, 4), first=5)

    cfg = preset("tiny").replace(vocab_size=tok.vocab_size)
    ids = tok.encode_ids_batch(["the quick brown fox", "jumps over the lazy dog", "cafe 北京 cats", "a b"])
    paragraphs = [[np.asarray(x, dtype=np.int64) for x in ids]]
    maker = BatchMaker(BenchOptions(seq=16, batch=4), cfg, paragraphs, tokenizer=tok)
    assert maker.special == special
    assert (maker.collator.pad_id, maker.collator.mask_id) == (5, 3)
    batch = maker.make("finetune", "real")["berts"]
    rows, mask = batch["input_ids"], batch["attention_mask"].bool()
    assert (rows[:, 0] == 9).all() and bool((rows[~mask] == 5).all())
    lengths = mask.sum(1)
    assert all(int(rows[i, n - 1]) == 1 for i, n in enumerate(lengths.tolist()))  # each row ends with [SEP]
