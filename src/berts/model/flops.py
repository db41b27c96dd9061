"""FLOPs of the encoder and its add-ons, counted from the config: `berts compare` and the
compression methods (early exit) share these counts.

FLOP counts (multiply-adds x 2; embeddings lookups, LayerNorm, softmax and GELU not counted), a
sequence of n real tokens, hidden H, intermediate I, E the factorized embedding size:

* a layer: 2n(4H^2 + 2HI) for the projections (3HI with GLU) + 4n^2 H for q.k and probabilities x
  values (4n k H on a local layer, each query seeing k = w // 2 * 2 + 1 keys at most);
* ALBERT's embedding projection: 2nEH; the pooler and classifier: 2H^2 + 2HC, once per sequence;
* a FastBERT student of width w: 2nHw + 4nw^2 (keys, values) + 4nw ([CLS] query) + 6w^2 + 2wC.
"""
from __future__ import annotations

import numpy as np


def layer_flops(config, n: int, layer: int = 0) -> float:
    """Layer ``layer`` on n tokens. ``ffn: glu``: the up matrix is H x 2I (3HI weights, not 2HI); a
    local layer (``sliding_window`` w) scores each query against at most w // 2 * 2 + 1 keys."""
    h, i = config.hidden_size, config.intermediate_size
    ffn = 3 * h * i if getattr(config, "ffn", "standard") == "glu" else 2 * h * i
    keys = min(n, config.sliding_window // 2 * 2 + 1) if config.is_local(layer) else n
    return 2.0 * n * (4 * h * h + ffn) + 4.0 * n * keys * h


def encoder_flops(config, n: int, layers: int | None = None, head: bool = True) -> float:
    """FLOPs of one sequence of ``n`` real tokens through the embedding projection (ALBERT),
    ``layers`` layers (default all) and, with ``head``, the pooler and classifier."""
    layers = config.num_hidden_layers if layers is None else layers
    total = sum(layer_flops(config, n, i) for i in range(layers))
    if config.embedding_size is not None:
        total += 2.0 * n * config.embedding_size * config.hidden_size
    if head:
        total += 2.0 * config.hidden_size * config.hidden_size + 2.0 * config.hidden_size * config.num_labels
    return total


def student_flops(config, width: int, n: int) -> float:
    """One FastBERT student (berts.compress.early_exit.exits.ExitClassifier) on a sequence of n tokens."""
    h, c = config.hidden_size, config.num_labels
    return 2.0 * n * h * width + 4.0 * n * width * width + 4.0 * n * width + 6.0 * width * width + 2.0 * width * c


def flops_per_token(config, lengths) -> float:
    """Sum of encoder_flops over the sequences / their real tokens."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return float(sum(encoder_flops(config, int(n)) for n in lengths) / max(int(lengths.sum()), 1))


# ----------------------------------------------------------------------------- measuring
