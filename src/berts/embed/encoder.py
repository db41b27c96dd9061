"""Encoder: texts -> sentence embeddings (numpy [n, dim]), the Python API of berts' embeddings.

    enc = Encoder.from_pretrained("all-MiniLM-L6-v2/")   # a sentence-transformers directory,
    vectors = enc.encode(["a text", "another"])           # or a plain BERT one (mean pooling)

One forward per batch, the pooling a module of the model (berts.embed.pooling.Pooling), so that
training (the losses in berts.embed.losses) and serving compute the same thing.

Speed, on a CPU box:

* length-sorted batching: the texts are tokenized once, sorted by length (longest first: the first
  batch shows a memory problem at once), cut into batches, and the embeddings put back in input
  order; a batch pads to its own longest text only;
* the encoder's unpad fast path, on in eval here (it is off by default in eval): every layer but
  attention runs on the real tokens only, and pooling reads those [T, H] tokens directly
  (cu_seqlens), never scattering them back to [B, S, H]. It gives the plain path's numbers
  (tests/test_embed.py: 1e-5); ``Encoder.unpad = False`` switches it off;
* on the CPU (``Encoder.onednn``, ``Encoder.streams``): the fp32 linears packed for oneDNN for the
  call, GELU fused (berts.model.onednn.packed: the same modules back after, as training needs), and
  the batches taken from a queue by one stream per thread (each stream one intra-op thread: a small
  model's 2-thread ops wait at every barrier). MiniLM, 2,000 snippets, batch 32, 2 threads:
  1.51x-1.67x sentence-transformers' encode in five runs, 1.31x-1.34x with both off
  (experiments/2026-12-07-encode-speed).

Texts longer than ``max_seq_length`` tokens are cut to it ([CLS] + the first tokens + [SEP], as
transformers' truncation), said once per Encoder; an empty string is the embedding of [CLS][SEP].
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from berts.embed.pooling import Pooling, cu_seqlens_of
from berts.embed.st_format import is_st_dir, read_st_dir, write_st_dir
from berts.errors import UserError
from berts.hf import load_hf_state_dict, read_config, read_state_dict
from berts.model import onednn
from berts.model.encoder import BertModel
from berts.tokenizer.wordpiece import load_tokenizer
from berts.util.progress import progress
import berts.hf  # noqa: F401  (registers the HF formats: BertModel.from_pretrained reads them)

log = logging.getLogger(__name__)


def load_bare_encoder(directory):
    """A BertModel from a Hugging Face / berts directory (any registered format), keeping its
    pooler only when the directory has one (sentence encoders do not need it)."""

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise UserError(f"{directory}: not a model directory (no config.json)")
    config = read_config(directory)
    sd = read_state_dict(directory)
    model = BertModel(config, add_pooling_layer=any("pooler" in k for k in sd))
    missing, _unexpected = load_hf_state_dict(model, sd, source=str(directory))  # heads (MLM, ...) unused
    if missing:
        warnings.warn(f"{directory}: {len(missing)} encoder weights are not in the checkpoint and are "
                      f"newly initialised: {', '.join(sorted(missing)[:5])}", stacklevel=3)
    return model.eval()


class Encoder(nn.Module):
    """A BERT encoder + Pooling (+ normalisation): texts -> embeddings."""

    def __init__(self, model, tokenizer, pooling: Pooling, max_seq_length: int | None = None,
                 do_lower_case: bool = False):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        limit = int(model.config.max_position_embeddings)
        self.max_seq_length = min(int(max_seq_length or limit), limit)
        self.do_lower_case = bool(do_lower_case)
        self._said_truncated = False
        # the unpad fast path in eval (False: the plain path). Even on length-sorted batches,
        # which carry little padding, it is the faster one: 2.12 s of CPU against 2.30 s for 256
        # Rotten Tomatoes snippets through MiniLM at one thread (median of 5 alternated rounds).
        self.unpad = True
        # CPU serving (encode only; training and ``forward`` are untouched):
        # ``onednn``: the fp32 linears run as oneDNN packed products for the call, the FFN's GELU
        # fused into its up-projection (berts.model.onednn.packed: the same modules back after);
        # ``streams``: batches run this many at a time, torch's threads shared between them (None:
        # one stream per thread). Small models on a few cores spend much of a 2-thread forward
        # waiting at each op's barrier; two 1-thread streams keep both cores busy.
        self.onednn = True
        self.streams = None

    # ------------------------------------------------------------------ loading, saving
    @classmethod
    def from_pretrained(cls, directory, normalize: bool | None = None, pooling=None,
                        max_seq_length: int | None = None) -> Encoder:
        """A sentence-transformers directory (its pooling, normalisation and window), or a plain
        BERT directory: mean pooling then, said once (a logging warning). ``pooling`` /
        ``normalize`` / ``max_seq_length`` override the directory's."""

        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"{directory}: no such model directory")
        if is_st_dir(directory):
            st = read_st_dir(directory)
            root, modes, norm, window, lower = (st.transformer_dir, st.modes, st.normalize, st.max_seq_length,
                                                st.do_lower_case)
        else:
            root, modes, norm, window, lower = directory, ("mean",), False, None, False
            if pooling is None:
                log.warning("%s: no pooling config (modules.json): mean pooling", directory)
        model = load_bare_encoder(root)
        tokenizer = load_tokenizer(root)
        if window is None:
            window = min(int(tokenizer.model_max_length), int(model.config.max_position_embeddings))
        pool = Pooling(model.config.hidden_size, pooling or modes, norm if normalize is None else normalize)
        return cls(model, tokenizer, pool, max_seq_length or window, lower)

    def save_pretrained(self, directory) -> Path:
        """A sentence-transformers directory (berts.embed.st_format.write_st_dir)."""
        return write_st_dir(directory, self.model, self.tokenizer, self.pooling.modes, self.pooling.normalize,
                            self.max_seq_length, self.do_lower_case)

    @property
    def dim(self) -> int:
        return self.pooling.dim

    # ------------------------------------------------------------------ the model
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, [CLS] ... [SEP], cut to max_seq_length (said once)."""
        texts = [t.lower() if self.do_lower_case else t for t in texts]
        ids = self.tokenizer(texts, truncation=False)["input_ids"]
        n = self.max_seq_length
        long = sum(len(row) > n for row in ids)
        if long and not self._said_truncated:
            self._said_truncated = True
            warnings.warn(f"{long} text(s) longer than the model's window of {n} tokens are truncated to it "
                          "(said once)", stacklevel=4)
        return [row if len(row) <= n else row[:n - 1] + row[-1:] for row in ids]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                normalize: bool | None = None) -> torch.Tensor:
        """input_ids, attention_mask [B, S] (right padding) -> embeddings [B, dim]. Training calls
        this too (with gradients; the encoder's own switches then decide, see BertModel.unpad)."""
        with self._fast_path():
            return self._embed(input_ids, attention_mask, normalize)

    @contextmanager
    def _fast_path(self):
        """In eval, the encoder's unpad switch as ``self.unpad`` says for the block, then back to
        the caller's own setting (training keeps the encoder's switches)."""
        m = self.model
        want = bool(self.unpad)
        switch = not m.training and want != m.fast("unpad")
        before = m.__dict__.get("unpad")
        if switch:
            m.set_fast_path(unpad=want)
        try:
            yield
        finally:
            if switch:
                m.set_fast_path(unpad=before)

    def _embed(self, input_ids, attention_mask, normalize):
        m = self.model
        state = m.embed(input_ids, attention_mask)
        state, _, _ = m.encoder(state)
        if state.unpadded is not None:  # [T, H]: the real tokens, grouped by row in order
            return self.pooling(state.x, cu_seqlens=cu_seqlens_of(attention_mask), normalize=normalize)
        return self.pooling(state.x, attention_mask, normalize=normalize)  # [B, S, H]

    def batch(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token id lists -> input_ids, attention_mask [B, S] padded right to the longest."""
        s = max(len(r) for r in rows)
        ids = torch.full((len(rows), s), int(self.tokenizer.pad_id), dtype=torch.long)
        mask = torch.zeros((len(rows), s), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, :len(r)] = 1
        return ids, mask

    # ------------------------------------------------------------------ the API
    @torch.inference_mode()
    def encode(self, texts: Sequence[str] | str, batch_size: int = 32, normalize: bool | None = None,
               show_progress: bool = False) -> np.ndarray:
        """texts -> float32 [n, dim] in input order (a single string -> [dim]). ``normalize``: None
        = the model's setting (2_Normalize in its directory)."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if any(not isinstance(t, str) for t in texts):
            bad = next(i for i, t in enumerate(texts) if not isinstance(t, str))
            raise UserError(f"text {bad}: a string expected, got {type(texts[bad]).__name__}")
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        was_training = self.model.training
        self.model.eval()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        try:
            rows = self.tokenize(texts) if texts else []
            order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))  # longest first
            batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
            device = self.model.device
            bar = progress(total=len(batches), desc="embedding", unit="batch", enabled=bool(show_progress))

            def run(take):  # one batch, into out (batches write disjoint rows)
                ids, mask = self.batch([rows[i] for i in take])
                out[take] = self._embed(ids.to(device), mask.to(device), normalize).float().cpu().numpy()
                bar.update(1)

            on_cpu = device.type == "cpu"
            streams = self.cpu_streams(len(batches)) if on_cpu else 1
            pack = onednn.packed(self.model) if on_cpu and self.onednn else nullcontext()
            try:
                with self._fast_path(), pack:
                    if streams > 1:
                        run_in_streams(run, batches, streams)
                    else:
                        for take in batches:
                            run(take)
            finally:
                bar.close()
        finally:
            self.model.train(was_training)
        return out[0] if single else out

    def cpu_streams(self, n_batches: int) -> int:
        """How many batches run at once on the CPU (see ``streams``): 1 unless there are at least
        two batches and two threads."""
        threads = torch.get_num_threads()
        want = threads if self.streams is None else int(self.streams)
        return max(1, min(want, threads, n_batches))


def run_in_streams(run, items, streams: int) -> None:
    """``run(item)`` for every item on ``streams`` threads at once, torch's intra-op threads shared
    out between them (T threads, n streams: T // n each, the first T % n one more), then put back.
    Each thread takes the next item when it is done (a queue), so long and short batches balance.
    torch's thread count is process-wide: another thread running torch work meanwhile sees the
    smaller count. Grad mode is per thread: each stream runs in inference mode."""
    import queue
    import threading

    total = torch.get_num_threads()
    todo = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    errors = []

    def worker(threads):
        try:
            torch.set_num_threads(threads)  # this thread's OpenMP team (and oneDNN's)
            with torch.inference_mode():
                while not errors:
                    try:
                        item = todo.get_nowait()
                    except queue.Empty:
                        return
                    run(item)
        except BaseException as exc:  # noqa: BLE001  (raised again in the caller's thread)
            errors.append(exc)

    shares = [total // streams + (i < total % streams) for i in range(streams)]
    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in shares]
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        torch.set_num_threads(total)
    if errors:
        raise errors[0]
