"""`berts bench`: berts and transformers side by side, in one process, on the same batches.

For each task (a pretraining step: MLM + NSP, 15% masked; a fine-tuning step: sequence
classification; inference: no grad) and each length regime (``fixed``: every row ``seq``
tokens; ``real``: paragraphs of a real corpus (pairs of them for pretraining), padded per batch
to a multiple of 8; ``prepared``, pretraining only: instances `berts prepare` made from the
corpus, batched by our PretrainingDataset/collator as the trainer gets them), both
implementations get the same batches, config, weights (transformers loads
the directory berts saved), batches, optimizer (AdamW) and thread count. Steps alternate
between the two (the order flips every round); the first ``warmup`` rounds are dropped and
the median of the rest is reported:

* tokens/s: real (non-padding) tokens per second; the ratio berts / transformers is the median
  over rounds of the two step times on the same batch (robust to load from other processes);
* useful GFLOP/s: the FLOPs of the work that matters (encoder matmuls and attention on the
  real tokens, MLM head on the masked positions only, x3 for a training step) per second,
  and that as a share of the matmul ceiling measured in-process (large GEMM, median of 10,
  measured before the first task and after each one; the best counts);
* peak memory of one step: live tensors before it (weights, optimizer state, batch) plus the
  peak of what it allocates (CPU: from the profiler's allocation events; CUDA: the allocator).

It also times `berts prepare` on the corpus (MB/s) and tokenizer throughput (berts' tokenizer
and transformers' fast tokenizer loaded from the same directory).

The default corpus needs no download: the Python reference manual's topic texts that ship
with CPython (``pydoc_data.topics``), one topic a document, one paragraph a line.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from berts.config import BertConfig, preset
from berts.errors import UserError

TASKS = ("pretrain", "finetune", "infer")
EXTRAS = ("prepare", "tokenizer")
REGIMES = ("fixed", "real", "prepared")
PAD, CLS, SEP, MASK, FIRST_ID = 0, 2, 3, 4, 5  # berts' tokenizer: [PAD] [UNK] [CLS] [SEP] [MASK]


@dataclass
class BenchOptions:
    preset: str = "mini"
    seq: int = 128
    batch: int = 32
    steps: int = 5
    warmup: int = 2
    threads: int | None = None
    device: str = "cpu"
    corpus: str | None = None
    only: tuple[str, ...] = TASKS + EXTRAS
    regimes: tuple[str, ...] = REGIMES
    compile: bool = False
    transformers: bool = True  # compare with transformers when it is installed
    fast_path: dict = field(default_factory=lambda: {"unpad": True, "pack": True, "sparse_output": True,
                                                     "fast_dropout": True})
    mask_prob: float = 0.15
    seed: int = 0


# ------------------------------------------------------------------------- corpus
def default_corpus(path: Path) -> Path:
    """Write the Python reference manual's topics (shipped with CPython) as a plain corpus."""
    from pydoc_data.topics import topics

    docs = []
    for key in sorted(topics):
        paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", topics[key])]
        paras = [p for p in paras if len(p.split()) >= 3]
        if paras:
            docs.append("\n".join(paras))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def corpus_documents(path: Path) -> list[list[str]]:
    """Documents (blank-line separated) of paragraphs (one a line)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the corpus ({exc.strerror})") from None
    docs = [[line.strip() for line in block.splitlines() if line.strip()] for block in re.split(r"\n\s*\n", text)]
    docs = [d for d in docs if d]
    if sum(len(d) for d in docs) < 2:
        raise UserError(f"{path}: the corpus needs at least two non-empty lines")
    return docs


# ------------------------------------------------------------------------- batches
def _pad(rows: list[tuple[np.ndarray, np.ndarray]], seq: int) -> dict[str, np.ndarray]:
    """Right-pad rows of (ids, type ids) to the longest, rounded up to a multiple of 8 (<= seq)."""
    width = min(seq, -(-max(len(r[0]) for r in rows) // 8) * 8)
    ids = np.full((len(rows), width), PAD, dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for i, (r_ids, r_types) in enumerate(rows):
        ids[i, :len(r_ids)], types[i, :len(r_ids)], mask[i, :len(r_ids)] = r_ids, r_types, 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def _truncate_pair(a: np.ndarray, b: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    while len(a) + len(b) > budget:  # longest first, as BERT
        if len(a) >= len(b):
            a = a[:-1]
        else:
            b = b[:-1]
    return a, b


class BatchMaker:
    """The same batches for both implementations: numpy arrays -> each one's keyword arguments."""

    def __init__(self, opts: BenchOptions, config: BertConfig, paragraphs: list[list[np.ndarray]] | None,
                 dataset=None):
        self.opts, self.config = opts, config
        self.docs = paragraphs
        self.dataset = dataset  # PretrainingDataset over `berts prepare` shards: the "prepared" regime
        self.rng = np.random.default_rng(opts.seed)
        self.collate_s: list[float] = []

    def _prepared(self) -> dict:
        """A batch as the trainer gets it: PretrainingDataset (our collator: padding, masking)."""
        n = len(self.dataset)
        indices = self.rng.choice(n, self.opts.batch, replace=n < self.opts.batch)
        t = time.perf_counter()
        ours = self.dataset.batch(indices, step=len(self.collate_s))
        self.collate_s.append(time.perf_counter() - t)
        ours = {k: v for k, v in ours.items() if isinstance(v, torch.Tensor)}
        dense = torch.full_like(ours["input_ids"], -100).view(-1)
        dense[ours["mlm_positions"]] = ours["mlm_labels"]
        theirs = {k: ours[k] for k in ("input_ids", "attention_mask", "token_type_ids", "next_sentence_label")}
        theirs["labels"] = dense.view(ours["input_ids"].shape)
        lengths = ours["attention_mask"].sum(1)
        meta = {"tokens": int(lengths.sum()), "lengths": lengths.tolist(), "masked": len(ours["mlm_positions"])}
        return {"berts": ours, "transformers": theirs, "meta": meta}

    def _fixed_rows(self, pair: bool):
        s, v = self.opts.seq, self.config.vocab_size
        rows = []
        for _ in range(self.opts.batch):
            ids = self.rng.integers(FIRST_ID, v, s)
            types = np.zeros(s, dtype=np.int64)
            ids[0] = CLS
            ids[-1] = SEP
            if pair:
                ids[s // 2 - 1] = SEP
                types[s // 2:] = 1
            rows.append((ids, types))
        return rows, self.rng.integers(0, 2, self.opts.batch)

    def _real_rows(self, pair: bool):
        s, rows, labels = self.opts.seq, [], []
        for _ in range(self.opts.batch):
            d = self.docs[self.rng.integers(len(self.docs))]
            i = int(self.rng.integers(len(d)))
            a = d[i]
            if not pair:
                a = a[:s - 2]
                rows.append((np.concatenate([[CLS], a, [SEP]]), np.zeros(len(a) + 2, dtype=np.int64)))
                labels.append(int(self.rng.integers(2)))
                continue
            is_next = i + 1 < len(d) and self.rng.random() < 0.5
            if is_next:
                b = d[i + 1]
            else:
                other = self.docs[self.rng.integers(len(self.docs))]
                b = other[int(self.rng.integers(len(other)))]
            a, b = _truncate_pair(a, b, s - 3)
            ids = np.concatenate([[CLS], a, [SEP], b, [SEP]])
            types = np.concatenate([np.zeros(len(a) + 2), np.ones(len(b) + 1)]).astype(np.int64)
            rows.append((ids, types))
            labels.append(0 if is_next else 1)  # transformers: 0 = B follows A
        return rows, np.array(labels)

    def make(self, task: str, regime: str) -> dict:
        if regime == "prepared":
            return self._prepared()
        pair = task == "pretrain"
        rows, labels = self._fixed_rows(pair) if regime == "fixed" else self._real_rows(pair)
        arrays = _pad(rows, self.opts.seq)
        b = {k: torch.from_numpy(v) for k, v in arrays.items()}
        lengths = arrays["attention_mask"].sum(1)
        meta = {"tokens": int(lengths.sum()), "lengths": lengths.tolist(), "masked": 0}
        ours, theirs = dict(b), dict(b)
        if task == "pretrain":
            ids = arrays["input_ids"]
            cand = (arrays["attention_mask"] == 1) & (ids != CLS) & (ids != SEP)
            pick = cand & (self.rng.random(ids.shape) < self.opts.mask_prob)
            pick[0, 1] = True  # never an empty prediction set
            flat = np.flatnonzero(pick)
            targets = ids.reshape(-1)[flat]
            masked = ids.copy()
            masked[pick] = MASK
            dense = np.full(ids.shape, -100, dtype=np.int64)
            dense[pick] = ids[pick]
            nsp = torch.from_numpy(labels.astype(np.int64))
            ours.update(input_ids=torch.from_numpy(masked), mlm_positions=torch.from_numpy(flat),
                        mlm_labels=torch.from_numpy(targets), next_sentence_label=nsp)
            theirs.update(input_ids=torch.from_numpy(masked), labels=torch.from_numpy(dense),
                          next_sentence_label=nsp)
            meta["masked"] = len(flat)
        elif task == "finetune":
            y = torch.from_numpy(labels.astype(np.int64))
            ours["labels"] = theirs["labels"] = y
        return {"berts": ours, "transformers": theirs, "meta": meta}


# ------------------------------------------------------------------------- FLOPs, ceiling
def useful_flops(config: BertConfig, lengths: list[int], masked: int, task: str) -> float:
    """FLOPs of the work that matters for one batch: encoder matmuls and attention on the real
    tokens, the MLM head on the masked positions only, pooler and small heads; x3 for training."""
    h, i, n, e, v = (config.hidden_size, config.intermediate_size, config.num_hidden_layers,
                     config.emb_size, config.vocab_size)
    tokens = sum(lengths)
    per_token = n * (4 * h * h + 2 * h * i) + (e * h if config.embedding_size is not None else 0)
    fwd = 2 * tokens * per_token + n * 4 * h * sum(length * length for length in lengths)
    rows = len(lengths)
    if task == "pretrain":
        fwd += 2 * masked * (h * e + e * v) + 2 * rows * (h * h + 2 * h)
    else:
        fwd += 2 * rows * (h * h + h * config.num_labels)
    return float(3 * fwd if task in ("pretrain", "finetune") else fwd)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, reps: int = 10) -> dict:
    """Median GFLOP/s of a large square GEMM: fp32 on CPU, bf16 on CUDA (the training precisions)."""
    n, dtype = (2048, torch.float32) if device.type == "cpu" else (8192, torch.bfloat16)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    times = []
    for _ in range(reps + 1):
        _sync(device)
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        times.append(time.perf_counter() - t)
    return {"gflops": 2 * n ** 3 / statistics.median(times[1:]) / 1e9, "n": n,
            "dtype": str(dtype).replace("torch.", "")}


# ------------------------------------------------------------------------- peak memory
def _tensor_bytes(*objs) -> int:
    seen, total = set(), 0

    def add(t):
        nonlocal total
        if isinstance(t, torch.Tensor):
            key = (t.untyped_storage().data_ptr(), t.device)
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
        elif isinstance(t, dict):
            for x in t.values():
                add(x)
        elif isinstance(t, (list, tuple)):
            for x in t:
                add(x)

    for o in objs:
        add(o)
    return total


@contextlib.contextmanager
def _quiet_stderr():
    """The profiler's C++ side prints start/stop lines on fd 2: silence them."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_memory(step, batch, model, optimizer, device: torch.device) -> int:
    """Bytes: live tensors before the step (weights, grads, optimizer state, batch) + its peak allocations."""
    state = optimizer.state if optimizer is not None else {}
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        step(batch)
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device))
    base = _tensor_bytes(list(model.parameters()), [p.grad for p in model.parameters()],
                         [list(s.values()) for s in state.values()], batch)
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(batch)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return base + peak


# ------------------------------------------------------------------------- the two sides
def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class Side:
    """One implementation of one task: a model, its optimizer and a step function."""

    def __init__(self, name: str, model, task: str, device: torch.device):
        self.name, self.model, self.task, self.device = name, model.to(device), task, device
        training = task in ("pretrain", "finetune")
        self.model.train(training)
        self.optimizer = None
        if training:
            kwargs = {"fused": True} if device.type == "cuda" else {}
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.01, **kwargs)

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def step(self, batch: dict) -> None:
        if self.optimizer is None:
            with torch.inference_mode(), self.autocast():
                self.model(**batch)
            return
        with self.autocast():
            loss = self.model(**batch).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def _transformers():
    try:
        import transformers
    except ImportError:
        return None
    return transformers


def build_sides(opts: BenchOptions, config: BertConfig, task: str, device: torch.device, workdir: Path) -> list[Side]:
    from berts.heads import BertForPreTraining, BertForSequenceClassification
    from berts.model import compile_model

    torch.manual_seed(opts.seed)
    cls = BertForPreTraining if task == "pretrain" else BertForSequenceClassification
    ours = cls(config)
    ours.set_fast_path(**opts.fast_path)
    sides = []
    tf = _transformers() if opts.transformers else None
    if tf is not None:
        directory = workdir / f"model-{task}"
        ours.save_pretrained(directory)
        arch = json.loads((directory / "config.json").read_text())["architectures"][0]
        tf.utils.logging.disable_progress_bar()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(tf, arch).from_pretrained(directory, attn_implementation="sdpa")
        sides.append(Side("transformers", theirs, task, device))
    if opts.compile:
        ours = compile_model(ours)
    sides.insert(0, Side("berts", ours, task, device))
    return sides


# ------------------------------------------------------------------------- running
@dataclass
class Row:
    task: str
    regime: str
    impl: str
    tokens_per_s: float
    step_ms: float
    useful_gflops: float
    ceiling_share: float  # useful GFLOP/s / matmul ceiling (set once the ceiling is known)
    peak_mib: float
    padding: float  # share of padding in the batches
    ratio: float | None = None  # berts / transformers tokens/s (berts rows)


def time_task(opts: BenchOptions, config: BertConfig, task: str, regime: str, maker: BatchMaker,
              device: torch.device, workdir: Path) -> list[Row]:
    sides = build_sides(opts, config, task, device, workdir)
    rounds = opts.warmup + opts.steps
    batches = [maker.make(task, regime) for _ in range(rounds)]
    rates = {s.name: [] for s in sides}
    step_s = {s.name: [] for s in sides}
    flops = {s.name: [] for s in sides}
    for r, batch in enumerate(batches):
        order = sides if r % 2 == 0 else sides[::-1]
        meta = batch["meta"]
        work = useful_flops(config, meta["lengths"], meta["masked"], task)
        for side in order:
            inputs = _to(batch[side.name], device)
            _sync(device)
            t = time.perf_counter()
            side.step(inputs)
            _sync(device)
            dt = time.perf_counter() - t
            if r >= opts.warmup:
                rates[side.name].append(meta["tokens"] / dt)
                step_s[side.name].append(dt)
                flops[side.name].append(work / dt)
    padding = 1 - sum(b["meta"]["tokens"] for b in batches) / sum(b["berts"]["input_ids"].numel() for b in batches)
    rows = []
    for side in sides:
        mem = peak_memory(side.step, _to(batches[-1][side.name], device), side.model, side.optimizer, device)
        gflops = statistics.median(flops[side.name]) / 1e9
        rows.append(Row(task, regime, side.name, statistics.median(rates[side.name]),
                        statistics.median(step_s[side.name]) * 1e3, gflops, math.nan,
                        mem / 2 ** 20, padding))
    if len(rows) == 2:  # per round (same batch, back to back), then the median: robust to a busy machine
        rows[0].ratio = statistics.median(t / o for o, t in zip(step_s["berts"], step_s["transformers"]))
    for side in sides:
        side.model.to("cpu")
    return rows


def tokenize_corpus(corpus: Path, workdir: Path, vocab_size: int) -> tuple[object, list[list[np.ndarray]], dict]:
    """Train a WordPiece vocabulary on the corpus, encode it (timed), and time transformers' tokenizer."""
    from berts.tokenizer import Tokenizer

    docs = corpus_documents(corpus)
    tok = Tokenizer.train([corpus], vocab_size, show_progress=False)
    tok.save_pretrained(workdir / "tokenizer")
    lines = [p for d in docs for p in d]
    nbytes = sum(len(p.encode("utf-8")) for p in lines)
    stats = {"lines": len(lines), "mb": nbytes / 1e6, "train_s": tok.train_stats["seconds"]}
    t = time.perf_counter()
    ids = tok.encode_ids_batch(lines)
    dt = time.perf_counter() - t
    n_tokens = sum(len(x) for x in ids)
    stats["berts"] = {"tokens_per_s": n_tokens / dt, "mb_per_s": nbytes / 1e6 / dt}
    tf = _transformers()
    if tf is not None:
        tf.utils.logging.set_verbosity_error()  # "longer than the maximum length": we only count tokens
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_tok = tf.AutoTokenizer.from_pretrained(workdir / "tokenizer")
        t = time.perf_counter()
        hf_ids = hf_tok(lines, add_special_tokens=False)["input_ids"]
        dt = time.perf_counter() - t
        stats["transformers"] = {"tokens_per_s": sum(len(x) for x in hf_ids) / dt, "mb_per_s": nbytes / 1e6 / dt}
    arrays, k = [], 0
    for d in docs:
        arrays.append([np.asarray(x, dtype=np.int64) for x in ids[k:k + len(d)]])
        k += len(d)
    return tok, [d for d in arrays if any(len(x) for x in d)], stats


def time_prepare(corpus: Path, workdir: Path, seq: int, threads: int) -> dict:
    """`berts prepare` on the corpus, in-process: MB/s of input text."""
    from berts.cli import main

    out = workdir / "prepared"
    args = ["prepare", str(corpus), "--tokenizer", str(workdir / "tokenizer"), "--out", str(out),
            "--max-seq-length", str(seq), "--workers", str(max(1, threads)), "--quiet", "--overwrite"]
    mb = corpus.stat().st_size / 1e6
    if out.exists():
        return {"seconds": None, "mb": mb, "mb_per_s": None, "out": str(out)}
    t = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(args)
    except (ImportError, SystemExit) as exc:
        return {"error": f"berts prepare unavailable ({exc})"}
    dt = time.perf_counter() - t
    if rc != 0:
        return {"error": f"berts prepare exited with {rc}"}
    return {"seconds": dt, "mb": mb, "mb_per_s": mb / dt, "out": str(out)}


def run_bench(opts: BenchOptions) -> dict:
    for name in opts.only:
        if name not in TASKS + EXTRAS:
            raise UserError(f"--only: unknown part {name!r} (choose from {', '.join(TASKS + EXTRAS)})")
    for name in opts.regimes:
        if name not in REGIMES:
            raise UserError(f"unknown length regime {name!r} (choose from {', '.join(REGIMES)})")
    if opts.steps < 1 or opts.warmup < 0 or opts.batch < 1 or opts.seq < 8:
        raise UserError("need --steps >= 1, --warmup >= 0, --batch >= 1 and --seq >= 8")
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {opts.device}: CUDA is not available here")
    device = torch.device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    threads = torch.get_num_threads()
    config = preset(opts.preset)
    if opts.seq > config.max_position_embeddings:
        raise UserError(f"--seq {opts.seq} is longer than the preset's {config.max_position_embeddings} positions")
    tf = _transformers() if opts.transformers else None
    result = {
        "preset": opts.preset, "seq": opts.seq, "batch": opts.batch, "steps": opts.steps, "warmup": opts.warmup,
        "threads": threads, "device": str(device), "precision": "fp32" if device.type == "cpu" else "bf16 autocast",
        "torch": torch.__version__, "transformers": getattr(tf, "__version__", None),
        "fast_path": dict(opts.fast_path), "compile": opts.compile,
        "config": {k: getattr(config, k) for k in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                                     "intermediate_size", "vocab_size", "hidden_dropout_prob",
                                                     "attention_probs_dropout_prob")},
        "rows": [], "tokenizer": None, "prepare": None,
    }
    with tempfile.TemporaryDirectory(prefix="berts-bench-") as tmp:
        workdir = Path(tmp)
        corpus = Path(opts.corpus) if opts.corpus else default_corpus(workdir / "corpus.txt")
        if opts.corpus and not corpus.is_file():
            raise UserError(f"{corpus}: no such corpus file")
        result["corpus"] = str(opts.corpus) if opts.corpus else "pydoc_data.topics (CPython reference manual)"
        tasks = [t for t in TASKS if t in opts.only]
        need_text = (set(opts.regimes) & {"real", "prepared"} and tasks) or "tokenizer" in opts.only \
            or "prepare" in opts.only
        paragraphs = None
        if need_text:
            _, paragraphs, tok_stats = tokenize_corpus(corpus, workdir, min(8000, config.vocab_size))
            if "tokenizer" in opts.only:
                result["tokenizer"] = tok_stats
        if "prepare" in opts.only:
            result["prepare"] = {k: v for k, v in time_prepare(corpus, workdir, opts.seq, threads).items()
                                 if k != "out"}  # a temporary directory
        dataset = None
        if "pretrain" in tasks and "prepared" in opts.regimes:
            prep = time_prepare(corpus, workdir, opts.seq, threads)
            if "error" in prep:
                warnings.warn(f"no 'prepared' regime: {prep['error']}", stacklevel=2)
            else:
                from berts.data.dataset import PretrainingDataset

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dataset = PretrainingDataset(prep["out"], mask_prob=opts.mask_prob, max_predictions_per_seq=None,
                                                 seed=opts.seed)
        if tasks:
            ceilings = [matmul_ceiling(device)]
            maker = BatchMaker(opts, config, paragraphs, dataset)
            for task in tasks:
                for regime in opts.regimes:
                    if regime == "prepared" and (task != "pretrain" or dataset is None):
                        continue  # prepared data are pretraining instances
                    rows = time_task(opts, config, task, regime, maker, device, workdir)
                    result["rows"] += [asdict(r) for r in rows]
                ceilings.append(matmul_ceiling(device))
            # the machine's ceiling: the best of the measurements (others' load only lowers it)
            ceiling = max(ceilings, key=lambda c: c["gflops"])
            result["ceiling"] = dict(ceiling, measurements=[round(c["gflops"], 1) for c in ceilings])
            for row in result["rows"]:
                row["ceiling_share"] = row["useful_gflops"] / ceiling["gflops"]
            if maker.collate_s:
                result["collate"] = {"ms_per_batch": statistics.median(maker.collate_s) * 1e3,
                                     "batches": len(maker.collate_s)}
    return result


# ------------------------------------------------------------------------- report
def _fmt(x, spec):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_table(result: dict) -> str:
    c = result["config"]
    lines = [
        f"berts bench: preset {result['preset']} (L{c['num_hidden_layers']} H{c['hidden_size']} "
        f"A{c['num_attention_heads']} I{c['intermediate_size']} V{c['vocab_size']}, dropout "
        f"{c['hidden_dropout_prob']}/{c['attention_probs_dropout_prob']}), batch {result['batch']}, "
        f"seq {result['seq']}, {result['device']} {result['precision']}, {result['threads']} threads, "
        f"torch {result['torch']}, transformers {result['transformers'] or 'not installed'}",
        f"berts fast paths: {', '.join(k for k, v in result['fast_path'].items() if v) or 'none (plain)'}"
        f"{', compile' if result['compile'] else ''}; median of {result['steps']} steps after "
        f"{result['warmup']} warm-up; corpus: {result['corpus']}",
    ]
    if result.get("ceiling"):
        ce = result["ceiling"]
        lines.append(f"matmul ceiling: {ce['gflops']:.1f} GFLOP/s ({ce['dtype']} GEMM {ce['n']}^3, median of 10; best of "
                     f"{len(ce.get('measurements', [1]))} measurements through the run)")
    if result["rows"]:
        head = (f"{'task':<9} {'lengths':<8} {'pad':>4} {'impl':<12} {'tokens/s':>9} {'ratio':>6} "
                f"{'step ms':>8} {'GFLOP/s':>8} {'ceil':>5} {'peak MiB':>9}")
        lines += ["", head, "-" * len(head)]
        for r in result["rows"]:
            lines.append(
                f"{r['task']:<9} {r['regime']:<8} {r['padding'] * 100:>3.0f}% {r['impl']:<12} "
                f"{r['tokens_per_s']:>9.0f} {_fmt(r['ratio'], '>5.2f') + ('x' if r['ratio'] else ''):>6} "
                f"{r['step_ms']:>8.1f} {r['useful_gflops']:>8.1f} {r['ceiling_share'] * 100:>4.0f}% "
                f"{r['peak_mib']:>9.0f}")
    tok = result.get("tokenizer")
    if tok:
        lines.append("")
        lines.append(f"tokenizer ({tok['lines']} lines, {tok['mb']:.2f} MB): berts {tok['berts']['mb_per_s']:.2f} MB/s "
                     f"({tok['berts']['tokens_per_s']:.0f} tokens/s)"
                     + (f"; transformers {tok['transformers']['mb_per_s']:.2f} MB/s "
                        f"({tok['transformers']['tokens_per_s']:.0f} tokens/s)" if "transformers" in tok else "")
                     + f"; vocabulary training {tok['train_s']:.1f}s")
    col = result.get("collate")
    if col:
        steps = [r["step_ms"] for r in result["rows"] if r["regime"] == "prepared" and r["impl"] == "berts"]
        share = f" ({col['ms_per_batch'] / steps[0] * 100:.2f}% of a berts step)" if steps else ""
        lines.append(f"collate (PretrainingDataset.batch: pad, mask 15%, sparse targets): "
                     f"{col['ms_per_batch']:.2f} ms per batch{share}")
    prep = result.get("prepare")
    if prep:
        lines.append("berts prepare: " + (prep["error"] if "error" in prep else
                                            f"{prep['mb']:.2f} MB in {prep['seconds']:.1f}s = {prep['mb_per_s']:.2f} MB/s"))
    return "\n".join(lines)
