"""Embedding distillation (Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings
Multilingual using Knowledge Distillation", its MSE objective): the student's sentence embedding
learns the teacher's, by mean squared error, with the teacher's own pooling.

General distillation on `berts prepare` shards (``--data SHARDS``): teacher and student are bare
encoders; each batch's texts (with their MLM masking: a little input noise, the same for both) go
through both, each pooled as the teacher's directory says (its 1_Pooling; mean pooling for a plain
BERT teacher), and the loss is sentence-transformers' MSELoss: the mean over rows and dimensions
of (student - teacher)^2 (the teacher's embedding before any normalisation). A student of another
width gets a projection to the teacher's (trained, checkpointed, not in final/). The saved
student is a sentence-transformers directory with the teacher's pooling, normalisation and window.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from berts.embed.encoder import Encoder
from berts.embed.pooling import Pooling
from berts.tasks.base import ENCODER_INPUTS, Task, model_inputs
from berts.embed.st_format import is_st_dir, read_st_dir
from berts.embed.st_format import st_files


def teacher_pooling(directory) -> tuple[tuple[str, ...], bool, int | None]:
    """(modes, normalize, max_seq_length) of a teacher directory (a plain BERT one: mean)."""

    if directory and is_st_dir(directory):
        st = read_st_dir(directory)
        return st.modes, st.normalize, st.max_seq_length
    return ("mean",), False, None


class EmbeddingDistillTask(Task):
    name = "embedding"
    loss_parts = ("mse",)
    metric_parts = {"cos": "mse"}  # the cosine of student and teacher embeddings, averaged over rows

    def __init__(self, student, teacher, train_dataset, *, modes=("mean",), normalize=False, max_seq_length=None):
        self.student, self.teacher = student, teacher
        self.train_dataset = train_dataset
        student.pooler = None  # unused here (and DDP wants every trainable parameter used)
        s, t = student.config.hidden_size, teacher.config.hidden_size
        self.proj = nn.Linear(s * len(modes), t * len(modes)) if s != t else None
        self.s_enc = Encoder(student, None, Pooling(s, modes), max_seq_length)
        self.t_enc = Encoder(teacher, None, Pooling(t, modes), max_seq_length)
        self.modes, self.normalize = tuple(modes), bool(normalize)
        self.max_seq_length = self.s_enc.max_seq_length

    @classmethod
    def from_config(cls, k, student, teacher, train_dataset, dev_dataset=None, *, mode, evaluator=None,
                    metric=None):
        modes, normalize, window = teacher_pooling(k.teacher if Path(str(k.teacher)).is_dir() else None)
        return cls(student, teacher, train_dataset, modes=modes, normalize=normalize, max_seq_length=window)

    def modules(self):
        out = {"model": self.student}
        if self.proj is not None:
            out["proj"] = self.proj  # checkpointed, resumed, not in final/ or best/
        return out

    def frozen_modules(self):
        return {"teacher": self.teacher}

    def saved_modules(self):
        return {"model": ""}

    def counts(self, batch):
        return {"mse": int(batch["input_ids"].shape[0])}

    def loss(self, modules, batch):
        x = {k: v for k, v in model_inputs(batch).items() if k in ENCODER_INPUTS}
        s = self.s_enc(x["input_ids"], x["attention_mask"], normalize=False)  # [B, D_s]
        if self.proj is not None:
            s = modules.proj(s)  # [B, D_t]
        with torch.no_grad():
            t = self.t_enc(x["input_ids"], x["attention_mask"], normalize=False)  # [B, D_t]
        mse = (s.float() - t.float()).pow(2).mean(-1).mean()  # ST's MSELoss: mean over rows and dimensions
        cos = torch.cosine_similarity(s.detach().float(), t.float(), dim=-1).mean()
        return {"mse": mse}, {"cos": cos}

    def extra_files(self):

        return st_files(self.student.config.hidden_size, self.modes, self.normalize, self.max_seq_length)

    def describe(self) -> str:
        proj = f", projection {self.proj.in_features}->{self.proj.out_features}" if self.proj is not None else ""
        return (f"embedding distillation: MSE of the student's {'+'.join(self.modes)}-pooled embedding to the "
                f"teacher's{proj}")
