"""Semantic search on faiss-cpu: an index of sentence embeddings, saved with its texts and model.

    idx = Index.build(Encoder.from_pretrained("all-MiniLM-L6-v2/"), texts, ids, model="all-MiniLM-L6-v2/")
    idx.save("news.idx")
    idx = Index.load("news.idx")                     # the model it names is loaded on first search
    hits = idx.search(["a query"], k=10)             # [[Hit(id, text, score), ...]]

Scores are cosines: the vectors are L2-normalised before they go in, and every index kind uses
the inner product.

* ``flat`` (default): exact (faiss IndexFlatIP): every query against every vector.
* ``hnsw``: a graph (IndexHNSWFlat, M = 32, efSearch = 64 by default): approximate, sub-linear;
  texts can be added without rebuilding.
* ``ivf``: inverted lists (IndexIVFFlat, nlist ~ 4 sqrt(n), nprobe = max(8, nlist / 20)): approximate; trained
  (k-means) once on the first texts, later texts go into the trained lists.

An approximate index reports its recall@10 against the exact one at build time (up to 200 of its
own texts used as queries, each one's own vector left out of both top-10 lists, against a flat
search of the same vectors), kept in meta.json and printed by `berts index`.

The directory (written whole, atomically: a failed write leaves the earlier index as it was):

    index.faiss   the faiss index (faiss.write_index)
    items.jsonl   {"id", "text"} per vector, in the index's order
    meta.json     format, kind, dim, count, the model's path and fingerprint (sha256 of its
                  config.json and weight files), the pooling, the approximate recall

A query with another model than the index's (its fingerprint differs) is refused in one line;
so is a corrupt or truncated index file, or items.jsonl out of step with the index.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from berts.errors import UserError
from berts.embed.encoder import Encoder
from berts.util.fileio import atomic_write_dir

FORMAT = "berts-embedding-index/1"
KINDS = ("flat", "hnsw", "ivf")
INDEX_FILE, ITEMS_FILE, META_FILE = "index.faiss", "items.jsonl", "meta.json"


def require_faiss():
    try:
        import faiss
    except ImportError:
        raise UserError("semantic search needs faiss-cpu: pip install 'berts[search]'") from None
    return faiss


def model_fingerprint(directory) -> str:
    """sha256 of a model directory's config.json and weight files (names and bytes): two
    directories with the same weights have the same fingerprint, wherever they are."""
    d = Path(directory)
    h = hashlib.sha256()
    names = ["config.json", *sorted(p.name for p in d.iterdir()
                                    if p.suffix in (".safetensors", ".bin", ".onnx") and p.is_file())]
    for name in names:
        p = d / name
        if p.is_file():
            h.update(name.encode())
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def normalize(x) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


@dataclass
class Hit:
    id: str
    text: str
    score: float
    rerank: float | None = None


class Index:
    """faiss index + ids + texts + the model reference (see the module docstring)."""

    def __init__(self, faiss_index, ids: list[str], texts: list[str], meta: dict, encoder=None):
        self.index, self.ids, self.texts, self.meta = faiss_index, list(ids), list(texts), dict(meta)
        self._encoder = encoder

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, encoder, texts, ids=None, *, model=None, kind: str = "flat", batch_size: int = 32,
              hnsw_m: int = 32, ef_search: int = 64, nlist: int | None = None, nprobe: int | None = None,
              vectors=None, show_progress: bool = False) -> Index:
        """Embed ``texts`` with ``encoder`` (or take ``vectors`` [n, dim]) into a new index.
        ``model``: the encoder's directory, recorded in meta.json."""
        faiss = require_faiss()
        if kind not in KINDS:
            raise UserError(f"index kind must be one of {', '.join(KINDS)}, got {kind!r}")
        texts = list(texts)
        ids = [str(i) for i in (ids if ids is not None else range(len(texts)))]
        if len(ids) != len(texts):
            raise UserError(f"{len(texts)} texts but {len(ids)} ids")
        if not texts:
            raise UserError("no texts to index")
        x = normalize(vectors if vectors is not None else
                      encoder.encode(texts, batch_size=batch_size, show_progress=show_progress))
        dim = x.shape[1]
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = ef_search
        else:
            nlist = nlist or max(1, min(int(4 * len(x) ** 0.5), len(x) // 39 or 1))  # faiss wants ~39 points a list
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(x)
            # lists searched: by default a twentieth of them (at 100k real sentences, 1,264 lists: nprobe 8
            # gave recall@10 0.52 against exact, 64 gave 0.93 at 2.1 ms a query: docs/embed.md)
            index.nprobe = min(nprobe or max(8, nlist // 20), nlist)
        index.add(x)
        meta = {"format": FORMAT, "kind": kind, "dim": int(dim), "count": len(ids)}
        if model is not None:
            meta["model"] = str(Path(model).resolve())
            meta["fingerprint"] = model_fingerprint(model)
        if encoder is not None:
            meta["pooling"] = list(encoder.pooling.modes)
            meta["max_seq_length"] = int(encoder.max_seq_length)
        out = cls(index, ids, texts, meta, encoder)
        if kind != "flat":
            out.meta["recall@10_vs_flat"] = out.recall_vs_flat(x)
        return out

    def recall_vs_flat(self, x: np.ndarray, n: int = 200, k: int = 10, seed: int = 0) -> float:
        """recall@k of this index against an exact search, on up to ``n`` of its own vectors as
        queries, each query's own vector left out of both lists: a vector always finds itself (in
        IVF it sits in the very list its query probes first), which made the figure optimistic
        (100k real sentence embeddings: IVF 0.62 counting itself, 0.52 on 1,000 unseen queries;
        benchmarks/search.py). Left out, it reads like a query the index has not seen."""
        faiss = require_faiss()
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(x), size=min(n, len(x)), replace=False)
        exact = faiss.IndexFlatIP(x.shape[1])
        exact.add(x)
        k = min(k, len(x) - 1)
        if k < 1:
            return 1.0
        _, want = exact.search(x[pick], k + 1)
        _, got = self.index.search(x[pick], k + 1)

        def others(row, me):  # the first k positions that are not the query itself
            return set([j for j in row if j != me and j >= 0][:k])

        return float(np.mean([len(others(a, me) & others(b, me)) / k for a, b, me in zip(want, got, pick)]))

    def add(self, texts, ids=None, batch_size: int = 32, vectors=None) -> int:
        """Embed and add texts (no rebuild: faiss adds to the flat, HNSW and trained IVF index alike);
        ``vectors`` [n, dim]: their embeddings, computed elsewhere with the index's model."""
        texts = list(texts)
        start = len(self.ids)
        ids = [str(i) for i in (ids if ids is not None else range(start, start + len(texts)))]
        if len(ids) != len(texts):
            raise UserError(f"{len(texts)} texts but {len(ids)} ids")
        if vectors is not None and np.shape(vectors) != (len(texts), self.index.d):
            raise UserError(f"{len(texts)} texts need vectors [{len(texts)}, {self.index.d}], got {list(np.shape(vectors))}")
        x = normalize(vectors if vectors is not None else self.encoder.encode(texts, batch_size=batch_size))
        self.index.add(x)
        self.ids += ids
        self.texts += texts
        self.meta["count"] = len(self.ids)
        return len(texts)

    # ------------------------------------------------------------------ the model
    @property
    def encoder(self):
        if self._encoder is None:
            model = self.meta.get("model")
            if not model:
                raise UserError("this index names no model: pass one (--model)")
            self.use_model(model)
        return self._encoder

    def use_model(self, directory, encoder=None) -> None:
        """Query with ``directory``'s model: refused when it is not the one the index was built
        with (another fingerprint)."""
        d = Path(directory)
        if not d.is_dir():
            raise UserError(f"{d}: the index's model directory is gone (give --model)")
        want = self.meta.get("fingerprint")
        got = model_fingerprint(d)
        if want is not None and got != want:
            raise UserError(f"{d}: not the model this index was built with ({self.meta.get('model')}, "
                            f"fingerprint {want}; this one {got}): its vectors would not be comparable")
        if encoder is None:

            encoder = Encoder.from_pretrained(d)
        self._encoder = encoder

    # ------------------------------------------------------------------ searching
    def search_vectors(self, q, k: int = 10):
        """[m, dim] -> (scores [m, k'], positions [m, k']), k' = min(k, count)."""
        q = normalize(np.atleast_2d(q))
        if q.shape[1] != self.index.d:
            raise UserError(f"query vectors have {q.shape[1]} dimensions, the index {self.index.d}")
        return self.index.search(q, min(int(k), len(self.ids)))

    def search(self, queries, k: int = 10, batch_size: int = 32, rerank=None, rerank_label=None) -> list[list[Hit]]:
        """Queries (strings) -> their top k hits each, best first. ``rerank``: a pair classifier
        (berts.Classifier, a cross-encoder) that re-orders each query's k hits by its score (the
        probability of ``rerank_label``, default the last label; a regression's value)."""
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}")
        single = isinstance(queries, str)
        queries = [queries] if single else list(queries)
        scores, pos = self.search_vectors(self.encoder.encode(queries, batch_size=batch_size), k)
        out = [[Hit(self.ids[j], self.texts[j], float(s)) for s, j in zip(srow, prow) if j >= 0]
               for srow, prow in zip(scores, pos)]
        if rerank is not None:
            out = [self._rerank(rerank, q, hits, rerank_label) for q, hits in zip(queries, out)]
        return out[0] if single else out

    @staticmethod
    def _rerank(classifier, query, hits, label=None):
        if not hits:
            return hits
        preds = classifier.predict([query] * len(hits), [h.text for h in hits])
        for h, p in zip(hits, preds):
            if p.value is not None:
                h.rerank = float(p.value)
            else:
                name = label if label is not None else list(p.probabilities)[-1]
                if name not in p.probabilities:
                    raise UserError(f"--rerank-label {name!r} is not a label of the re-ranker "
                                    f"({', '.join(p.probabilities)})")
                h.rerank = float(p.probabilities[name])
        return sorted(hits, key=lambda h: -h.rerank)

    # ------------------------------------------------------------------ files
    def save(self, directory) -> Path:
        faiss = require_faiss()

        directory = Path(directory)

        def write(tmp: Path):
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            with open(tmp / ITEMS_FILE, "w", encoding="utf-8") as f:
                for i, t in zip(self.ids, self.texts):
                    f.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")
            (tmp / META_FILE).write_text(json.dumps(self.meta, indent=2) + "\n")

        atomic_write_dir(directory, write)
        return directory

    @classmethod
    def load(cls, directory) -> Index:
        """An index directory, or one line saying what is wrong with it."""
        faiss = require_faiss()
        d = Path(directory)
        if not d.is_dir():
            raise UserError(f"{d}: no such index directory")
        for name in (INDEX_FILE, ITEMS_FILE, META_FILE):
            if not (d / name).is_file():
                raise UserError(f"{d}: not an index (no {name}; build one with `berts index`)")
        try:
            meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{d / META_FILE}: corrupt ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise UserError(f"{d / META_FILE}: not a berts index ({FORMAT} expected)")
        try:
            index = faiss.read_index(str(d / INDEX_FILE))
        except Exception as exc:  # faiss raises RuntimeError with a C++ trace on a bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{d / INDEX_FILE}: corrupt or truncated index file ({first[:160]})") from None
        ids, texts = [], []
        with open(d / ITEMS_FILE, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    row = json.loads(raw)
                    ids.append(str(row["id"]))
                    texts.append(str(row["text"]))
                except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                    raise UserError(f"{d / ITEMS_FILE}:{lineno}: corrupt item line") from None
        if index.ntotal != len(ids) or index.d != meta.get("dim"):
            raise UserError(f"{d}: the index holds {index.ntotal} vectors of {index.d} dimensions, items.jsonl "
                            f"{len(ids)} texts and meta.json {meta.get('dim')} dimensions: out of step")
        return cls(index, ids, texts, meta)
