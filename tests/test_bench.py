"""`berts bench` machinery, smoke-tested on the tiny preset (numbers are real, not timing goals)."""
import json
import math

import numpy as np
import pytest
import torch

from berts.tools.bench import BenchOptions, BatchMaker, format_table, run_bench, useful_flops
from berts.cli import main
from berts.model.config import preset
from berts.errors import UserError


@pytest.mark.slow
def test_bench_cli_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--preset", "tiny", "--seq", "32", "--batch", "4", "--steps", "1", "--warmup", "1",
               "--threads", "1", "--json", str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    for word in ("matmul ceiling", "pretrain", "finetune", "infer", "tokens/s", "tokenizer", "berts prepare"):
        assert word in table
    result = json.loads(out.read_text())
    assert result["threads"] == 1 and result["ceiling"]["gflops"] > 0
    rows = result["rows"]
    assert {(r["task"], r["regime"], r["impl"]) for r in rows} == {
        (t, g, i) for t in ("pretrain", "finetune", "infer") for g in ("fixed", "real", "prepared")
        for i in ("berts", "transformers") if g != "prepared" or t == "pretrain"}
    for r in rows:
        for key in ("tokens_per_s", "step_ms", "useful_gflops", "ceiling_share", "peak_mib"):
            assert math.isfinite(r[key]) and r[key] > 0, (r, key)
        assert (r["ratio"] is not None) == (r["impl"] == "berts")
        assert r["padding"] == 0 if r["regime"] == "fixed" else 0 <= r["padding"] < 1
    assert next(r for r in rows if r["regime"] == "prepared")["padding"] < 0.5  # BERT's instances fill the rows
    assert result["tokenizer"]["berts"]["tokens_per_s"] > 0
    assert result["tokenizer"]["transformers"]["tokens_per_s"] > 0
    assert result["prepare"].get("mb_per_s", 0) > 0, result["prepare"]
    assert result["collate"]["ms_per_batch"] > 0 and "collate" in table
    assert format_table(result).splitlines()[0] == table.splitlines()[0]


@pytest.mark.slow
def test_bench_berts_alone_on_a_given_corpus(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("one short line here\nand a second, longer line of text to tokenize\n\n"
                      "another document starts here\nwith more words in it\n" * 20)
    result = run_bench(BenchOptions(preset="tiny", seq=16, batch=2, steps=1, warmup=0, corpus=str(corpus),
                                    only=("finetune",), regimes=("real",), transformers=False,
                                    fast_path={"unpad": False, "pack": False, "sparse_output": False,
                                               "fast_dropout": False}))
    assert "none (plain)" in format_table(result)
    (row,) = result["rows"]
    assert row["impl"] == "berts" and row["ratio"] is None and row["tokens_per_s"] > 0


def test_batches_are_the_same_for_both_and_padded_per_batch():
    cfg = preset("tiny")
    paragraphs = [[torch.arange(5, 5 + n).numpy() for n in (3, 40, 7, 12)]]
    maker = BatchMaker(BenchOptions(seq=32, batch=4), cfg, paragraphs)
    b = maker.make("pretrain", "real")
    ours, theirs, meta = b["berts"], b["transformers"], b["meta"]
    assert ours["input_ids"].shape[1] % 8 == 0 and ours["input_ids"].shape[1] <= 32
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    flat = theirs["labels"].reshape(-1)
    assert torch.equal(ours["mlm_positions"], (flat != -100).nonzero().squeeze(1))
    assert torch.equal(ours["mlm_labels"], flat[flat != -100])
    assert meta["masked"] == len(ours["mlm_positions"]) and meta["tokens"] == int(ours["attention_mask"].sum())
    fixed = maker.make("finetune", "fixed")["berts"]
    assert fixed["input_ids"].shape == (4, 32) and bool(fixed["attention_mask"].all())


def test_pretraining_batches_are_the_collators_own():
    """The bench feeds what the trainer's collator makes (its masking, padding, sparse targets),
    pairs truncated by berts prepare's truncate_pair: the same arrays, recomputed here."""
    import copy

    import numpy as np

    from berts.data.collate import PretrainingCollator
    from berts.model.padding import pad_width

    cfg = preset("tiny")
    paragraphs = [[np.arange(5, 5 + n) for n in (3, 40, 7, 12, 25)], [np.arange(100, 100 + n) for n in (30, 9)]]
    maker = BatchMaker(BenchOptions(seq=30, batch=8), cfg, paragraphs)
    assert isinstance(maker.collator, PretrainingCollator) and maker.collator.max_seq_length == 30
    calls = []
    real_call = maker.collator.__call__

    def spy(examples, rng):
        calls.append((examples, copy.deepcopy(rng)))
        return real_call(examples, rng)

    maker.collator = type("Spy", (), {"__call__": staticmethod(spy)})()
    b = maker.make("pretrain", "real")
    (examples, rng), = calls
    again = real_call(examples, rng)
    for key in ("input_ids", "attention_mask", "token_type_ids", "mlm_positions", "mlm_labels", "next_sentence_label"):
        assert torch.equal(b["berts"][key], again[key]), key
    lengths = [len(e["input_ids"]) for e in examples]
    assert max(lengths) <= 30 and b["berts"]["input_ids"].shape == (8, pad_width(max(lengths), 8, cap=30))
    for e in examples:  # [CLS] A [SEP] B [SEP], both segments kept
        ids = list(e["input_ids"])
        assert ids[0] == 2 and ids[-1] == 3 and ids[e["b_start"] - 1] == 3 and e["b_start"] < len(ids) - 1
    masked = len(b["berts"]["mlm_positions"])
    assert b["meta"]["masked"] == masked and 0 < masked <= 8 * 5  # per-row cap ceil(0.15 * 30) = 5
    assert torch.equal(b["transformers"]["labels"].reshape(-1)[b["berts"]["mlm_positions"]], b["berts"]["mlm_labels"])


def test_useful_flops_counts_the_masked_positions_only():
    cfg = preset("mini")
    base = useful_flops(cfg, [128] * 32, 0, "pretrain")
    more = useful_flops(cfg, [128] * 32, 600, "pretrain")
    assert more - base == 3 * 2 * 600 * (256 * 256 + 256 * cfg.vocab_size)
    assert useful_flops(cfg, [10] * 4, 0, "infer") * 3 == useful_flops(cfg, [10] * 4, 0, "finetune")


@pytest.mark.parametrize("args,match", [
    (["--only", "pretrain,warp"], "unknown part"),
    (["--lengths", "odd"], "unknown length regime"),
    (["--device", "cuda"], "CUDA is not available") if not torch.cuda.is_available() else (["--steps", "0"], ">= 1"),
    (["--corpus", "/nonexistent/c.txt", "--only", "finetune"], "no such corpus"),
    (["--seq", "4096"], "longer than"),
    (["--fast-paths", "unpad,warp"], "unknown warp"),
])
def test_bench_user_errors(args, match, capsys):
    assert main(["bench", "--preset", "tiny", *args]) == 2
    assert match in capsys.readouterr().err


def test_bench_options_reject_unknown_parts_directly():
    with pytest.raises(UserError, match="unknown part"):
        run_bench(BenchOptions(only=("nope",)))


# ------------------------------------------------------------------------- --engines
@pytest.mark.onnx
def test_engines_side_by_side_with_accuracy(tmp_path, capsys):
    """Every engine on the same batches: the rows, the ratio to berts fp32, and on a labelled file
    each engine's accuracy, berts' equal to what the inference API gives."""
    pytest.importorskip("transformers")
    from test_inference import make_classifier, sentences

    from berts.tools.bench.engines import ENGINES, available
    from berts.serve.predict import Classifier

    model = make_classifier(tmp_path / "clf")
    texts = sentences(50, seed=31, lo=1, hi=60)
    data = tmp_path / "test.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{'pos' if i % 2 else 'neg'}\n" for i, t in enumerate(texts)))
    out = tmp_path / "engines.json"
    assert main(["bench", "--only", "infer", "--engines", ",".join(ENGINES), "--model", str(model), "--eval-file",
                 str(data), "--steps", "2", "--warmup", "1", "--threads", "1", "--batch", "4", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    result = json.loads(out.read_text())
    here = [e for e in ENGINES if available(e) is None]
    assert {(r["engine"], r["batch"]) for r in result["rows"]} == {(e, b) for e in here for b in (1, 4)}
    assert set(result["skipped"]) == set(ENGINES) - set(here)
    for r in result["rows"]:
        assert r["tokens_per_s"] > 0 and r["latency_ms"] > 0 and math.isfinite(r["vs_berts"])
        assert r["vs_berts"] == 1.0 if r["engine"] == "berts" else r["vs_berts"] > 0
    acc = result["accuracy"]
    preds = Classifier.from_pretrained(model).predict(texts)
    assert acc["berts"]["accuracy"] == pytest.approx(np.mean([p.label == ("pos" if i % 2 else "neg")
                                                              for i, p in enumerate(preds)]))
    assert acc["berts"]["agreement"] == 1.0 and acc["berts"]["examples"] == 50
    for name in ("transformers", "onnxruntime"):  # fp32 engines: the same labels (ties aside)
        if name in acc:
            assert acc[name]["agreement"] >= 0.98
    assert "vs berts" in table and "agrees with berts fp32" in table


@pytest.mark.parametrize("args, match", [
    (["--engines", "berts", "--only", "infer,finetune"], "use it with --only infer"),
    (["--engines", "berts,nope", "--only", "infer"], "--engines: unknown nope"),
    (["--model", "x"], "--model and --eval-file go with --engines"),
    (["--engines", "berts", "--only", "infer", "--eval-file", "x.tsv"], "--eval-file needs --model DIR"),
])
def test_engines_user_errors(args, match, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err


@pytest.mark.slow  # ~30 s on 2 cores: most of it the matmul ceiling's GEMMs
def test_bench_long_rows_with_a_modern_preset(tmp_path):
    """Long-sequence rows: `berts bench --preset tiny-modern --seq 1024` (RoPE, windows) against
    transformers' ModernBert on the same weights, 1,024 tokens a row."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--preset", "tiny-modern", "--seq", "1024", "--batch", "1", "--steps", "1",
                 "--warmup", "0", "--threads", "1", "--only", "infer", "--lengths", "fixed", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["seq"] == 1024
    rows = {r["impl"]: r for r in result["rows"]}
    assert set(rows) == {"berts", "transformers"}
    for r in rows.values():
        assert r["padding"] == 0 and r["tokens_per_s"] > 0 and r["peak_mib"] > 0
