"""Engines behind an Encoder: the same tokenizer, batching and Pooling, another encoder forward.

* ``torch`` (the default): berts.embed.encoder.Encoder itself.
* ``int8``: the same, with the encoder's Linear layers quantized to int8 (torch dynamic
  quantization, berts.compress.transforms.quantize_int8: per-channel by default, or smooth,
  calibrated on the input's first 256 texts). CPU only.
* ``onnx``: a model directory that holds ``model.onnx`` (`berts export DIR --onnx DIR/model.onnx`
  of a bare encoder: input_ids, attention_mask, token_type_ids -> last_hidden_state [B, S, H]) runs
  the encoder in onnxruntime; pooling stays the berts module, on the padded [B, S, H] states.

``load_engine(directory, ...)`` picks ``onnx`` when ``model.onnx`` is in the directory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from berts.compress.transforms import CALIBRATION_TEXTS, quantize_int8
from berts.embed.encoder import Encoder
from berts.errors import UserError
from berts.util.device import resolve_device

ONNX_FILE = "model.onnx"


class OnnxEncoder(Encoder):
    """An Encoder whose encoder forward is an onnxruntime session (inference only)."""

    session = None

    def attach(self, path: Path, threads: int | None = None) -> OnnxEncoder:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError(f"{path}: running an ONNX model needs onnxruntime (pip install 'berts[onnx]')") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a corrupt graph
            raise UserError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        self._inputs = {i.name for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if "last_hidden_state" not in outputs:  # a task model's export (logits): no token states to pool
            raise UserError(f"{path}: this ONNX graph outputs {', '.join(outputs)}, not last_hidden_state (the "
                            "export of a task model); embedding needs an encoder's export (berts export ENCODER_DIR "
                            "--onnx ENCODER_DIR/model.onnx), or remove the file to use the torch weights")
        return self

    def forward(self, input_ids, attention_mask, normalize=None):
        feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy(),
                "token_type_ids": np.zeros_like(input_ids.numpy())}
        hidden = self.session.run(["last_hidden_state"], {k: v for k, v in feed.items() if k in self._inputs})[0]
        return self.pooling(torch.from_numpy(hidden), attention_mask, normalize=normalize)  # [B, S, H] -> [B, D]


def quantize_int8_per_channel(model):
    """Kept for callers of before: berts.compress.transforms.quantize_int8(model, "per-channel")."""
    return quantize_int8(model, "per-channel")


def load_engine(directory, int8: bool | str = False, pooling=None, normalize=None, max_seq_length=None,
                device: str = "cpu", threads: int | None = None, calibration=None) -> Encoder:
    """The Encoder for ``directory``: ONNX when it holds model.onnx, else torch (int8 with ``int8``:
    True or a scheme of berts.compress.transforms.INT8_SCHEMES; "smooth" calibrates on the first
    256 texts of ``calibration``)."""
    directory = Path(directory)
    onnx = directory / ONNX_FILE
    if onnx.is_file():
        if int8:
            raise UserError(f"{directory}: --int8 is for the torch engine; quantize the ONNX graph with "
                            "`berts export --int8` instead")
        enc = Encoder.from_pretrained(directory, normalize=normalize, pooling=pooling, max_seq_length=max_seq_length)
        enc.__class__ = OnnxEncoder
        return enc.attach(onnx, threads)
    enc = Encoder.from_pretrained(directory, normalize=normalize, pooling=pooling, max_seq_length=max_seq_length)
    if int8:
        if device not in ("cpu", "auto"):
            raise UserError("--int8 runs on the CPU only (torch dynamic quantization)")
        texts = list(calibration or [])[:CALIBRATION_TEXTS]
        quantize_int8(enc.model, int8, calibrate=(lambda: enc.encode(texts)) if texts else None)
        return enc
    if device not in ("cpu", None):

        enc.to(resolve_device(device))
    return enc
