"""Token-tagging data (berts.data.tagging): readers and their one-line errors, schemes (detect,
convert to BIO, invalid transitions), sub-token alignment against transformers' word_ids, windows."""
import random

import pytest

from berts.data.tagging import (IGNORE_INDEX, TaggedSentence, align_labels, b_to_i_map, bio_entities, check_labels,
                                count_invalid, detect_scheme, entity_spans, first_token_predictions,
                                invalid_transitions, label_list, merge_windows, pad_batch, read_conll, read_jsonl,
                                read_tagged, split_words, tagging_features, tagging_features_batch, to_bio,
                                tag_fields, word_pieces, word_windows, write_conll)
from berts.errors import UserError

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_read_conll_columns_docstart_and_tag_column(tmp_path):
    f = tmp_path / "train.conll"
    f.write_text(CONLL, encoding="utf-8")
    s = read_conll(f)
    assert [x.tokens for x in s] == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert s[0].tags == ["B-ORG", "O", "B-MISC", "O"] and s[1].tags == ["B-PER", "I-PER"]
    assert (s[0].line, s[1].line) == (3, 8) and s[0].columns[0] == ["NNP", "B-NP"]
    assert read_conll(f, tag_column=1)[0].tags == ["NNP", "VBZ", "JJ", "NN"]  # POS tags instead
    assert read_tagged(f)[1].tags == ["B-PER", "I-PER"]


def test_read_chinese_per_character(tmp_path):
    f = tmp_path / "msra.txt"
    f.write_text("郑 B-PER\n成 I-PER\n功 I-PER\n在 O\n台 B-LOC\n湾 I-LOC\n\n我 O\n", encoding="utf-8")
    s = read_conll(f)
    assert s[0].tokens == list("郑成功在台湾") and s[0].tags[:3] == ["B-PER", "I-PER", "I-PER"]
    assert s[1].tokens == ["我"] and label_list(s) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_reader_errors_name_file_and_line(tmp_path):
    f = tmp_path / "bad.conll"
    f.write_text("EU B-ORG\nrejects\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.conll:2: one column"):
        read_conll(f)
    f.write_text("EU B-ORG\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.conll:1: no column 5"):
        read_conll(f, tag_column=5)
    j = tmp_path / "bad.jsonl"
    j.write_text('{"tokens": ["a", "b"], "tags": ["O", "O"]}\n\n{"tokens": ["a", "b"], "tags": ["O"]}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:3: 1 tags for 2 tokens"):
        read_jsonl(j)
    j.write_text('{"tokens": ["a"], "ner_tags": ["B-X"]}\nnot json\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(j)
    j.write_text('{"tokens": ["a"], "ner_tags": ["B-X"]}\n')
    assert read_tagged(j)[0].tags == ["B-X"]
    with pytest.raises(UserError, match="no such file"):
        read_conll(tmp_path / "missing.txt")


def test_unknown_dev_tag_names_its_line(tmp_path):
    train = tmp_path / "train.txt"
    dev = tmp_path / "dev.txt"
    train.write_text("a B-PER\nb O\n", encoding="utf-8")
    dev.write_text("x O\n\ny O\nz B-LOC\n", encoding="utf-8")
    labels = label_list(read_conll(train))
    check_labels(read_conll(train), labels)
    with pytest.raises(UserError, match=r"dev.txt:4: tag 'B-LOC' is not in the training labels"):
        check_labels(read_conll(dev), labels)
    j = tmp_path / "dev.jsonl"
    j.write_text('{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a", "b"], "tags": ["O", "I-ORG"]}\n')
    with pytest.raises(UserError, match=r"dev.jsonl:2: tag 'I-ORG'"):
        check_labels(read_jsonl(j), labels)


def test_scheme_detection_and_conversion():
    assert detect_scheme([["B-PER", "I-PER", "O", "B-LOC"]]) == "BIO"
    assert detect_scheme([["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]) == "IOB1"
    assert detect_scheme([["B-PER", "E-PER", "S-LOC", "O"]]) == "BIOES"
    assert detect_scheme([["B-PER", "M-PER", "E-PER", "S-LOC"]]) == "BMES"
    assert detect_scheme([["I-PER", "O", "I-LOC"], ["PER", "O"]]) == "IO"
    assert to_bio(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "IOB1") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert to_bio(["B-PER", "M-PER", "E-PER", "S-LOC", "S-LOC"], "BMES") == ["B-PER", "I-PER", "I-PER", "B-LOC", "B-LOC"]
    assert to_bio(["PER", "PER", "O", "LOC"], "IO") == ["B-PER", "I-PER", "O", "B-LOC"]
    assert to_bio(["O", "I-PER", "I-PER", "I-LOC"], "BIO") == ["O", "B-PER", "I-PER", "B-LOC"]  # repaired
    assert to_bio(["E-PER", "I-PER", "E-PER"], "BIOES") == ["B-PER", "B-PER", "I-PER"]  # E without B opens
    with pytest.raises(UserError, match="unknown tag scheme"):
        to_bio(["O"], "XYZ")


def test_invalid_transitions():
    assert invalid_transitions(["O", "I-PER", "I-PER"], "BIO") == [(1, "O", "I-PER")]
    assert invalid_transitions(["I-PER"], "IOB2") == [(0, "<s>", "I-PER")]
    assert invalid_transitions(["B-PER", "I-LOC"], "BIO") == [(1, "B-PER", "I-LOC")]
    assert invalid_transitions(["O", "I-PER", "B-LOC"], "IOB1") == [(2, "I-PER", "B-LOC")]
    # BIOES: E without B, and B never closed
    assert invalid_transitions(["O", "E-PER", "B-LOC"], "BIOES") == [(1, "O", "E-PER"), (3, "B-LOC", "</s>")]
    assert invalid_transitions(["B-PER", "M-PER", "E-PER", "S-LOC"], "BMES") == []
    assert count_invalid([["O", "I-PER"], ["I-PER"], ["B-X", "I-X"]], "BIO") == {"O -> I-PER": 1, "<s> -> I-PER": 1}
    assert invalid_transitions(["I-PER", "O", "I-LOC"], "IO") == []


# ------------------------------------------------------------------ alignment with a real tokenizer

WORDS = [["Peter", "Blackburn", "visited", "Brüssel-Mitte", "yesterday", "!"],
         ["unbelievably", "international", "organisations"], ["郑", "成", "功", "在", "台", "湾"],
         ["\x07", "tab"]]  # a control character tokenizes to nothing: it gets [UNK]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from berts.tokenizer.wordpiece import Tokenizer

    d = tmp_path_factory.mktemp("tok")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(["Peter visited the city yesterday and organisations met.",
                                 "郑成功在台湾 international visited", "black burn peter"] * 20) + "\n", encoding="utf-8")
    tok = Tokenizer.train([corpus], 120, show_progress=False)
    return tok, tok.save_pretrained(d / "tokenizer")


def test_word_ids_equal_transformers(tokenizer_dir):
    transformers = pytest.importorskip("transformers")
    tok, path = tokenizer_dir
    hf = transformers.BertTokenizerFast.from_pretrained(str(path))
    for words in WORDS[:3]:
        enc = hf(words, is_split_into_words=True)
        feats = tagging_features(tok, words, list(range(len(words))), max_length=512)
        assert len(feats) == 1
        assert feats[0]["input_ids"] == enc["input_ids"]
        assert feats[0]["word_ids"] == enc.word_ids()
        # HF's convention: the first sub-token of each word carries its label, the rest -100
        prev, expect = None, []
        for w in enc.word_ids():
            expect.append(IGNORE_INDEX if w is None or w == prev else w)
            prev = w
        assert feats[0]["labels"] == expect
    pieces = word_pieces(tok, WORDS[3])
    assert pieces[0] == [tok.unk_id] and len(pieces[1]) >= 1


def test_align_labels_all_subtokens():
    labels = ["O", "B-PER", "I-PER", "S-LOC"]
    b2i = b_to_i_map(labels)
    assert b2i == [0, 2, 2, 3]  # no I-LOC in the set: S-LOC stays
    wids = [None, 0, 0, 1, 2, 2, None]
    assert align_labels(wids, [1, 0, 3]) == [-100, 1, -100, 0, 3, -100, -100]
    assert align_labels(wids, [1, 0, 3], True, b2i) == [-100, 1, 2, 0, 3, 3, -100]
    assert align_labels(wids, [1, 0, 3], True) == [-100, 1, 1, 0, 3, 3, -100]


def test_windows_cover_every_word_and_merge_picks_the_most_central(tokenizer_dir):
    tok, _ = tokenizer_dir
    rng = random.Random(0)
    vocab = ["Peter", "Blackburn", "visited", "organisations", "yesterday", "台湾", "x"]
    words = [rng.choice(vocab) for _ in range(60)]
    labels = [i % 5 for i in range(60)]
    feats = tagging_features(tok, words, labels, max_length=16, stride=6)
    assert len(feats) > 3
    for f in feats:
        assert len(f["input_ids"]) <= 16 and f["input_ids"][0] == tok.cls_id and f["input_ids"][-1] == tok.sep_id
    # consecutive windows overlap and move forward
    for a, b in zip(feats, feats[1:]):
        assert a["window"][0] < b["window"][0] <= a["window"][1] < b["window"][1]
    # a "model" that predicts each token's own label: merging gives every word its label back
    preds = [first_token_predictions(f["word_ids"], [None if x == -100 else x for x in f["labels"]], f["window"])
             for f in feats]
    assert merge_windows([f["window"] for f in feats], preds, len(words)) == labels
    # the most central window wins: words 2..5 in windows (0, 6) and (2, 10)
    windows = [(0, 6), (2, 10)]
    merged = merge_windows(windows, [["a"] * 6, ["b"] * 8], 10)
    # word 2: depth 2 in the first, 0 in the second -> a; word 3: 2 vs 1 -> a; word 4: 1 vs 2 -> b; word 5: 0 vs 3 -> b
    assert merged == ["a", "a", "a", "a", "b", "b", "b", "b", "b", "b"]
    with pytest.raises(ValueError, match="in no window"):
        merge_windows([(0, 2)], [["a", "a"]], 3)


def test_word_windows_by_hand():
    assert word_windows([1] * 10, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    # a word longer than the window is a window alone; the window never repeats
    assert word_windows([3, 1, 5, 1, 1], 4, 2) == [(0, 2), (2, 3), (3, 5)]
    assert word_windows([2, 2], 4, 2) == [(0, 2)]
    assert word_windows([], 4, 2) == []


def test_batch_features_equal_one_at_a_time(tokenizer_dir):
    tok, _ = tokenizer_dir
    labels = [list(range(len(w))) for w in WORDS]
    batch = tagging_features_batch(tok, WORDS, labels, max_length=8, stride=2)
    assert batch == [tagging_features(tok, w, y, max_length=8, stride=2) for w, y in zip(WORDS, labels)]


def test_raw_text_entities_map_back_to_the_original_string(tokenizer_dir):
    tok, _ = tokenizer_dir  # lowercases and strips accents: the offsets still point into the original
    text = "Café Müller visited 北京 today!"
    words, offsets = split_words(tok, text)
    assert words == ["Café", "Müller", "visited", "北", "京", "today", "!"]
    assert offsets[:2] == [(0, 4), (5, 11)] and offsets[3:5] == [(20, 21), (21, 22)]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O"]
    scores = [0.9, 0.7, 1.0, 0.6, 0.8, 1.0, 1.0]
    # PER: words 0-1, chars 0..11, score (0.9 + 0.7) / 2; LOC: words 3-4, chars 20..22, (0.6 + 0.8) / 2
    assert entity_spans(text, offsets, tags, scores) == [
        {"type": "PER", "text": "Café Müller", "start": 0, "end": 11, "score": pytest.approx(0.8)},
        {"type": "LOC", "text": "北京", "start": 20, "end": 22, "score": pytest.approx(0.7)}]
    # lenient reading of invalid predictions: "O I-LOC" opens an entity, "B-PER I-LOC" is two
    assert bio_entities(["O", "I-LOC", "B-PER", "I-LOC"], "BIO") == [("LOC", 1, 2), ("PER", 2, 3), ("LOC", 3, 4)]
    assert bio_entities(["S-X", "B-Y", "E-Y"], "BIOES") == [("X", 0, 1), ("Y", 1, 3)]


def test_write_conll(tmp_path):
    s = [TaggedSentence(["EU", "rejects"], ["B-ORG", "O"]), TaggedSentence(["Hi"], [])]
    out = write_conll(tmp_path / "pred.conll", s, [["B-ORG", "B-MISC"], ["O"]])
    assert out.read_text() == "EU B-ORG B-ORG\nrejects O B-MISC\n\nHi O\n\n"
    # and it reads back (the predicted column is the last)
    assert [x.tags for x in read_conll(out)] == [["B-ORG", "B-MISC"], ["O"]]


def test_pad_batch_equals_transformers_collator(tokenizer_dir):
    transformers = pytest.importorskip("transformers")
    tok, path = tokenizer_dir
    hf = transformers.BertTokenizerFast.from_pretrained(str(path))
    feats = [f for w in WORDS[:3] for f in tagging_features(tok, w, [1] * len(w), max_length=10, stride=2)]
    ours = pad_batch(feats, tok.pad_id, pad_to_multiple_of=8)
    collator = transformers.DataCollatorForTokenClassification(hf, pad_to_multiple_of=8, return_tensors="pt")
    theirs = collator([{k: f[k] for k in ("input_ids", "token_type_ids", "attention_mask", "labels")} for f in feats])
    assert ours.keys() == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    for k in ours:
        assert ours[k].tolist() == theirs[k].tolist(), k
    assert ours["input_ids"].shape[1] % 8 == 0


# --------------------------------------------------------------------------------------------- parquet, datasets

ROWS = [{"tokens": ["EU", "rejects", "German", "call"], "tags": ["B-ORG", "O", "B-MISC", "O"]},
        {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]}]


def test_read_parquet_rows_and_named_fields(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), f)
    s = read_tagged(f)
    assert [(x.tokens, x.tags, x.line) for x in s] == [(r["tokens"], r["tags"], i) for i, r in enumerate(ROWS, 1)]
    # other field names, as --text-column / --label-column give them
    g = tmp_path / "renamed.pq"
    pq.write_table(pa.Table.from_pylist([{"words": r["tokens"], "ner": r["tags"]} for r in ROWS]), g)
    assert [x.tags for x in read_tagged(g, tokens_field="words", tags_field="ner")] == [r["tags"] for r in ROWS]
    assert tag_fields("words", "ner") == ("words", "ner") and tag_fields("text", "label") == ("tokens", "tags")
    with pytest.raises(UserError, match=r"renamed\.pq: row 1: no field 'tokens'"):
        read_tagged(g)


def test_read_datasets_directory_with_class_label_ids(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    names = ["O", "B-PER", "I-PER", "B-ORG", "B-MISC"]
    features = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))})
    ds = Dataset.from_list([{"tokens": r["tokens"], "ner_tags": [names.index(t) for t in r["tags"]]} for r in ROWS],
                           features=features)
    ds.save_to_disk(str(tmp_path / "train"))
    s = read_tagged(tmp_path / "train")  # a directory: save_to_disk; ids read through the ClassLabel's names
    assert [(x.tokens, x.tags, x.line) for x in s] == [(r["tokens"], r["tags"], i) for i, r in enumerate(ROWS, 1)]


def test_parquet_tags_shorter_than_tokens_is_one_line_naming_file_and_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([ROWS[0], {"tokens": ["a", "b", "c"], "tags": ["O", "O"]}]), f)
    with pytest.raises(UserError) as e:
        read_tagged(f)
    assert str(e.value) == f"{f}: row 2: 2 tags for 3 tokens"
