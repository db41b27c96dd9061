"""Inference: a fine-tuned classifier as a Python object, the one path `berts predict`,
`berts evaluate`, `berts export` and `berts bench --engines` serve through::

    clf = berts.Classifier.from_pretrained("runs/sst2/best")            # int8=True: dynamic int8
    preds = clf.predict(["a delightful film", "a dull one"])           # sorted by length inside
    preds[0].label, preds[0].probabilities                             # {"neg": 0.02, "pos": 0.98}
    clf.predict(["A man sleeps."], pairs=["Someone rests."])           # a sentence-pair model
    # regression: preds[0].value

Batches are made by the dataset code training uses (``ClassificationDataset``: its tokenizer
call, its truncation, ``pad_width``), in order of decreasing length (less padding per batch),
and the results come back in the input order. The fast paths are on (unpad, pack, the last
layer on [CLS] only), with or without int8.

int8 is ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear`` of the encoder and
pooler (by default weights int8 per output channel, activations quantized per batch on 8 bits;
schemes in berts.compress.transforms: per-channel, per-tensor, smooth); the classifier stays fp32
(it is an objective, not a plain nn.Linear, and it is tiny). The activations' scale is taken
per call over the batch's real tokens, so an int8 result depends (a little) on which examples
share its batch: the batch size is part of an int8 result. int8 changes the numbers: callers
that report an int8 result also report it against fp32 (``agreement`` below, and evaluate).
"""
from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from berts.compress.transforms import CALIBRATION_TEXTS, int8_scheme, quantize_int8  # int8's one place (quantize_int8 stays importable here)
from berts.errors import UserError


ENGINES = ("torch", "onnx")
ONNX_FILE, ONNX_INT8_FILE = "model.onnx", "model.int8.onnx"  # where `berts export DIR --onnx DIR/model.onnx [--int8]` writes


@dataclass
class Prediction:
    """One example's result: ``label`` and ``probabilities`` (classification) or ``value`` (regression)."""
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    exit_layer: int | None = None  # early exit (Classifier.early_exit): the layer the example left at


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch size must be a whole number >= 1, got {batch_size!r}")
    return batch_size


class Classifier:
    """A fine-tuned sequence classifier (or regressor), ready to serve."""

    def __init__(self, model, tokenizer, label_map, settings: dict, directory: str | None = None,
                 int8: bool | str = False):
        self.model, self.tokenizer, self.label_map = model, tokenizer, label_map
        self.settings = settings  # how the training data were read (columns, format, max_length)
        self.directory, self.int8 = directory, int8_scheme(int8)  # None, or the int8 scheme
        self.exit: dict | None = None  # early exit: {"rule", "speed", "patience"} (see early_exit)
        self.exit_layers: np.ndarray | None = None  # [N] of the last logits() call, with early exit
        self.session = None  # engine "onnx": an onnxruntime InferenceSession that computes the logits

    @classmethod
    def from_pretrained(cls, directory, int8: bool | str = False, device: str = "auto",
                        calibration=None, engine: str = "torch", threads: int | None = None) -> "Classifier":
        """Load a fine-tuned directory (berts' or transformers'). A directory that is not a
        classifier, or one whose classifier weights are missing (a head would be random), is a
        one-line UserError. ``int8``: dynamic int8 linear layers (CPU only, as torch's kernels):
        True or "per-channel", "per-tensor", or "smooth" with ``calibration`` (texts or Example
        rows, the first 256 used) -- see ``quantize``. ``engine="onnx"``: the logits come from
        onnxruntime running the directory's ``model.onnx`` (``berts export DIR --onnx DIR/model.onnx``;
        with ``int8``, its ``model.int8.onnx`` from ``--int8``), ``threads`` its intra-op threads;
        tokenization, batching and decoding stay berts'."""
        if engine not in ENGINES:
            raise UserError(f"engine {engine!r}: one of {', '.join(ENGINES)}")
        if engine == "onnx":
            if int8 not in (False, None, True):
                raise UserError(f"engine onnx: int8 is onnxruntime's own ({ONNX_INT8_FILE}); scheme {int8!r} is torch's")
            if str(device) not in ("auto", "cpu"):
                raise UserError(f"engine onnx runs on the CPU (onnxruntime's CPU provider); got device {device}")
            onnx = Path(directory) / (ONNX_INT8_FILE if int8 else ONNX_FILE)
            if not onnx.is_file():
                raise UserError(f"{onnx}: no such file; export it first: berts export {directory} --onnx "
                                f"{Path(directory) / ONNX_FILE}{' --int8' if int8 else ''}")
            clf = cls.from_pretrained(directory, device="cpu")
            clf.session = onnx_session(onnx, threads)
            clf.session_inputs = [i.name for i in clf.session.get_inputs()]  # once: a per-call lookup costs at batch 1
            clf.int8 = "onnx" if int8 else None
            return clf

        with warnings.catch_warnings(record=True) as caught:  # missing weights are an error below
            warnings.simplefilter("always")
            model, tokenizer, label_map, settings = load_classifier(directory, device)
        missing = sorted(set(getattr(model, "loading_info", {}).get("missing_keys") or []))
        if missing:
            shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
            raise UserError(f"{directory}: not a fine-tuned classifier: {len(missing)} weights are not in the "
                            f"checkpoint ({shown}); its predictions would come from random weights "
                            "(fine-tune it with `berts finetune --model DIR`)")
        for w in caught:  # anything else (unused checkpoint weights) is still said
            warnings.warn(w.message, w.category, stacklevel=2)
        if int8:
            if model.device.type != "cpu":
                raise UserError(f"int8 runs on the CPU (torch's dynamic int8 kernels); got device {model.device}")
        clf = cls(model, tokenizer, label_map, settings, str(directory))
        return clf.quantize(int8, calibration) if int8 else clf

    def quantize(self, scheme: bool | str = True, calibration=None, batch_size: int = 64) -> "Classifier":
        """int8 in place (berts.compress.transforms.quantize_int8; ``scheme`` one of INT8_SCHEMES,
        True: per-channel). "smooth" runs the fp32 model on the first 256 of ``calibration`` (texts,
        or Example rows for pairs) to set its scales."""
        run = None
        if calibration is not None:
            rows = [c if isinstance(c, Example) else Example(c, None, None, i + 1, "<calibration>")
                    for i, c in enumerate(list(calibration)[:CALIBRATION_TEXTS])]
            rows = [Example(e.text, e.text_pair, None, e.line, e.path) for e in rows]  # labels unused
            run = (lambda: self.logits(self.dataset(rows), batch_size)) if rows else None
        quantize_int8(self.model, scheme, calibrate=run)
        self.int8 = int8_scheme(scheme)
        return self

    # ------------------------------------------------------------------ properties
    @property
    def regression(self) -> bool:
        return self.label_map is None

    @property
    def labels(self) -> list[str] | None:
        return None if self.label_map is None else list(self.label_map.names)

    @property
    def max_length(self) -> int:

        return check_max_length(self.settings.get("max_length"), self.model.config.max_position_embeddings)

    # ------------------------------------------------------------------ running
    def dataset(self, examples, max_length: int | None = None):
        """A ClassificationDataset of ``berts.data.tables.Example`` rows (labels kept when they have them)."""

        return ClassificationDataset(examples, self.tokenizer, label_map=self.label_map,
                                     max_length=max_length or self.max_length, regression=self.regression)

    def early_exit(self, rule: str = "entropy", speed: float = 0.0, patience: int = 1) -> "Classifier":
        """Serve with early exit (a directory from `berts finetune --early-exit`): ``rule``
        "entropy" (leave when normalised entropy < ``speed``) or "patience" (PABEE: after
        ``patience`` agreeing layers in a row); see berts.compress.early_exit.exits. Each Prediction then
        carries ``exit_layer``, and ``exit_layers`` the last ``logits`` call's. ``rule=None``: off."""
        if rule is None:
            self.exit = None
            return self

        if self.session is not None:
            raise UserError(f"{self.directory}: early exit runs in berts' torch engine, not onnx")
        if not isinstance(self.model, BertForSequenceClassificationWithExits):
            raise UserError(f"{self.directory}: no early-exit classifiers in this model (train them with "
                            "`berts finetune --early-exit --model DIR`)")
        check_rule(rule, speed, patience)
        self.exit = {"rule": rule, "speed": float(speed), "patience": int(patience)}
        return self

    def forward_batch(self, batch: dict):
        """Logits [B, C] of one padded batch (on the model's device). With early exit, the model
        runs ``bert.embed`` / ``bert.run_layer`` / ``state.select`` and returns each row's logits
        at the layer it leaves at, and the layers [B]: ``(logits, layers)``."""
        if self.session is not None:  # engine onnx: [B, S] int64 arrays in, logits [B, C] out
            feed = {k: batch[k].numpy() for k in self.session_inputs}
            return torch.from_numpy(self.session.run(["logits"], feed)[0])
        inputs = {k: batch[k].to(self.model.device) for k in ("input_ids", "attention_mask", "token_type_ids")}
        if self.exit is not None:
            return self.model.early_exit(**inputs, **self.exit)
        return self.model(**inputs).logits

    def autocast(self):
        """Serving's precision: bf16 autocast on a GPU, fp32 on the CPU."""
        if self.model.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def logits(self, dataset, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Logits [N, C] (regression [N, 1]) of every example of ``dataset``, in its order.
        Batches are taken longest first (less padding in each); the order is restored after
        (berts.model.runner's loop, the one evaluation during training uses too). ``progress``: a
        bar on stderr, one tick per batch (off by default in the API; the commands follow
        berts.util.progress's rule: a terminal, not --quiet)."""

        check_batch_size(batch_size)
        order = np.argsort(-dataset.lengths, kind="stable")  # longest first; ties keep input order
        out = rows(self.model, dataset, forward=self.forward_batch, batch_size=batch_size, order=order,
                   device=self.model.device, autocast=self.autocast, inference=True,
                   progress="predict" if progress else None)
        logits, self.exit_layers = out if self.exit is not None else (out, None)
        return logits

    @property
    def pair_model(self) -> bool | None:
        """True: trained on sentence pairs; False: on one sentence; None: unknown (no berts settings)."""
        if not self.settings or "text_column" not in self.settings:
            return None
        return self.settings.get("pair_column") is not None

    def predict(self, texts, pairs=None, batch_size: int = 64, max_length: int | None = None) -> list[Prediction]:
        """Predictions for ``texts`` (a list of strings; ``pairs``: the second sentences of a
        pair model), in the order given."""

        if isinstance(texts, str):
            raise UserError("predict takes a list of texts, not one string (wrap it: [text])")
        texts = list(texts)
        pairs = None if pairs is None else list(pairs)
        if pairs is not None and len(pairs) != len(texts):
            raise UserError(f"{len(texts)} texts but {len(pairs)} pairs")
        if not texts:
            return []
        for i, t in enumerate(texts if pairs is None else texts + pairs):
            if not isinstance(t, str) or not t.strip():
                which = "text" if i < len(texts) else "pair"
                raise UserError(f"{which} {i % len(texts)} is empty or not a string: {t!r}")
        pair_model = self.pair_model
        if pair_model is False and pairs is not None:
            raise UserError(f"{self.directory or 'this model'}: a one-sentence model (trained without a pair column); "
                            "pairs= would be read as text it never saw: predict(texts) only")
        if pair_model and pairs is None:
            raise UserError(f"{self.directory or 'this model'}: a sentence-pair model (trained on "
                            f"{self.settings.get('text_column')!r} and {self.settings.get('pair_column')!r}): "
                            "give the second sentences as pairs=")
        examples = [Example(t, None if pairs is None else pairs[i], None, i + 1, "<input>")
                    for i, t in enumerate(texts)]
        logits = self.logits(self.dataset(examples, max_length), batch_size)
        return self.decode(logits, self.exit_layers if self.exit is not None else None)

    def decode(self, logits: np.ndarray, exit_layers: np.ndarray | None = None) -> list[Prediction]:
        if self.regression:
            return [Prediction(value=float(v)) for v in logits[:, 0]]
        probs = torch.from_numpy(logits).softmax(-1).numpy()
        names = self.label_map.names
        layers = [None] * len(probs) if exit_layers is None else [int(x) for x in exit_layers]
        return [Prediction(label=names[int(k)], probabilities={n: float(x) for n, x in zip(names, p)}, exit_layer=e)
                for p, k, e in zip(probs, probs.argmax(-1), layers)]


def onnx_session(path, threads: int | None = None):
    """An onnxruntime CPU session of ``path`` (the engine "onnx"), or a one-line error."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"{path}: the onnx engine needs onnxruntime (pip install 'berts[onnx]')") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-wait after a call
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types for a corrupt graph
        raise UserError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:200]})") from None


def agreement(a: np.ndarray, b: np.ndarray, regression: bool) -> dict:
    """How far b's logits are from a's: classification: the share of equal argmax labels and the
    largest probability difference; regression: the largest absolute difference."""
    if regression:
        return {"max_abs_diff": float(np.abs(a[:, 0] - b[:, 0]).max())}
    pa, pb = (torch.from_numpy(x).softmax(-1).numpy() for x in (a, b))
    return {"label_agreement": float((pa.argmax(-1) == pb.argmax(-1)).mean()),
            "max_prob_diff": float(np.abs(pa - pb).max())}


# The early-exit task model (FastBERT), registered for berts.load / Classifier.from_pretrained
# whenever berts is imported; last, as it builds on the pieces above.
import berts.compress.early_exit.exits  # noqa: E402,F401
from berts.compress.early_exit.exits import BertForSequenceClassificationWithExits, check_rule
from berts.data.classification import ClassificationDataset
from berts.data.tables import Example
from berts.data.tables import check_max_length
from berts.model.runner import rows
from berts.serve.load import load_classifier
