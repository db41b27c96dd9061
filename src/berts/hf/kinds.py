"""What kind of model a directory holds, from its config.json alone (``architectures`` and berts'
own keys), so that a command that needs one kind refuses another in one line BEFORE any weight is
read: generation needs a language model trained to generate, distillation a teacher with the
task's head, predict/evaluate that task's head, general distillation an MLM head.

    kind = require_kind("runs/sst2/best", "classifier", "berts predict")

The one check every model-consuming command runs (generate, distill, predict, evaluate, augment,
the Python API's Classifier); the loaders keep their isinstance checks as a second line."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from berts.errors import UserError
from berts.hf.formats import architecture_classes
from berts.hf.io import _read_config_json
from berts.hf.io import load_config
from berts.model.electra import ElectraForMaskedLM
from berts.model.heads import (BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertForUnifiedLM)
from berts.model.heads import architectures
from berts.util.fileio import recover_dir

# config.json keys berts writes (model.heads, runs/pretrain.py, compress/early_exit)
LM_MODE_KEY = "berts_lm_mode"
EXIT_KEY = "berts_early_exit"
SETTINGS_KEY = "berts_finetune"


def _setting(config, typed: str, key: str):
    """A berts setting of a BertConfig: its typed field where this berts has one, else the
    ``berts_*`` key of ``extra`` (config.json written before the field existed, or by an older
    berts: both read the same)."""
    value = getattr(config, typed, None)
    return value if value is not None else (config.extra or {}).get(key)


@dataclass
class ModelKind:
    directory: str
    architecture: str  # config.json's architectures[0] ("BertModel" when it names none)
    cls: type | None  # berts' class for it (None: not supported)
    config: dict = field(repr=False, default_factory=dict)  # config.json as written
    bert: object = field(repr=False, default=None)  # the BertConfig read from it (None: not readable)

    @property
    def heads(self) -> set[str]:

        c, out = self.cls, set()
        if c is None:
            return out
        if issubclass(c, (BertForMaskedLM, BertForPreTraining, BertForUnifiedLM, ElectraForMaskedLM)):
            out.add("mlm")
        if issubclass(c, BertForSequenceClassification):
            out.add("classifier")
        return out

    def _get(self, typed: str, key: str):
        return _setting(self.bert, typed, key) if self.bert is not None else self.config.get(key)

    @property
    def lm_mode(self) -> str | None:
        return self._get("lm_mode", LM_MODE_KEY)

    @property
    def early_exit(self):
        return self._get("early_exit", EXIT_KEY)

    @property
    def task(self) -> str | None:
        return (self._get("finetune_data", SETTINGS_KEY) or {}).get("task")

    @property
    def regression(self) -> bool:
        return self.config.get("problem_type") == "regression" or self.config.get("num_labels") == 1 \
            and "classifier" in self.heads

    def describe(self) -> str:
        """What it is, in the words of a user: 'a BertForSequenceClassification (a 2-label classifier)'."""
        heads = self.heads
        if "classifier" in heads:
            what = "a regression model" if self.regression else f"a {self.config.get('num_labels') or len(self.config.get('id2label') or {}) or 2}-label classifier"
            if self.early_exit:
                what = "an early-exit " + what[2:]
            if self.task and self.task != "classification":
                what += f" fine-tuned for {self.task}"
        elif "mlm" in heads:
            what = (f"a language model trained {self.lm_mode}" if self.lm_mode
                    else "a masked language model never trained to generate (no berts_lm_mode in config.json)")
        elif self.cls is not None and self.cls.__name__ == "BertModel":
            what = "a bare encoder, no task head"
        else:
            what = "neither an MLM nor a classification head"  # e.g. ELECTRA's discriminator
        return f"a {self.architecture} ({what})"


def model_kind(directory) -> ModelKind:
    """The kind of ``directory``'s model, read from config.json only (no weights)."""

    path = Path(directory)
    recover_dir(path)
    if not path.exists():
        raise UserError(f"{path}: no such model directory")
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model directory (no config.json)")
    config = _read_config_json(path / "config.json")
    archs = config.get("architectures") or ["BertModel"]
    name = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else "BertModel"
    cls = architectures().get(architecture_classes().get(name, name))
    try:  # the typed settings (lm_mode, finetune_data, early_exit), however config.json spells them

        bert = load_config(path / "config.json")
    except UserError:
        bert = None  # the loader says what is wrong with it, in its own words
    return ModelKind(str(directory), name, cls, config, bert)


# need -> (the test, what the command needs, in words)
NEEDS = {
    "generation": (lambda k: "mlm" in k.heads and k.lm_mode is not None,
                   "a language model trained to generate (berts pretrain --set data.objective=clm|seq2seq|unilm, "
                   "or berts finetune --task seq2seq)"),
    "mlm": (lambda k: "mlm" in k.heads, "a model with an MLM head (a pretrained BertForMaskedLM/ForPreTraining)"),
    "classifier": (lambda k: "classifier" in k.heads,  # which tasks a Classifier serves: tasks.registry's
                   "a fine-tuned sequence classifier (berts finetune)"),
    "classification": (lambda k: "classifier" in k.heads and not k.regression and k.task in (None, "classification"),
                       "a classifier of labels fine-tuned with `berts finetune` (not a regression model)"),
    "encoder": (lambda k: k.cls is not None, "a BERT model directory"),
}


def require_kind(directory, need: str, command: str) -> ModelKind:
    """``directory``'s kind, or a one-line UserError naming what it is and what ``command`` needs."""
    kind = model_kind(directory)
    test, words = NEEDS[need]
    if kind.cls is None:  # the loader names the supported architectures
        return kind
    if not test(kind):
        raise UserError(f"{directory}: {kind.describe()}; {command} needs {words}")
    return kind
