"""The main job end to end, --quick, on small text made here (the real one fetches registry
corpora and MiniLM): every step runs, the figures in the report are the ones the run's own
files hold (checked against transformers and scikit-learn where an oracle exists), and the
HTML page is one self-contained file."""
import json
import random
import re

import pytest
import torch

from berts.demo.en import en_precision
from berts.demo.run import DemoSettings, EnInputs, ZhInputs, quick_settings, run_demo
from berts.errors import UserError
from test_demo_zh import zh_inputs

pytest.importorskip("sklearn")

ZH_WORDS = ["经济", "发展", "人民", "国家", "建设", "改革", "开放", "世界", "和平", "合作", "新年", "城市",
            "很好", "喜欢", "满意", "推荐", "很差", "失望", "难用", "退货"]
EN_WORDS = ["the", "film", "plot", "actor", "story", "scene", "music", "is", "was", "and", "a", "very"]
GOOD = {"zh": ["很好", "喜欢", "满意", "推荐"], "en": ["great", "moving", "superb", "fun"]}
BAD = {"zh": ["很差", "失望", "难用", "退货"], "en": ["dull", "awful", "boring", "weak"]}


def sentiment(path, rng, n, lang):
    words, joiner = (ZH_WORDS, "") if lang == "zh" else (EN_WORDS, " ")
    with open(path, "w", encoding="utf-8") as f:
        f.write("text\tlabel\n")
        for _ in range(n):
            label = rng.choice(["pos", "neg"])
            core = rng.choice(GOOD[lang] if label == "pos" else BAD[lang])
            filler = [rng.choice(words) for _ in range(rng.randint(1, 4))]
            f.write(joiner.join([*filler, core, *filler]) + f"\t{label}\n")


TOPICS = [["river", "boat", "water", "bank", "fish"], ["church", "priest", "prayer", "faith", "god"],
          ["army", "soldier", "battle", "war", "general"], ["market", "price", "trade", "money", "stock"],
          ["school", "teacher", "pupil", "class", "lesson"], ["farm", "crop", "field", "harvest", "rain"]]


def brown(path, rng, paragraphs=24):
    """Brown-like text: a paragraph a line, a blank line between files; file 0 (the test split of
    the search set) holds paragraphs of 3 sentences on a topic each."""
    def sentence(words, n):
        return " ".join(rng.choice(words) for _ in range(n)).capitalize() + "."

    test = [" ".join(sentence(TOPICS[p % len(TOPICS)] + EN_WORDS, n) for n in (6, 12, 12)) for p in range(paragraphs)]
    other = [sentence(EN_WORDS, 8) for _ in range(3)]
    path.write_text("\n".join(test) + "\n\n" + "\n".join(other) + "\n", encoding="utf-8")


def english_checkpoint(path):
    """A small pretrained-looking BERT directory (random weights), MiniLM's kind: no heads."""
    from berts.model.config import BertConfig
    from berts.model.encoder import BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *EN_WORDS, *GOOD["en"], *BAD["en"],
              *[w for topic in TOPICS for w in topic]]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=48, num_hidden_layers=6, num_attention_heads=4,
                        intermediate_size=96, max_position_embeddings=64)
    BertModel(config).save_pretrained(path, tok)


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path, capsys):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    rng = random.Random(0)
    (tmp_path / "zh").mkdir()
    zh = ZhInputs(*zh_inputs(tmp_path / "zh", rng))  # news, reviews/, ner/, headlines/ (tests/test_demo_zh.py)
    for lang in ("en",):
        for split, n in (("train", 300), ("dev", 80), ("test", 80)):
            sentiment(tmp_path / f"{lang}-{split}.tsv", rng, n, lang)
    english_checkpoint(tmp_path / "minilm")
    brown(tmp_path / "brown.txt", rng)
    en = EnInputs(tmp_path / "minilm", *(tmp_path / f"en-{s}.tsv" for s in ("train", "dev", "test")),
                  brown=tmp_path / "brown.txt")
    s = quick_settings(DemoSettings(lang="both", budget="10m"))
    s.vocab_size, s.limit_alphabet, s.workers, s.compare_examples = 300, 300, 1, 8
    s.finetune_lr = s.en_lr = 1e-3
    s.steps = {"zh.pretrain": 12, "zh.ner": 30, "zh.ner_random": 30, "zh.labels": 15,
               "en.teacher": 40, "en.distilbert": 6, "en.tinybert_layers": 6, "en.tinybert": 6, "en.exits": 6}
    s.eval_every = 20
    out = tmp_path / "out"
    report = run_demo(out, s, zh=zh, en=en)
    printed = capsys.readouterr().out

    assert all(step["exit"] == 0 for step in report["steps"])
    z, e = report["zh"], report["en"]
    assert z["pretrain"]["steps"] == 12 and len(z["pretrain"]["evals"]) >= 1  # held-out MLM curve points
    # Chinese: NER (pretrained, random weights, CRF) on all 40 test sentences; label efficiency at
    # 100, 300 and all 400 labels (no 1,000 in 400) on both datasets
    assert z["ner"]["pretrained"]["steps"] == 30 and z["ner"]["random"]["steps"] == 30
    assert z["ner"]["pretrained_test"]["f1"] > 0.8 and z["ner"]["crf"]["examples"] == 40
    for name in ("reviews", "headlines"):
        points = z["labels"][name]["points"]
        assert [p["labels"] for p in points.values()] == [100, 300, 400]
        assert all(p[i]["steps"] == 15 and p[i]["test"]["examples"] == 80 for p in points.values()
                   for i in ("pretrained", "random"))
    # interop: transformers loads the three English classifiers, sentence-transformers the encoder
    hf = e["interop"]["transformers"]
    assert sorted(hf) == ["distilbert", "teacher", "tinybert"]
    assert all(h["same_token_ids"] is True and h["max_abs_logit_diff"] < 1e-4 for h in hf.values())
    assert e["interop"]["sentence_transformers"]["max_abs_diff"] < 1e-4
    # search: the figures are the qrels' scores of `berts search`'s answers, recomputed here from the
    # encoder directory the demo wrote (exact cosine) and from TF-IDF on the same documents
    from berts.embed.encoder import Encoder
    from berts.embed.metrics import read_beir, retrieval_scores, top_k
    from berts.tools.baselines import tfidf_retrieval

    sr = e["search"]
    corpus, queries, qrels = read_beir(out / "en" / "search" / "brown-test", "test")
    assert sr["set"]["queries"] == len(queries) == len(corpus) >= 15  # paragraphs the sentence splitter cut in 3+
    enc = Encoder.from_pretrained(out / "en" / "search" / "encoder")
    ids = list(corpus)
    scores, idx = top_k(enc.encode(list(queries.values())), enc.encode([corpus[d]["text"] for d in ids]), 10)
    run = {q: {ids[j]: float(v) for v, j in zip(scores[n], idx[n])} for n, q in enumerate(queries)}
    assert abs(retrieval_scores(run, qrels, (1, 10))["recall@10"] - sr["minilm"]["recall@10"]) < 1e-4
    want = retrieval_scores(tfidf_retrieval({d: c["text"] for d, c in corpus.items()}, queries), qrels, (1, 10))
    assert sr["tfidf"]["recall@10"] == round(want["recall@10"], 4) and sr["queries_per_s"] > 0 and sr["index_s"] is not None
    assert len(sr["examples"]) == 3 and all(len(x["hits"]) == 3 for x in sr["examples"])
    # one progress line per stage, numbered, with the budget left
    lines = re.findall(r"^\[stage (\d+)/(\d+)\] (\S+)  \(elapsed \d+m\d\ds, (left|over budget by) \d+m\d\ds\)$",
                       printed, re.M)
    assert [int(n) for n, *_ in lines] == list(range(1, len(lines) + 1))
    assert {name for *_, name, _ in lines} >= {"zh.pretrain", "en.baseline", "en.teacher", "en.search", "en.interop",
                                               "report"}
    assert all(int(total) == len(lines) for _, total, *_ in lines)
    # the TF-IDF figure is what scikit-learn gives for the dev-chosen C (100 review labels)
    files = {"train": out / "zh" / "data" / "reviews" / "train.100.tsv", "test": tmp_path / "zh" / "reviews" / "test.tsv"}
    rows = lambda split: [line.split("\t") for line in files[split].read_text().splitlines()[1:]]  # noqa: E731
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    x = vec.fit_transform([t for t, _ in rows("train")])
    tfidf = z["labels"]["reviews"]["points"]["100"]["tfidf"]
    clf = LogisticRegression(C=tfidf["C"], max_iter=2000).fit(x, [y for _, y in rows("train")])
    test_acc = float((clf.predict(vec.transform([t for t, _ in rows("test")])) == [y for _, y in rows("test")]).mean())
    assert tfidf["test_accuracy"] == test_acc
    # compression rows: teacher, student, their int8, the exits at the one speed chosen on dev (issue 30)
    for part, speeds in ((e, s.en_speeds),):
        got = [r["speed"] for r in part["compare"] if "speed" in r]
        assert got == [part["exit_choice"]["speed"]] and got[0] in [float(v) for v in speeds.split(",")]
        assert part["exit_choice"]["split"] == "dev"
        assert any(r.get("precision") == "int8" for r in part["compare"])
    assert len([r for r in e["compare"] if "speed" not in r and r.get("precision", "fp32") == "fp32"]) == 3

    # the English training stages run at the precision the CPU is given (bf16 where it has AMX), the
    # Chinese ones at the default (fp32); the report says which
    assert e["precision"] == en_precision(s)
    trained = [st["command"] for st in report["steps"] if st["command"].split()[1] in ("finetune", "distill")]
    assert [c for c in trained if f"--precision {e['precision']}" in c] == [c for c in trained if " en/" in c]
    assert len([c for c in trained if " en/" in c]) == 5 and not any("--precision" in c for c in trained if " zh/" in c)
    saved = json.loads((out / "report.json").read_text())
    assert saved["zh"]["ner"]["pretrained_test"] == z["ner"]["pretrained_test"]
    # each goal with its figure and its verdict, in the json and at the top of the page
    assert saved["goals"] and all(g["verdict"] in ("met", "not met", "not met: degenerate") for g in saved["goals"])
    assert any("MiniLM against TF-IDF on recall@10" in g["goal"] for g in saved["goals"])
    assert sum(g["goal"].startswith(("transformers loads", "sentence-transformers loads")) for g in saved["goals"]) == 2
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert f"{z['ner']['pretrained_test']['f1']:.4f}" in md and f"{e['test']['accuracy']:.4f}" in html
    assert "berts pretrain" in md and "berts compare" in md and "berts distill" in md
    assert "berts index" in md and "berts search en/search/brown.idx --queries" in md
    assert md.index("### Goals") < md.index("## Chinese") and "Budget: 600 s; used " in md
    assert "downloads excluded" in md
    # self-contained: every image is embedded, nothing is fetched
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) >= 5 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:|//|/)', html)
    # the markdown's image links are relative and exist
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links and all(not link.startswith("/") and (out / link).is_file() for link in links)
    assert str(tmp_path) not in md and str(tmp_path) not in html  # paths relative to the output directory
    assert "berts evaluate zh/ner/pretrained/best zh/data/ner/test.conll --json" in md


def test_cpu_has_amx_reads_the_flags(tmp_path):
    from berts.train.engine import cpu_has_amx

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_int8\n")
    assert cpu_has_amx(info) is False  # AVX-512 bf16 and AMX int8 alone are not AMX bf16
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    assert cpu_has_amx(info) is True
    assert cpu_has_amx(tmp_path / "missing") is False


def test_en_precision(monkeypatch, tmp_path):
    import berts.train.engine as engine

    for amx, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(engine, "cpu_has_amx", lambda amx=amx: amx)
        assert en_precision(DemoSettings()) == want
        assert en_precision(DemoSettings(en_precision="fp32")) == "fp32"
        assert en_precision(DemoSettings(en_precision="bf16")) == "bf16"
    with pytest.raises(UserError, match="en_precision 'fp8': auto, fp32 or bf16"):
        en_precision(DemoSettings(en_precision="fp8"))
    with pytest.raises(UserError, match="en_precision 'fp8'"):  # before any step runs
        run_demo(tmp_path / "out", DemoSettings(en_precision="fp8"), zh=None, en=None)
    assert not (tmp_path / "out").exists()
