"""Label names <-> class ids (stored in config.json as ``id2label`` / ``label2id``)."""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from berts.data.tables import Example, is_number
from berts.errors import UserError, where
from berts.config.validate import parse_class_weights


class LabelMap:
    """Label names <-> ids. ``LabelMap(names)`` keeps the given order (id = position);
    ``from_labels`` / ``from_examples`` sort (numerically when every label is a number)."""

    def __init__(self, names: Sequence[str]):
        names = [str(n) for n in names]
        if len(set(names)) != len(names):
            dupes = sorted(n for n, c in Counter(names).items() if c > 1)
            raise ValueError(f"duplicate label names: {', '.join(dupes)}")
        self.names = names
        self._ids = {name: i for i, name in enumerate(names)}

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelMap:
        unique = {str(label) for label in labels if label is not None}
        if not unique:
            raise UserError("no labels to build a label map from")
        if all(is_number(label) for label in unique):
            return cls(sorted(unique, key=lambda label: (float(label), label)))
        return cls(sorted(unique))

    @classmethod
    def from_examples(cls, examples: Iterable[Example]) -> LabelMap:
        return cls.from_labels(e.label for e in examples)

    @classmethod
    def from_config(cls, config: Any) -> LabelMap:
        """From a config dict (config.json's ``id2label``, keys int or str) or an object with ``.id2label``."""
        id2label = config.get("id2label") if isinstance(config, dict) else getattr(config, "id2label", None)
        if not id2label:
            raise UserError("the model config has no id2label (label names)")
        try:
            by_id = {int(k): str(v) for k, v in id2label.items()}
        except (TypeError, ValueError):
            raise UserError(f"id2label keys must be integers, got {sorted(map(str, id2label))}") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise UserError(f"id2label ids must be 0..{len(by_id) - 1}, got {sorted(by_id)}")
        try:
            return cls([by_id[i] for i in range(len(by_id))])
        except ValueError as exc:
            raise UserError(f"id2label: {exc}") from None

    def to_config(self) -> dict[str, Any]:
        """The fields of a BertConfig / config.json: ``BertConfig(**preset, **label_map.to_config())``."""
        return {"num_labels": len(self), "problem_type": "single_label_classification",
                "id2label": self.id2label, "label2id": self.label2id}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return dict(self._ids)

    @property
    def num_labels(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, label: object) -> bool:
        return label in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and other.names == self.names

    def __repr__(self) -> str:
        return f"LabelMap({self.names!r})"

    def encode(self, label: str, path: str | os.PathLike | None = None, line: int | None = None) -> int:
        """The id of ``label``; an unseen label is a UserError naming ``path:line``."""
        i = self._ids.get(label)
        if i is None:
            known = ", ".join(self.names[:20]) + (", ..." if len(self.names) > 20 else "")
            prefix = f"{where(path, line)}: " if path is not None else (f"line {line}: " if line is not None else "")
            raise UserError(f"{prefix}unknown label '{label}' (known: {known})")
        return i

    def decode(self, ids: Iterable[int] | int) -> list[str] | str:
        if isinstance(ids, (int, np.integer)):
            return self.names[int(ids)]
        return [self.names[int(i)] for i in ids]


def check_labels(label_map, path, what: str) -> None:
    """A classifier learns nothing from one label, and a dev set of one label picks "best" at accuracy 1."""
    if len(label_map) < 2:
        raise UserError(f"{path}: every {what} example has the label '{label_map.names[0]}': classification "
                        "needs at least 2 labels (regression: --task regression)")


def resolve_class_weights(value, label_map, labels) -> list[float] | None:
    """train.class_weights -> [num_labels] weights in label-id order. ``balanced``: n / (k x n_c) over the
    training labels (scikit-learn's); a mapping: the labels named (others weigh 1)."""
    import numpy as np

    if value is None:
        return None
    parsed = parse_class_weights(value)
    if parsed == "balanced":
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(label_map))
        return [float(len(labels) / (len(label_map) * c)) if c else 1.0 for c in counts]
    unknown = [name for name in parsed if name not in label_map]
    if unknown:
        raise UserError(f"train.class_weights: label {unknown[0]!r} is not in the training data "
                        f"(labels: {', '.join(label_map.names[:10])})")
    return [parsed.get(name, 1.0) for name in label_map.names]


def resolve_positive(name, label_map) -> int:
    """train.positive_label -> its label id (default: id 1, the second label in sorted order)."""
    if name is None:
        return 1
    if str(name) not in label_map:
        raise UserError(f"train.positive_label {name!r} is not a label of the training data "
                        f"(labels: {', '.join(label_map.names[:10])})")
    if len(label_map) != 2:
        raise UserError(f"train.positive_label is for 2 labels (binary F1); with {len(label_map)} labels f1 is "
                        "the macro F1")
    return label_map.label2id[str(name)]


def drop_unknown_labels(examples, label_map, report, skip: bool):
    """Rows whose label the model does not know: left in (the dataset then stops at the first,
    naming file and line) or, with skip_bad_rows, dropped and counted in the report."""
    if label_map is None or not skip:
        return examples
    kept = [e for e in examples if e.label is None or str(e.label) in label_map]
    dropped = len(examples) - len(kept)
    if dropped:
        report.skipped["unknown label"] = report.skipped.get("unknown label", 0) + dropped
        first = next(e for e in examples if e.label is not None and str(e.label) not in label_map)
        report.first_skipped.append(f"{first.path}:{first.line}: unknown label '{first.label}'")
        report.rows = len(kept)
    if not kept:
        raise UserError(f"{report.path}: no examples with a label the model knows ({report.summary()})")
    return kept
