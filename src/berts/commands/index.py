"""`berts index CORPUS --model M --out IDX`: embed a corpus into a faiss index (berts.embed.search)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from berts.commands.embed import add_engine_arguments, add_input_arguments, add_progress_arguments, show_progress
from berts.errors import UserError
from berts.util.values import count


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "index", help="embed a corpus into a search index (faiss): flat, HNSW or IVF",
        description="Embed the texts of CORPUS (one a line, a corpus format, a JSONL corpus with _id/id and text "
                    "as BEIR's corpus.jsonl, or a table column) with MODEL and save them as a search index: the "
                    "faiss index, the ids and texts, and the model's path and fingerprint, together in IDX. "
                    "--add puts more texts into an existing index without rebuilding it. Needs faiss-cpu: "
                    "pip install 'berts[search]'.")
    p.add_argument("corpus", metavar="CORPUS", help="the texts to index")
    p.add_argument("--model", metavar="DIR", help="the sentence encoder (with --add: default the index's)")
    p.add_argument("--out", required=True, metavar="IDX", help="the index directory")
    p.add_argument("--kind", choices=["flat", "hnsw", "ivf"], default="flat",
                   help="flat (default): exact; hnsw / ivf: approximate (its recall@10 against exact is reported)")
    p.add_argument("--add", action="store_true", help="add CORPUS's texts to the existing index IDX")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index IDX")
    p.add_argument("--id-prefix", default="", metavar="STR",
                   help="put STR before every id (line numbers repeat across files: e.g. --id-prefix more: with --add)")
    p.add_argument("--hnsw-m", type=count, default=32, metavar="M", help="HNSW: links per node (default 32)")
    p.add_argument("--ef-search", type=count, default=64, metavar="N", help="HNSW: search breadth (default 64)")
    p.add_argument("--nlist", type=count, metavar="N", help="IVF: lists (default about 4 sqrt(n))")
    p.add_argument("--nprobe", type=count, default=None, metavar="N",
                   help="IVF: lists searched per query (default max(8, lists / 20): 63 at 100k texts, recall@10 about 0.93)")
    add_input_arguments(p)
    add_engine_arguments(p)
    add_progress_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from berts.embed.search import Index, require_faiss
    from berts.embed.texts import read_texts

    require_faiss()
    out = Path(args.out)

    def say(msg):
        print(f"index: {msg}", file=sys.stderr)

    if args.add:
        idx = Index.load(out)
        if args.model:
            idx.use_model(args.model)
        idx.encoder  # loaded (and checked) before the clock starts  # noqa: B018
    elif out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise UserError(f"{out}: exists: --add to add texts to it, --overwrite to replace it")
    if not args.add and not args.model:
        raise UserError("give the sentence encoder: --model DIR")
    items = read_texts(args.corpus, args.input_format, args.text_column, args.text_field, say=say)
    ids, texts = [args.id_prefix + i for i, _ in items], [t for _, t in items]
    if not args.add:
        from berts.commands.embed import load_encoder

        enc = load_encoder(args, texts[:256])  # --int8 smooth calibrates on the first texts
    t0 = time.perf_counter()
    if args.add:
        seen = set(idx.ids)
        dup = next((i for i in ids if i in seen), None)
        if dup is not None:
            raise UserError(f"{args.corpus}: id {dup!r} is already in {out} (--id-prefix tells this file's ids apart)")
        idx.add(texts, ids, batch_size=args.batch_size)
    else:
        idx = Index.build(enc, texts, ids, model=args.model, kind=args.kind, batch_size=args.batch_size,
                          hnsw_m=args.hnsw_m, ef_search=args.ef_search, nlist=args.nlist, nprobe=args.nprobe,
                          show_progress=show_progress(args))
    built = time.perf_counter() - t0
    idx.save(out)
    recall = idx.meta.get("recall@10_vs_flat")
    note = f"; recall@10 vs exact {recall:.4f}{' at build' if args.add else ''}" if recall is not None else ""
    verb = "added" if args.add else "indexed"
    print(f"index: {verb} {len(texts)} texts in {built:.1f}s -> {out} ({idx.meta['kind']}, {idx.meta['count']} "
          f"vectors of {idx.meta['dim']}{note})")
    return 0
