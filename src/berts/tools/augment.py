"""TinyBERT's data augmentation (Jiao et al. 2020, section 3.1; huawei-noah/Pretrained-Language-Model
``TinyBERT/data_augmentation.py``): more task text for task distillation, made by word replacement.

    aug = Augmenter.from_pretrained("teacher_dir", n=20, p=0.4, top_k=15)
    texts = aug.augment(["a gripping , twisty thriller"])[0]  # [the original, up to n variants]

The algorithm, as the reference runs it:

* a text is split into words by the model's own tokenizer (its normalizer and pre-tokenizer:
  BERT's basic tokenizer, lowercasing for an uncased vocabulary, punctuation and every CJK
  character a word of its own);
* a word is a candidate for replacement when it is alphabetic and not an English stop word (the
  reference's NLTK list). The reference accepts a-z only; ``str.isalpha`` also accepts CJK
  characters, so Chinese text is augmented too;
* a word that is one WordPiece gets the masked language model's top ``top_k`` predictions at its
  position (whole-word pieces only). The input is the reference's: ``[CLS] text-with-[MASK] [SEP]
  text [SEP]``, the unmasked text as segment B, which keeps the candidates close to the original
  word's sense;
* a word of several pieces: the reference takes its ``top_k`` nearest words in GloVe (300d, 100k
  words). No GloVe file is reachable from a registry here, and the mean of the pieces' input
  embeddings was tried instead and gives poor neighbours ("enamored" -> "un", "se": the first
  piece dominates), so such a word is kept as it is (counted in ``kept``);
* a model without an MLM head (a fine-tuned classifier, MiniLM's ``BertModel``): a one-piece
  word gets its ``top_k`` nearest whole words by cosine in the model's input word embeddings
  (the reference's GloVe step, on the embeddings at hand);
* each of ``n`` variants replaces every candidate word, with probability ``p``, by one of its
  candidates drawn uniformly; duplicates (and the original) are dropped, so a text yields at most
  ``n`` new ones; variants are the words joined by spaces (the reference's output).

Randomness is per text: text ``i`` draws from ``numpy.random.default_rng((seed, i))``, so a file
is augmented the same whatever the batch size. The labels are copied from the original: TinyBERT
task distillation learns from the teacher's soft targets on the new texts, never from these
labels (a replaced "good" may well be "bad").
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from berts.data.tables import read_table
from berts.util.progress import progress as progress_bar
from berts.hf import load
from berts.tokenizer.wordpiece import load_tokenizer
from berts.util.fileio import atomic_write_file

# the reference's stop words (NLTK's English list)
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him his
himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom this
that that'll these those am is are was were be been being have has had having do does did doing a an the and but
if or because as until while of at by for with about against between into through during before after above below
to from up down in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don don't should should've
now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't
isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won
won't wouldn wouldn't""".split())


def is_candidate(word: str) -> bool:
    """Alphabetic (letters of any script) and not a stop word."""
    return word.isalpha() and word.lower() not in STOP_WORDS


@dataclass
class AugmentStats:
    texts: int = 0
    variants: int = 0
    candidate_words: int = 0
    by_mlm: int = 0
    by_embedding: int = 0
    kept: int = 0  # candidate words of several pieces, left as they are
    seconds: float = 0.0
    rows: int = 0  # written by augment_file (originals included)
    cut: int = 0  # texts longer than the window (max_length words): variants of their start only
    window: int = 0  # that window, in words


class Augmenter:
    def __init__(self, model, tokenizer, *, n: int = 20, p: float = 0.4, top_k: int = 15, seed: int = 0,
                 batch_size: int = 64, max_length: int = 256):
        if n < 1 or not 0.0 <= p <= 1.0 or top_k < 1:
            raise ValueError(f"n >= 1, 0 <= p <= 1, top_k >= 1 (got n={n}, p={p}, top_k={top_k})")
        self.model, self.tok = model.eval(), tokenizer
        self.n, self.p, self.top_k, self.seed = n, p, top_k, seed
        # the MLM input holds the text twice: it must fit the position table
        self.batch_size, self.max_length = batch_size, min(max_length, model.config.max_position_embeddings)
        self.max_words = max(512, 4 * self.max_length)  # words per text augmented (the rest: cut, with a warning)
        self.encoder = getattr(model, "bert", model)
        self.mlm = getattr(model, "mlm", None)  # BertForMaskedLM / BertForPreTraining
        backend = tokenizer.backend
        self._normalize = backend.normalizer.normalize_str if backend.normalizer is not None else (lambda s: s)
        self._pre = backend.pre_tokenizer
        vocab = tokenizer.vocab()
        cont = tokenizer.is_continuation
        special = tokenizer.special_ids
        self.id_to_token = {i: t for t, i in vocab.items()}
        # whole-word, alphabetic, non-special vocabulary entries: what a candidate may be
        self.word_ids = np.array(sorted(i for t, i in vocab.items()
                                        if not cont[i] and i not in special and t.isalpha()), dtype=np.int64)
        emb = self.encoder.embeddings.word_embeddings.weight.detach().float()
        self._emb = emb
        table = emb[torch.from_numpy(self.word_ids)]
        self._table = table / table.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # [Nw, H]
        self._whole = np.zeros(len(cont), dtype=bool)
        self._whole[self.word_ids] = True
        self._neighbours: dict[str, list[str]] = {}

    @classmethod
    def from_pretrained(cls, directory, **kwargs) -> Augmenter:

        return cls(load(directory), load_tokenizer(directory), **kwargs)

    def words(self, text: str) -> list[str]:
        return [w for w, _ in self._pre.pre_tokenize_str(self._normalize(text))] if self._pre is not None \
            else self._normalize(text).split()

    # ------------------------------------------------------------------ candidates
    def embedding_neighbours(self, word: str) -> list[str]:
        """The ``top_k`` whole words nearest to a one-piece ``word`` by the cosine of the input
        embeddings, the word itself excluded (cached: the neighbours do not depend on context)."""
        if word not in self._neighbours:
            ids = self.tok.encode_ids_batch([word])[0]
            if len(ids) != 1:
                self._neighbours[word] = []
                return []
            v = self._emb[ids[0]]
            sims = self._table @ (v / v.norm().clamp_min(1e-12))
            if self._whole[ids[0]]:
                sims[int(np.searchsorted(self.word_ids, ids[0]))] = -float("inf")
            top = torch.topk(sims, min(self.top_k, len(sims))).indices.numpy()
            self._neighbours[word] = [self.id_to_token[int(self.word_ids[j])] for j in top]
        return self._neighbours[word]

    @torch.no_grad()
    def _mlm_candidates(self, jobs: list[tuple[list[list[int]], int]]) -> list[list[str]]:
        """jobs: (the text's pieces per word, the word to mask) -> top_k whole-word candidates
        each, from ``[CLS] masked [SEP] original [SEP]`` (token types 0 / 1)."""
        tok = self.tok
        rows, positions = [], []
        for pieces, w in jobs:
            flat = [i for p in pieces for i in p]
            pos = 1 + sum(len(p) for p in pieces[:w])  # the word's piece, [CLS] counted
            masked = list(flat)
            masked[pos - 1] = tok.mask_id
            half = (self.max_length - 3) // 2  # both halves fit; the masked word must stay in the first
            start = max(0, min(pos - 1 - half // 2, len(masked) - half)) if len(masked) > half else 0
            a, b = masked[start:start + half], flat[start:start + half]
            rows.append(([tok.cls_id, *a, tok.sep_id, *b, tok.sep_id], len(a) + 2))
            positions.append(pos - start)
        out: list[list[str]] = []
        for lo in range(0, len(rows), self.batch_size):
            chunk = rows[lo:lo + self.batch_size]
            width = max(len(r) for r, _ in chunk)
            ids = torch.full((len(chunk), width), tok.pad_id, dtype=torch.long)
            types = torch.zeros_like(ids)
            mask = torch.zeros_like(ids)
            for j, (r, a_len) in enumerate(chunk):
                ids[j, :len(r)] = torch.tensor(r)
                types[j, a_len:len(r)] = 1
                mask[j, :len(r)] = 1
            h = self.encoder(ids, attention_mask=mask, token_type_ids=types).last_hidden_state  # [B, S, H]
            at = h[torch.arange(len(chunk)), torch.tensor(positions[lo:lo + self.batch_size])]  # [B, H]
            logits = self.mlm.predict(at)  # [B, vocab]
            allowed = torch.zeros(logits.shape[-1], dtype=torch.bool)  # the model's table may be padded
            allowed[torch.from_numpy(self.word_ids)] = True
            logits[:, ~allowed] = -float("inf")  # whole alphabetic words only
            top = torch.topk(logits, self.top_k, dim=-1).indices.tolist()
            out.extend([self.id_to_token[i] for i in t] for t in top)
        return out

    def candidates(self, texts_words: list[list[str]], stats: AugmentStats) -> list[dict[int, list[str]]]:
        """Per text: {word index: its candidates} for every candidate word."""
        result: list[dict[int, list[str]]] = [{} for _ in texts_words]
        jobs, where = [], []
        for t, words in enumerate(texts_words):
            pieces = self.tok.encode_ids_batch(words) if words else []
            for w, word in enumerate(words):
                if not is_candidate(word) or not pieces[w]:
                    continue
                stats.candidate_words += 1
                if len(pieces[w]) > 1:  # the reference's GloVe step; see the module docstring
                    stats.kept += 1
                elif self.mlm is not None:
                    jobs.append((pieces, w))
                    where.append((t, w))
                    stats.by_mlm += 1
                else:
                    result[t][w] = self.embedding_neighbours(word) or [word]
                    stats.by_embedding += 1
        if jobs:
            for (t, w), cands in zip(where, self._mlm_candidates(jobs)):
                result[t][w] = cands or [texts_words[t][w]]
        return result

    # ------------------------------------------------------------------ variants
    def variants(self, words: list[str], cands: dict[int, list[str]], rng: np.random.Generator,
                 original: str) -> list[str]:
        """Up to ``n`` distinct new texts (the reference's loop: each candidate word replaced with
        probability p by a uniform draw among its candidates)."""
        seen, out = {original, " ".join(words)}, []
        keys = sorted(cands)
        for _ in range(self.n):
            new = list(words)
            for w in keys:
                c = cands[w][int(rng.integers(len(cands[w])))]
                if rng.random() < self.p:
                    new[w] = c
            s = " ".join(new)
            if s not in seen:
                seen.add(s)
                out.append(s)
        return out

    def augment(self, texts: list[str], *, start: int = 0, stats: AugmentStats | None = None) -> list[list[str]]:
        """[original, variants...] for each text; ``start``: the index of texts[0] in its file
        (the per-text seeds)."""
        stats = stats if stats is not None else AugmentStats()
        t0 = time.perf_counter()
        words = [self.words(t) for t in texts]
        # a text of more words than several windows: its variants are of its first max_words only (a
        # 200,000-word line ran for minutes without a sign; the student reads max_length tokens anyway)
        for j, w in enumerate(words):
            if len(w) > self.max_words:
                words[j] = w[:self.max_words]
                stats.cut, stats.window = stats.cut + 1, self.max_words
        cands = self.candidates(words, stats)
        out = []
        for i, (text, w, c) in enumerate(zip(texts, words, cands)):
            rng = np.random.default_rng((self.seed, start + i))
            v = self.variants(w, c, rng, text)
            stats.variants += len(v)
            out.append([text, *v])
        stats.texts += len(texts)
        stats.seconds += time.perf_counter() - t0
        return out


def augment_file(path, out, data, *, model_dir, n=20, p=0.4, top_k=15, seed=0, batch_size=64,
                 chunk: int = 256, progress: bool = True) -> AugmentStats:
    """Read a table with berts' reader (``data``: the FinetuneData columns), write ``out`` as a TSV
    with a header (text, [text_pair,] label): each row, then its variants with the same label. A
    pair's texts are augmented one at a time, the other kept (as the reference)."""
    from pathlib import Path

    examples, _ = read_table(path, data, labels=data.label_column is not None)
    aug = Augmenter.from_pretrained(model_dir, n=n, p=p, top_k=top_k, seed=seed, batch_size=batch_size)
    stats = AugmentStats()
    pair = any(e.text_pair is not None for e in examples)
    labelled = any(e.label is not None for e in examples)
    clean = lambda s: " ".join(str(s).split())  # noqa: E731  (no tab or newline may reach the TSV)
    lines = ["\t".join(["text", *(["text_pair"] if pair else []), *(["label"] if labelled else [])])]
    bar = progress_bar(total=len(examples), desc="augment", unit="text", enabled=progress)
    for lo in range(0, len(examples), chunk):
        part = examples[lo:lo + chunk]
        firsts = aug.augment([e.text for e in part], start=lo, stats=stats)
        seconds = [[e.text_pair] for e in part]
        if pair:  # the second texts of the same rows: counted as variants, not as more texts
            seconds = aug.augment([e.text_pair for e in part], start=len(examples) + lo, stats=stats)
            stats.texts -= len(part)
        for e, a, b in zip(part, firsts, seconds):
            tail = [clean(e.label)] if labelled else []
            rows = [(t, e.text_pair) for t in a] + [(e.text, t) for t in b[1:]]
            for t, u in rows:
                lines.append("\t".join([clean(t), *([clean(u)] if pair else []), *tail]))
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
    stats.rows = len(lines) - 1
    atomic_write_file(Path(out), "\n".join(lines) + "\n")
    return stats
