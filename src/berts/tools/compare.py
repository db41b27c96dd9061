"""`berts compare`: several fine-tuned classifiers on one labelled file, side by side.

For each model directory: parameters (shared ones once: ALBERT's sharing shows here), FLOPs per
token (counted from the config on the file's real lengths: sharing does not change them), CPU
latency at batch 1 and batch 32 (every model on the same examples, same threads, the models
alternated round by round, medians), accuracy (or the regression metric), and each as a ratio to
the first model (the teacher). Writes a markdown table, a JSON file and a PNG plot of accuracy
against batch-32 latency::

    rows = compare(["runs/teacher/best", "runs/distil/best", "runs/albert/best"], "test.tsv")
    print(markdown(rows))
    rows = compare(["runs/teacher/best", "runs/exits/final"], "test.tsv", speeds=[0.3, 0.5], int8=True)

More rows per directory: an early-exit directory (berts finetune --early-exit) with ``speeds``
gives one row per speed (its accuracy, average layers, FLOPs of the layers and students each
example ran, latency); ``int8`` adds, after each fp32 row, the same directory in dynamic int8
(same parameter count and FLOPs, ``precision`` "int8", ``agreement`` with fp32's argmax). A
multiple-choice or multi-label directory (a task with its own serving) gives its rows through its
module's ``compare_entries``: accuracy / micro F1 as the score, agreement of its choices / label
decisions for int8; its FLOPs per token count each choice as a sequence. Every
row's ``size_mb`` is its weights as torch.save writes them (int8: the packed int8 weights), so
the saving is measured, not assumed.

FLOP counts: berts.model.flops (shared with the compression methods).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from berts.errors import UserError
from berts.model.flops import encoder_flops, flops_per_token, layer_flops, student_flops  # noqa: F401
from berts.commands.common import data_settings
from berts.commands.common import task_server
from berts.compress.early_exit.exits import BertForSequenceClassificationWithExits, exit_flops
from berts.compress.early_exit.exits import _Subset
from berts.compress.transforms import CALIBRATION_TEXTS, quantize_int8
from berts.data.labels import drop_unknown_labels
from berts.data.qa import read_qa
from berts.data.tables import check_max_length, read_table
from berts.data.tagging import read_tagged
from berts.embed.engines import load_engine
from berts.embed.metrics import doc_text, evaluate_retrieval, read_beir
from berts.metrics import compute_metrics
from berts.serve.load import served_by
from berts.util.progress import progress as progress_bar
from berts.serve.predict import Classifier, agreement
from berts.serve.qa import QuestionAnswerer
from berts.serve.tagger import Tagger
from berts.serve.tagger import is_tagger
from berts.tasks.qa import QADataset, detect_lang, score
from berts.tasks.registry import load
from berts.util.fileio import atomic_write_file


def _timed(clf, ds, batch_size: int) -> float:
    t0 = time.perf_counter()
    clf.logits(ds, batch_size)
    return time.perf_counter() - t0


def compare(model_dirs, eval_file, *, latency_examples: int = 64, repeats: int = 5, threads: int | None = None,
            speed=None, speeds=None, int8: bool = False, device: str = "cpu", data_args=None,
            progress: bool = False) -> list[dict]:
    """Rows of the comparison (see the module docstring), in the order of ``model_dirs``:

    * a directory without students: one row (fp32), then, with ``int8``, a row of the same
      directory in dynamic int8 (``Classifier.from_pretrained(dir, int8=True)``);
    * an early-exit directory (berts finetune --early-exit) with ``speed`` (a float or a list) or
      ``speeds`` (a list): one row per speed, entropy rule (no int8 row: quantized exits are not
      what is being compared); without a speed it is run to the end, as a directory without
      students (and gets its int8 row).

    Each row carries ``precision`` ("fp32" / "int8") and ``size_mb``; an int8 row carries
    ``agreement`` with its fp32 row (share of equal argmax; regression: ``max_abs_diff``).
    ``progress``: a bar on stderr, one tick per row measured."""
    import torch

    global _progress
    _progress = bool(progress)

    if not model_dirs:
        raise UserError("compare needs at least one model directory")
    speeds = check_speeds(speed, speeds)
    if int8 and str(device) != "cpu":
        raise UserError(f"--int8 runs on the CPU (torch's dynamic int8 kernels); got --device {device}")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if Path(eval_file).is_dir():  # a BEIR folder: sentence encoders, scored by retrieval
            return _compare_encoders(model_dirs, eval_file, latency_examples, repeats, int8)

        if is_tagger(model_dirs[0]):  # token classifiers (NER): entity f1 on a tagged file
            if speeds is not None:
                raise UserError("early exit (--speed) is for classification directories; taggers have none")
            return _compare_taggers(model_dirs, eval_file, latency_examples, repeats, int8, device)
        return _compare(model_dirs, eval_file, latency_examples, repeats, speeds, int8, device, data_args)
    finally:
        torch.set_num_threads(before)


_progress = False  # compare()'s ``progress``, read by the row loops below


def rows_bar(entries):
    """The rows to measure, ticking a progress bar when compare() was asked for one."""
    return progress_bar(entries, total=len(entries), desc="compare", unit="row", enabled=_progress)


def check_speeds(speed=None, speeds=None) -> list[float] | None:
    """``speed`` (a float, a list, or the flag's text "0.3,0.5") and/or ``speeds`` -> one list of
    floats in [0, 1] (None: no early exit). Anything else is a one-line UserError naming --speed."""
    values = []
    for given in (speed, speeds):
        if given is None:
            continue
        if isinstance(given, str):
            given = [x.strip() for x in given.split(",")]
        elif not isinstance(given, (list, tuple)):
            given = [given]
        for x in given:
            try:
                if isinstance(x, bool):
                    raise ValueError
                v = float(x)
            except (TypeError, ValueError):
                raise UserError(f"--speed takes numbers between 0 and 1, comma-separated (0.3,0.5,0.7); "
                                f"got {x!r}") from None
            if not 0.0 <= v <= 1.0:  # (NaN fails this too)
                raise UserError(f"--speed values must be between 0 and 1 (normalised entropy); got {x!r}")
            values.append(v)
    if (speed is not None or speeds is not None) and not values:
        raise UserError("--speed needs at least one value between 0 and 1 (e.g. 0.3,0.5,0.7)")
    return values or None


def state_size_mb(model) -> float:
    """The model's weights as they are in memory, in MB (10^6 bytes): its state_dict serialized by
    torch.save. For a dynamic-int8 model that is the packed int8 weights (+ their scales) and the
    fp32 rest; shared tensors (ALBERT) are stored once, as torch.save stores a storage once."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes / 1e6


def with_latency(rows: list[dict], times: list[dict], counts: list[int]) -> list[dict]:
    """Each row's latency columns from its timed rounds (``times[j]``: {batch size: [seconds per
    round]}, over ``counts[j]`` examples; medians), and its ratios to the first row."""
    for row, t, n in zip(rows, times, counts):
        row["examples_timed"] = n
        row["latency_b1_ms"] = 1000 * float(np.median(t[1])) / n
        row["latency_b32_ms"] = 1000 * float(np.median(t[32])) / -(-n // 32)
        row["throughput_b32"] = n / float(np.median(t[32]))  # examples / s
    first = rows[0]
    for row in rows:
        row["ratios"] = {
            "params": row["params"] / first["params"],
            "flops_per_token": row["flops_per_token"] / first["flops_per_token"],
            "speedup_b1": first["latency_b1_ms"] / row["latency_b1_ms"],
            "speedup_b32": row["throughput_b32"] / first["throughput_b32"],
            "score": row["score"] / first["score"] if first["score"] else float("nan"),
        }
    return rows


def _compare(model_dirs, eval_file, latency_examples, repeats, speeds, int8, device, data_args) -> list[dict]:

    qa = [served_by(d) == "berts.serve.qa" for d in model_dirs]
    if any(qa):
        if not all(qa):
            raise UserError("compare: question-answering directories are compared with each other only "
                            f"({', '.join(str(d) for d, q in zip(model_dirs, qa) if not q)} is not one)")
        if speeds is not None:
            raise UserError("compare: early exit (--speed) is for classifiers; not for question answering")
        return _compare_qa(model_dirs, eval_file, latency_examples, repeats, int8, device)

    # entries: one per row: (directory, clf, ds, task, exit speed or None, precision); the rows of
    # one directory share its eval dataset (and, for the speeds, its Classifier)
    entries = []
    for directory in model_dirs:
        server = task_server(directory)
        if server is not None:  # a task with its own serving (multiple choice, multi-label): its predictor
            make = load(f"{server}:compare_entries")
            entries += [(directory, p, ds, "task", None, precision)
                        for p, ds, precision in make(directory, eval_file, _data_settings, data_args,
                                                     int8=int8, device=device)]
            continue
        clf = Classifier.from_pretrained(directory, device=device)
        exits = isinstance(clf.model, BertForSequenceClassificationWithExits) and speeds is not None
        d = _data_settings(clf.settings, data_args)
        d.max_length = check_max_length(d.max_length, clf.model.config.max_position_embeddings)
        task = "regression" if clf.regression else "classification"
        examples, report = read_table(eval_file, d, task=task)
        examples = drop_unknown_labels(examples, clf.label_map, report, d.skip_bad_rows)
        ds = clf.dataset(examples, d.max_length)
        if exits:
            entries += [(directory, clf, ds, task, s, "fp32") for s in speeds]
        else:
            entries.append((directory, clf, ds, task, None, "fp32"))
            if int8:
                q = Classifier.from_pretrained(directory, int8=int8, device=device,
                                               calibration=examples[:CALIBRATION_TEXTS])
                entries.append((directory, q, ds, task, None, "int8"))
    rows = []
    reference = {}  # directory -> (its fp32 row, its fp32 logits): what its int8 row is measured against
    for directory, clf, ds, task, s, precision in rows_bar(entries):
        _use(clf, s)
        logits = clf.logits(ds, 64)
        if task == "task":  # the task's own metric: (name, value)
            metric, value = clf.compare_score(logits, ds)
            metrics = {metric: value}
        else:
            num_labels = 1 if clf.regression else len(clf.label_map)
            metrics = compute_metrics(task, logits[:, 0] if clf.regression else logits, ds.labels, num_labels)
            metric = "pearson" if clf.regression else "accuracy"
        config = clf.model.config
        row = {"model": str(directory), "format": "albert" if config.embedding_size is not None else "bert",
               "layers": config.num_hidden_layers, "hidden": config.hidden_size,
               "share_layers": config.share_layers, "params": int(clf.model.num_parameters()),
               "flops_per_token": flops_per_token(config, ds.lengths),
               "metric": metric, "precision": precision,
               "size_mb": state_size_mb(clf.model)}
        row["score"] = float(metrics[row["metric"]])
        if s is not None:
            tokens = max(int(ds.lengths.sum()), 1)
            row["flops_per_token"] = exit_flops(config, ds.lengths, clf.exit_layers, "entropy", s) * len(ds) / tokens
            row["speed"] = s
            row["avg_layers"] = float(np.mean(clf.exit_layers))
        if precision == "int8":
            # int8 Linears are not nn.Parameters any more: the count (and the FLOPs) are fp32's
            fp32_row, fp32_logits = reference[str(directory)]
            row["params"] = fp32_row["params"]
            if task == "task":  # the task's own agreement (chosen index, label decisions)
                row.update(clf.compare_agreement(fp32_logits, logits))
            elif clf.regression:
                row["max_abs_diff"] = agreement(fp32_logits, logits, True)["max_abs_diff"]
            else:
                a = agreement(fp32_logits, logits, False)
                row["agreement"], row["max_prob_diff"] = a["label_agreement"], a["max_prob_diff"]
        elif s is None:
            reference[str(directory)] = (row, logits)
        rows.append(row)
    # latency: the same first examples for every row; rounds alternate the rows; medians

    times = [{1: [], 32: []} for _ in entries]
    # one untimed round first: the first call at a new batch shape pays for allocation and
    # kernel selection, which would otherwise land on whichever model is timed first
    for r in range(repeats + 1):
        for j, (_, clf, ds, _, s, _) in enumerate(entries):
            _use(clf, s)
            sub = _Subset(ds, np.arange(min(latency_examples, len(ds))))
            for bs in (1, 32):
                seconds = _timed(clf, sub if r else _Subset(ds, np.arange(min(8, len(ds)))), bs)
                if r:
                    times[j][bs].append(seconds)
    for _, clf, _, _, _, _ in entries:
        _use(clf, None)
    return with_latency(rows, times, [min(latency_examples, len(e[2])) for e in entries])


def _compare_qa(model_dirs, eval_file, latency_examples, repeats, int8, device) -> list[dict]:
    """The rows of question-answering directories on a QA file (berts.data.qa): the same columns,
    ``metric`` f1 (SQuAD's, or CMRC's for Chinese; v2.0 at each model's saved threshold), latency of
    the whole predict path (windows, model, postprocessing) per question; an int8 row's
    ``agreement`` is the share of questions answered with the same text as its fp32 row."""

    examples = read_qa(eval_file)
    if not examples:
        raise UserError(f"{eval_file}: no questions")
    entries = []
    for directory in model_dirs:
        entries.append((directory, QuestionAnswerer.from_pretrained(directory, device=device), "fp32"))
        if int8:

            q = QuestionAnswerer.from_pretrained(directory, device=device)
            quantize_int8(q.model, int8)
            entries.append((directory, q, "int8"))
    rows, reference = [], {}
    for directory, qa, precision in rows_bar(entries):
        s = qa.settings
        lang = s["lang"] if s["lang"] != "auto" else detect_lang(examples)
        v2 = bool(s["version_2"])
        results = qa.answer_examples(examples, 64, null_threshold=float("inf") if v2 else s["null_threshold"])
        metrics = score(examples, results, lang=lang, version_2=v2, null_threshold=s["null_threshold"] if v2 else None)
        answers = [("" if v2 and r["null_score_diff"] > s["null_threshold"] else r["text"]) for r in results]
        ds = QADataset(examples, qa.tokenizer, max_length=s["max_length"], doc_stride=s["doc_stride"],
                       max_question_tokens=s["max_question_tokens"])
        config = qa.model.config
        row = {"model": str(directory), "format": "albert" if config.embedding_size is not None else "bert",
               "layers": config.num_hidden_layers, "hidden": config.hidden_size,
               "share_layers": config.share_layers, "params": int(qa.model.num_parameters()),
               "flops_per_token": flops_per_token(config, ds.lengths), "metric": "f1", "precision": precision,
               "size_mb": state_size_mb(qa.model), "score": float(metrics["f1"]),
               "exact_match": float(metrics["exact_match"])}
        if precision == "int8":
            fp32_row, fp32_answers = reference[str(directory)]
            row["params"] = fp32_row["params"]
            row["agreement"] = float(np.mean([a == b for a, b in zip(answers, fp32_answers)]))
        else:
            reference[str(directory)] = (row, answers)
        rows.append(row)
    n = min(latency_examples, len(examples))
    times = [{1: [], 32: []} for _ in entries]
    for r in range(repeats + 1):  # round 0 untimed (first-call allocations); rows alternate
        for j, (_, qa, _) in enumerate(entries):
            for bs in (1, 32):
                part = examples[:n] if r else examples[:min(8, n)]
                t0 = time.perf_counter()
                for lo in range(0, len(part), bs):
                    qa.answer_examples(part[lo:lo + bs], bs)
                if r:
                    times[j][bs].append(time.perf_counter() - t0)
    return with_latency(rows, times, [n] * len(rows))


def _compare_taggers(model_dirs, eval_file, latency_examples, repeats, int8, device) -> list[dict]:
    """``_compare`` for token-classification directories: the score is entity f1 (seqeval's
    default mode) on a tagged file (CoNLL / JSONL), latency per sentence; an int8 row carries
    ``agreement``, the share of words whose tag equals fp32's."""

    entries = []
    for directory in model_dirs:
        tagger = Tagger.from_pretrained(directory, device=device)
        sentences = read_tagged(eval_file, tag_column=int(tagger.tagging.get("tag_column", -1)))
        entries.append((directory, tagger, sentences, "fp32"))
        if int8:
            entries.append((directory, Tagger.from_pretrained(directory, int8=int8, device=device), sentences, "int8"))
    rows, reference = [], {}
    for directory, tagger, sentences, precision in rows_bar(entries):
        report, predicted = tagger.evaluate(sentences)
        config = tagger.model.config
        lengths = tagger.dataset([s.tokens for s in sentences]).lengths
        row = {"model": str(directory), "format": "albert" if config.embedding_size is not None else "bert",
               "layers": config.num_hidden_layers, "hidden": config.hidden_size, "share_layers": config.share_layers,
               "params": int(tagger.model.num_parameters()), "flops_per_token": flops_per_token(config, lengths),
               "metric": "f1", "precision": precision, "size_mb": state_size_mb(tagger.model),
               "score": float(report["f1"]), "crf": tagger.model.crf is not None}
        if precision == "int8":
            fp32_row, fp32_tags = reference[str(directory)]
            row["params"] = fp32_row["params"]
            pairs = [(a == b) for x, y in zip(fp32_tags, predicted) for a, b in zip(x, y)]
            row["agreement"] = float(np.mean(pairs)) if pairs else 1.0
        else:
            reference[str(directory)] = (row, predicted)
        rows.append(row)
    times = [{1: [], 32: []} for _ in entries]
    for r in range(repeats + 1):  # the first round untimed (allocation, kernel choice); rows alternated
        for j, (_, tagger, sentences, _) in enumerate(entries):
            words = [s.tokens for s in sentences[:latency_examples if r else 8]]
            for bs in (1, 32):
                t0 = time.perf_counter()
                tagger.tag(words, bs)
                if r:
                    times[j][bs].append(time.perf_counter() - t0)
    return with_latency(rows, times, [min(latency_examples, len(e[2])) for e in entries])


def _use(clf, speed) -> None:
    """Early exit at ``speed`` (entropy rule) for this row, or off (None)."""
    if speed is None:
        if clf.exit is not None:
            clf.early_exit(None)
    else:
        clf.early_exit("entropy", speed=speed)


def _data_settings(settings: dict, data_args):
    from types import SimpleNamespace

    args = data_args or SimpleNamespace(text_column=None, pair_column=None, label_column=None, format=None,
                                        header=None, skip_bad_rows=None, max_length=None)
    return data_settings(args, settings, labels=True)


# ----------------------------------------------------------------------------- reports
def _compare_encoders(model_dirs, folder, latency_examples, repeats, int8) -> list[dict]:
    """Sentence encoders (berts.embed.Encoder directories, e.g. a teacher and its `distill --method
    embedding` student) on a BEIR folder (qrels/test.tsv, else dev.tsv): nDCG@10 (and recall@10)
    of the cosine top 100, parameters, size, FLOPs per token, and the embedding speed of the
    first ``latency_examples`` queries at batch 1 and 32 (medians of ``repeats`` alternated rounds)."""

    split = "test" if (Path(folder) / "qrels" / "test.tsv").is_file() else "dev"
    corpus, queries, qrels = read_beir(folder, split)
    sample = [queries[q] for q in list(qrels)[:latency_examples]]
    entries = [(d, "fp32", load_engine(d)) for d in model_dirs]
    if int8:
        entries += [(d, "int8", load_engine(d, int8=int8, calibration=[doc_text(c) for c in list(corpus.values())[:CALIBRATION_TEXTS]])) for d in model_dirs]
    rows = []
    for directory, precision, enc in rows_bar(entries):
        r = evaluate_retrieval(lambda t: enc.encode(t, batch_size=32), corpus, queries, qrels)
        config = enc.model.config
        lengths = np.array([len(x) for x in enc.tokenize(sample)])
        fp32 = next((x for x in rows if x["model"] == str(directory)), None)
        rows.append({"model": str(directory), "format": "bert", "layers": config.num_hidden_layers,
                     "hidden": config.hidden_size, "share_layers": config.share_layers,
                     "params": fp32["params"] if fp32 else int(enc.model.num_parameters()),
                     "flops_per_token": flops_per_token(config, lengths), "metric": "ndcg@10",
                     "score": float(r["ndcg@10"]), "recall@10": float(r["recall@10"]), "precision": precision,
                     "size_mb": state_size_mb(enc.model)})
    times = [{1: [], 32: []} for _ in entries]
    for rnd in range(repeats + 1):  # round 0 untimed (first-call allocation)
        for j in (range(len(entries)) if rnd % 2 else reversed(range(len(entries)))):  # alternated
            enc = entries[j][2]
            for bs in (1, 32):
                t = time.perf_counter()
                enc.encode(sample, batch_size=bs)
                if rnd:
                    times[j][bs].append(time.perf_counter() - t)
    n = len(sample)
    for j, row in enumerate(rows):
        row["examples_timed"] = n
        row["latency_b1_ms"] = 1000 * float(np.median(times[j][1])) / n
        row["throughput_b32"] = n / float(np.median(times[j][32]))
    first = rows[0]
    for row in rows:
        row["ratios"] = {"params": row["params"] / first["params"],
                         "flops_per_token": row["flops_per_token"] / first["flops_per_token"],
                         "speedup_b1": first["latency_b1_ms"] / row["latency_b1_ms"],
                         "speedup_b32": row["throughput_b32"] / first["throughput_b32"],
                         "score": row["score"] / first["score"] if first["score"] else float("nan")}
    return rows


def row_name(r: dict) -> str:
    """The row's name in the table: the directory, + " (speed S, L.LL layers)" or " (int8)"."""
    if "speed" in r:
        return f"{r['model']} (speed {r['speed']:g}, {r['avg_layers']:.2f} layers)"
    return r["model"] + (" (int8)" if r.get("precision") == "int8" else "")


def short_name(r: dict) -> str:
    """The plot's label: the directory's last meaningful part (runs/distil/best -> distil/best),
    + " int8" or " S=0.5"."""
    p = Path(r["model"])
    name = p.name if p.name not in ("best", "final") else "/".join(p.parts[-2:])
    if "speed" in r:
        return f"{name} S={r['speed']:g}"
    return name + (" int8" if r.get("precision") == "int8" else "")


def markdown(rows: list[dict]) -> str:
    """The comparison as a markdown table (ratios to the first row in brackets)."""
    metric = rows[0]["metric"]
    out = [f"| model | params | MB | GFLOPs / token | batch 1 ms | batch 32 examples/s | {metric} |",
           "|---|---|---|---|---|---|---|"]
    first = rows[0]
    for r in rows:
        q = r["ratios"]
        size = r.get("size_mb")
        mb = "-" if size is None else (f"{size:.2f} ({size / first['size_mb']:.2f}x)" if first.get("size_mb")
                                       else f"{size:.2f}")
        out.append(f"| {row_name(r)} | {r['params']:,} ({q['params']:.2f}x) | {mb} | {r['flops_per_token'] / 1e9:.4f} "
                   f"({q['flops_per_token']:.2f}x) | {r['latency_b1_ms']:.2f} ({q['speedup_b1']:.2f}x) | "
                   f"{r['throughput_b32']:.1f} ({q['speedup_b32']:.2f}x) | {r['score']:.4f} ({q['score']:.3f}) |")
    return "\n".join(out)


def plot(rows: list[dict], path) -> None:
    """PNG: the metric against batch-32 latency per example, one labelled point per row
    (``short_name``: an int8 row and each speed of an early-exit directory are points of their own)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        x = 1000.0 / r["throughput_b32"]
        ax.scatter([x], [r["score"]])
        ax.annotate(short_name(r), (x, r["score"]), fontsize=8, textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("CPU latency, batch 32 (ms per example)")
    ax.set_ylabel(rows[0]["metric"])
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(rows: list[dict], out_dir) -> dict[str, Path]:
    """compare.md, compare.json and compare.png into ``out_dir`` (created)."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "compare.md", "json": out / "compare.json", "png": out / "compare.png"}
    atomic_write_file(paths["md"], markdown(rows) + "\n")
    atomic_write_file(paths["json"], json.dumps(rows, indent=2) + "\n")
    plot(rows, paths["png"])
    return paths
