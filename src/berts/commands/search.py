"""`berts search IDX "query" [-k 10]`: the nearest texts of an index (berts.embed.search)."""
from __future__ import annotations

import json
import sys
import time

from berts.errors import UserError
from berts.util.values import count


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search", help="search an index built by `berts index` (cosine top k; optional cross-encoder re-ranking)",
        description="The k texts of IDX nearest to each query (cosine of the embeddings), best first: "
                    "rank, score, id and text a line (--json: one object per query). The query is embedded with "
                    "the model the index names; another --model is refused unless it has the same weights.")
    p.add_argument("index", metavar="IDX", help="an index directory (berts index)")
    p.add_argument("query", nargs="?", metavar="QUERY", help="the query text (or --queries FILE)")
    p.add_argument("-k", "--top-k", dest="k", type=count, default=10, metavar="K", help="hits per query (default 10)")
    p.add_argument("--queries", metavar="FILE", help="queries, one a line (or a JSONL corpus: _id/id and text)")
    p.add_argument("--model", metavar="DIR", help="the encoder (default: the index's; must have the same weights)")
    p.add_argument("--rerank", metavar="DIR",
                   help="re-order the k hits with a fine-tuned pair classifier (a cross-encoder: query, text)")
    p.add_argument("--rerank-label", metavar="LABEL",
                   help="the re-ranker's label whose probability orders the hits (default: its last label)")
    p.add_argument("--ef-search", type=count, metavar="N", help="HNSW: search breadth (default: the index's)")
    p.add_argument("--nprobe", type=count, metavar="N", help="IVF: lists searched per query (default: the index's)")
    p.add_argument("--batch-size", type=count, default=32, metavar="N", help="queries per forward (default 32)")
    p.add_argument("--threads", type=count, metavar="N", help="torch threads")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.set_defaults(func=run)


def run(args) -> int:
    from berts.embed.search import Index

    if (args.query is None) == (args.queries is None):
        raise UserError("give one QUERY or --queries FILE")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    idx = Index.load(args.index)
    if args.model:
        idx.use_model(args.model)
    if args.ef_search is not None and hasattr(idx.index, "hnsw"):
        idx.index.hnsw.efSearch = args.ef_search
    if args.nprobe is not None and hasattr(idx.index, "nprobe"):
        idx.index.nprobe = args.nprobe
    if args.queries:
        from berts.embed.texts import read_texts

        queries = [t for _, t in read_texts(args.queries, say=lambda m: print(f"search: {m}", file=sys.stderr))]
    else:
        if not args.query.strip():
            raise UserError("the query is empty")
        queries = [args.query]
    reranker = None
    if args.rerank:
        from berts.serve.predict import Classifier

        reranker = Classifier.from_pretrained(args.rerank, device="cpu")
    idx.encoder  # the model is loaded (and checked) before the clock starts  # noqa: B018
    t0 = time.perf_counter()
    results = idx.search(queries, k=args.k, batch_size=args.batch_size, rerank=reranker,
                         rerank_label=args.rerank_label)
    took = time.perf_counter() - t0
    for q, hits in zip(queries, results):
        if args.json:
            print(json.dumps({"query": q, "hits": [{k: v for k, v in vars(h).items() if v is not None}
                                                   for h in hits]}, ensure_ascii=False))
            continue
        if len(queries) > 1:
            print(f"# {q}")
        for rank, h in enumerate(hits, 1):
            extra = f"\t{h.rerank:.4f}" if h.rerank is not None else ""
            print(f"{rank}\t{h.score:.4f}{extra}\t{h.id}\t{h.text}")
    print(f"search: {len(queries)} quer{'y' if len(queries) == 1 else 'ies'} in {took * 1000:.1f} ms "
          f"({took * 1000 / len(queries):.2f} ms/query, embedding included)", file=sys.stderr)
    return 0
