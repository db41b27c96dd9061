"""Loading a fine-tuned directory for serving: the model, its tokenizer and the settings it was trained with."""
from __future__ import annotations

from berts.errors import UserError
from berts.tasks.registry import TASKS  # torch-free: what each fine-tuning task's directory is served by


def load_classifier(directory, device: str = "auto"):
    """(model, tokenizer, label_map or None, settings) of a fine-tuned directory, ready to serve."""
    from berts.data.labels import LabelMap
    from berts.hf import load
    from berts.model.heads import BertForSequenceClassification
    from berts.tokenizer.wordpiece import load_tokenizer
    from berts.util.device import resolve_device

    from berts.hf.kinds import model_kind, require_kind

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
