"""Loading a fine-tuned directory for serving: the model, its tokenizer and the settings it was trained with."""
from __future__ import annotations

from berts.errors import UserError
from berts.tasks.registry import TASKS  # torch-free: what each fine-tuning task's directory is served by
from berts.data.labels import LabelMap
from berts.hf import load
from berts.hf.kinds import model_kind, require_kind
from berts.model.heads import BertForSequenceClassification
from berts.tokenizer.wordpiece import load_tokenizer
from berts.util.device import resolve_device


def served_by(directory) -> str | None:
    """The module serving ``directory`` in ``berts predict`` / ``berts evaluate`` when it is not a
    classifier: its task's ``serve`` (config.json's fine-tuning settings), or for a directory
    transformers wrote, its architecture's task (``...ForQuestionAnswering`` -> qa). None: the
    classifier path (which says what else a directory is). Reads config.json only (no torch)."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not a directory, or no config: the classifier path says what is wrong
    settings = (config.get("finetune_data") or config.get("berts_finetune")) if isinstance(config, dict) else None
    task = (settings or {}).get("task")
    if task is None:
        arch = " ".join(config.get("architectures") or []) if isinstance(config, dict) else ""
        task = "qa" if "ForQuestionAnswering" in arch else None
    spec = TASKS.get(task)
    return spec.serve if spec is not None and spec.serve not in (None, "classifier") else None


def load_classifier(directory, device: str = "auto"):
    """(model, tokenizer, label_map or None, settings) of a fine-tuned directory, ready to serve."""

    task = model_kind(directory).task  # config.json only: a wrong kind is refused before the weights load
    spec = TASKS.get(task)
    if spec is not None and spec.serve != "classifier":  # a fine-tuned task that Classifier does not read
        raise UserError(f"{directory}: a {task} model (berts finetune --task {task}): use `{spec.then}`")
    require_kind(directory, "classifier", "a Classifier (berts predict / evaluate)")
    model = load(directory)
    if not isinstance(model, BertForSequenceClassification):
        raise UserError(f"{directory}: a {type(model).__name__}, not a fine-tuned classification model "
                        "(fine-tune it first with `berts finetune`)")
    tokenizer = load_tokenizer(directory)
    label_map = None if model.is_regression else LabelMap.from_config(model.config)
    settings = dict(model.config.finetune_data or {})
    model.to(resolve_device(device)).eval()
    # serving: linear layers on real tokens only, packed attention rows, last layer on [CLS] only
    model.set_fast_path(unpad=True, pack=True, sparse_output=True)
    return model, tokenizer, label_map, settings
