"""Classical baselines a BERT has to beat: TF-IDF n-grams + logistic regression (scikit-learn).

    result = tfidf_baseline("train.tsv", "dev.tsv", "test.tsv", data, analyzer="char", ngrams=(1, 2))

The tables are read with berts' one reader (``berts.data.tables.read_table``: the columns,
formats and one-line errors of `berts finetune`). A sentence pair is joined with " [SEP] " into
one text. The regularisation C is chosen on the dev split (``Cs``: several values; the first
best wins), the chosen model is scored once on test. Why scikit-learn: it is the reference
implementation of this baseline, and a hand-written one would only invite doubt about the figure.
"""
from __future__ import annotations

import time

from berts.errors import UserError
from berts.data.tables import read_table
from berts.util.progress import progress as progress_bar


def _texts_labels(examples):
    texts = [e.text if e.text_pair is None else f"{e.text} [SEP] {e.text_pair}" for e in examples]
    return texts, [str(e.label) for e in examples]


def tfidf_baseline(train, dev, test, data, *, analyzer: str = "char", ngrams: tuple[int, int] = (1, 2),
                   Cs=(1.0,), max_iter: int = 2000, progress: bool = False) -> dict:
    """Fit on ``train``, choose C on ``dev``, report dev and ``test`` accuracy (test may be None).
    ``progress``: a bar on stderr, one tick per C fitted."""
    try:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise UserError("the TF-IDF baseline needs scikit-learn: pip install 'berts[demo]'") from None

    if analyzer not in ("char", "char_wb", "word"):
        raise UserError(f"--analyzer {analyzer!r}: one of char, char_wb, word")
    if not Cs or any(c <= 0 for c in Cs):
        raise UserError("--C: positive numbers")
    start = time.perf_counter()
    split = {}
    for name, path in (("train", train), ("dev", dev), ("test", test)):
        if path is not None:
            examples, _ = read_table(path, data, task="classification")
            if not examples:
                raise UserError(f"{path}: no rows")
            split[name] = _texts_labels(examples)
    xt, yt = split["train"]
    if len(set(yt)) < 2:
        raise UserError(f"{train}: the baseline needs at least two labels, found {sorted(set(yt))}")
    # token_pattern: words of one character count too (Chinese words, "a", "I")
    words = {"token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {}
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=tuple(ngrams), sublinear_tf=True, **words)
    train_x = vec.fit_transform(xt)
    dev_x, dev_y = vec.transform(split["dev"][0]), np.array(split["dev"][1])
    tried, best = [], None
    for c in progress_bar(Cs, total=len(Cs), desc="baseline", unit="C", enabled=progress):
        clf = LogisticRegression(C=float(c), max_iter=max_iter).fit(train_x, yt)
        acc = float((clf.predict(dev_x) == dev_y).mean())
        tried.append({"C": float(c), "dev_accuracy": acc})
        if best is None or acc > best[1]:
            best = (clf, acc, float(c))
    clf, dev_acc, c = best
    result = {"model": "tfidf+logreg", "analyzer": analyzer, "ngrams": list(ngrams), "C": c, "tried": tried,
              "features": int(train_x.shape[1]), "train_examples": len(yt), "dev_accuracy": dev_acc}
    if "test" in split:
        test_x, test_y = vec.transform(split["test"][0]), np.array(split["test"][1])
        result["test_accuracy"] = float((clf.predict(test_x) == test_y).mean())
        result["test_examples"] = len(test_y)
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def tfidf_retrieval(corpus: dict[str, str], queries: dict[str, str], k: int = 10) -> dict[str, dict[str, float]]:
    """TF-IDF cosine retrieval, the classical baseline of a sentence encoder's search: word 1-2
    grams, sublinear tf, fitted on the corpus (the documents searched); each query's top ``k``
    documents by cosine. {doc id: text}, {query id: text} -> the run {query id: {doc id: score}}
    that berts.embed.metrics.retrieval_scores reads."""
    try:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError:
        raise UserError("the TF-IDF baseline needs scikit-learn: pip install 'berts[demo]'") from None

    ids, qids = list(corpus), list(queries)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit([corpus[d] for d in ids])
    docs = vec.transform([corpus[d] for d in ids])  # rows L2-normalised: the product is the cosine
    sims = (vec.transform([queries[q] for q in qids]) @ docs.T).toarray()  # [queries, documents]
    k = min(k, len(ids))
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return {q: {ids[j]: float(sims[n, j]) for j in top[n]} for n, q in enumerate(qids)}
