"""The on-disk format of prepared data, and its reader.

A prepared directory holds::

    meta.json                   what was prepared and how (see berts.data.pipeline)
    continuation.npy            bool [vocab_size]: True for ``##`` pieces (whole-word masking)
    shard_00000.tokens.bin      token ids of all instances of the shard, back to back, raw
                                little-endian ``meta["token_dtype"]`` (uint16 when the vocabulary fits)
    shard_00000.index.npy       int64 [n, 4]: offset (in tokens), length, b_start, label
    shard_00000.units.bin       uint8 per token (only with a segmenter or lexicon): bit 1 = starts
                                a word, bit 2 = starts a knowledge unit (see berts.data.segment)
    ...

``b_start`` is the index of segment B's first token (token type 1 from there on; the length
when there is no B), ``label`` the NSP/SOP label (0 in order/real, 1 swapped/random; -1 none).
Everything is read through memory maps, opened lazily in each process. ``meta.json`` is written
last, atomically, after every shard is flushed to the disk: a directory without it is not prepared
data, and the reader checks each shard's files against it (size, index shape) before mapping them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from berts.errors import UserError
from berts.util.fileio import fsync_path

META_FILE = "meta.json"
CONTINUATION_FILE = "continuation.npy"
FORMAT = "berts-pretraining-shards"
VERSION = 1


def shard_name(i: int) -> str:
    return f"shard_{i:05d}"


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


class ShardWriter:
    """Appends instances to shards of at most ``shard_size`` instances; streams tokens to disk."""

    def __init__(self, out_dir: str | os.PathLike, *, vocab_size: int, units: bool, shard_size: int = 1_000_000):
        self.out_dir = Path(out_dir)
        self.dtype = token_dtype(vocab_size)
        self.units = units
        self.shard_size = shard_size
        self.shards: list[dict] = []
        self._files = None
        self._index: list[np.ndarray] = []
        self._count = 0  # instances in the open shard
        self._offset = 0  # tokens in the open shard

    def _open(self) -> None:
        name = shard_name(len(self.shards))
        self._files = [open(self.out_dir / f"{name}.tokens.bin", "wb")]
        if self.units:
            self._files.append(open(self.out_dir / f"{name}.units.bin", "wb"))
        self.shards.append({"name": name, "instances": 0, "tokens": 0})
        self._index, self._count, self._offset = [], 0, 0

    def _close(self) -> None:
        if self._files is None:
            return
        files, self._files = self._files, None
        for f in files:
            try:
                f.flush()
                os.fsync(f.fileno())  # on the disk before meta.json, written last, says they are whole
            finally:
                f.close()
        index = np.concatenate(self._index) if self._index else np.zeros((0, 4), dtype=np.int64)
        index_path = self.out_dir / f"{self.shards[-1]['name']}.index.npy"
        np.save(index_path, index)
        fsync_path(index_path)
        self.shards[-1].update(instances=self._count, tokens=self._offset)

    def add(self, tokens: np.ndarray, lengths: np.ndarray, b_start: np.ndarray, labels: np.ndarray,
            units: np.ndarray | None = None) -> None:
        """Instances given back to back: ``tokens`` flat, one ``lengths`` entry each."""
        lengths = np.asarray(lengths, dtype=np.int64)
        ends = np.cumsum(lengths)
        done = 0
        while done < len(lengths):
            if self._files is None or self._count >= self.shard_size:
                self._close()
                self._open()
            take = min(len(lengths) - done, self.shard_size - self._count)
            lo = int(ends[done - 1]) if done else 0
            hi = int(ends[done + take - 1])
            part = lengths[done:done + take]
            offsets = self._offset + np.concatenate([[0], np.cumsum(part)[:-1]])
            self._index.append(np.stack([offsets, part, b_start[done:done + take],
                                         labels[done:done + take]], axis=1).astype(np.int64))
            self._files[0].write(np.ascontiguousarray(tokens[lo:hi], dtype=self.dtype).tobytes())
            if self.units:
                self._files[1].write(np.ascontiguousarray(units[lo:hi], dtype=np.uint8).tobytes())
            self._count += take
            self._offset += hi - lo
            done += take

    def close(self) -> list[dict]:
        self._close()
        return self.shards

    def written(self) -> list[Path]:
        """Every file this writer made (to remove them when the run fails before meta.json)."""
        kinds = ("tokens.bin", "units.bin", "index.npy")
        return [self.out_dir / f"{s['name']}.{k}" for s in self.shards for k in kinds]

    def abort(self) -> None:
        """Close without writing anything more (after a failure) and remove the shards."""
        for f in self._files or ():
            try:
                f.close()
            except OSError:
                pass
        self._files = None
        for p in self.written():
            try:
                p.unlink()
            except OSError:
                pass


class ShardReader:
    """Random access to the instances of a prepared directory.

    Token, unit and index files are memory-mapped lazily in each process (the reader pickles
    without them, for loader workers); only the lengths (int32 per instance) stay in memory.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        meta_path = self.directory / META_FILE
        if not meta_path.is_file():
            raise UserError(f"{self.directory}: not a prepared data directory (no {META_FILE}); run `berts prepare`")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{meta_path}: cannot read ({exc})") from None
        if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
            raise UserError(f"{meta_path}: not a berts shard directory of version {VERSION}")
        self.dtype = np.dtype(self.meta["token_dtype"])
        self.has_units = bool(self.meta["units"]["stored"])
        self.names = [s["name"] for s in self.meta["shards"]]
        for shard in self.meta["shards"]:
            self._check_shard(shard)
        lengths = [np.load(self._path(n, "index.npy"), mmap_mode="r")[:, 1].astype(np.int32) for n in self.names]
        self.starts = np.concatenate([[0], np.cumsum([len(x) for x in lengths])]).astype(np.int64)
        self.lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int32)
        self.continuation = np.load(self.directory / CONTINUATION_FILE)
        self._maps: dict | None = None

    def _check_shard(self, shard: dict) -> None:
        """A shard whose files are missing or not the size meta.json gives (a copy cut short, a disk
        that filled up) is one line naming the file, before any memory map fails on it."""
        name, tokens, instances = shard["name"], int(shard["tokens"]), int(shard["instances"])
        sizes = [("tokens.bin", tokens * self.dtype.itemsize)]
        if self.has_units:
            sizes.append(("units.bin", tokens))
        for kind, want in sizes:
            path = self._path(name, kind)
            try:
                have = path.stat().st_size
            except FileNotFoundError:
                raise UserError(f"{path}: missing (the shard is listed in {META_FILE}); run `berts prepare` "
                                "again") from None
            if have != want:
                raise UserError(f"{path}: {have} bytes, {META_FILE} says {want} (a truncated or foreign "
                                f"shard); run `berts prepare` again")
        path = self._path(name, "index.npy")
        try:
            index = np.load(path, mmap_mode="r")
        except FileNotFoundError:
            raise UserError(f"{path}: missing (the shard is listed in {META_FILE}); run `berts prepare` again") from None
        except (OSError, ValueError, EOFError) as exc:
            raise UserError(f"{path}: cannot read ({exc}); run `berts prepare` again") from None
        if index.ndim != 2 or index.shape != (instances, 4):
            raise UserError(f"{path}: an index of shape {tuple(index.shape)}, {META_FILE} says ({instances}, 4); "
                            "run `berts prepare` again")

    def _path(self, name: str, kind: str) -> Path:
        return self.directory / f"{name}.{kind}"

    def __len__(self) -> int:
        return len(self.lengths)

    def __getstate__(self):
        return {**self.__dict__, "_maps": None}  # memory maps are reopened in each process

    def _map(self, shard: int):
        """(index, tokens, units or None) of a shard, memory-mapped."""
        if self._maps is None:
            self._maps = {}
        if shard not in self._maps:
            name = self.names[shard]
            size = int(self.meta["shards"][shard]["tokens"])

            def raw(kind, dtype):
                if not size:
                    return np.zeros(0, dtype)
                return np.memmap(self._path(name, kind), dtype=dtype, mode="r", shape=(size,))

            self._maps[shard] = (np.load(self._path(name, "index.npy"), mmap_mode="r"), raw("tokens.bin", self.dtype),
                                 raw("units.bin", np.uint8) if self.has_units else None)
        return self._maps[shard]

    def rows(self, indices) -> np.ndarray:
        """Index rows [n, 4] (offset, length, b_start, label) of instances."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"instance index out of range 0..{len(self) - 1}")
        shards = np.searchsorted(self.starts, indices, side="right") - 1
        out = np.empty((len(indices), 4), dtype=np.int64)
        for shard in np.unique(shards):
            sel = shards == shard
            out[sel] = self._map(int(shard))[0][indices[sel] - self.starts[shard]]
        return out

    @property
    def index(self) -> np.ndarray:
        """All index rows (loads them: for inspection and tests)."""
        return self.rows(np.arange(len(self)))

    def instance(self, i: int) -> dict:
        """One instance: input_ids, b_start, label (and units when stored), as numpy/ints."""
        offset, length, b_start, label = (int(v) for v in self.rows([i])[0])
        shard = int(np.searchsorted(self.starts, i, side="right") - 1)
        _, tokens, units = self._map(shard)
        out = {"input_ids": np.asarray(tokens[offset:offset + length], dtype=np.int64),
               "b_start": b_start, "label": label}
        if units is not None:
            out["units"] = np.asarray(units[offset:offset + length])
        return out

    def gather(self, indices, width: int, pad_id: int):
        """(ids [B, width] int64 padded, unit bits [B, width] uint8 or None, index rows [B, 4])."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = self.rows(indices)
        offsets, lengths = rows[:, 0], rows[:, 1]
        cols = np.arange(width)
        valid = cols[None, :] < lengths[:, None]
        ids = np.full((len(indices), width), pad_id, dtype=np.int64)
        bits = np.zeros((len(indices), width), dtype=np.uint8) if self.has_units else None
        shards = np.searchsorted(self.starts, indices, side="right") - 1
        for shard in np.unique(shards):
            sel = np.flatnonzero(shards == shard)
            _, tokens, units = self._map(int(shard))
            v = valid[sel]
            pos = (offsets[sel, None] + cols[None, :])[v]
            block = ids[sel]
            block[v] = tokens[pos]
            ids[sel] = block
            if bits is not None:
                block = bits[sel]
                block[v] = units[pos]
                bits[sel] = block
        return ids, bits, rows
