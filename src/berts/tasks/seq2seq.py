"""Sequence to sequence with UniLM's prefix LM: source -> target, scored by ROUGE-L and BLEU."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from berts.tasks.base import ModelTask
from berts.metrics import corpus_bleu, rouge_l
from berts.model.runner import run
from berts.serve.generate import generate_ids


# ----------------------------------------------------------------------------- generation
class Seq2SeqTask(ModelTask):
    """Fine-tuning for generation (``finetune --task seq2seq``): a BertForUnifiedLM on a
    data.seq2seq.Seq2SeqDataset, next-token loss on the target under the seq2seq mask. Evaluation:
    ``loss`` and ``token_acc`` (teacher-forced, over every target token of the dev set), and
    ``bleu`` / ``rouge_l`` (berts.metrics, on whitespace words) of greedy generations for the
    first ``eval_generate`` dev examples (berts.serve.generate, with the KV cache)."""

    name = "seq2seq"

    def __init__(self, model, train_dataset, dev_dataset=None, *, metric: str | None = None,
                 eval_batch_size: int = 64, eval_generate: int = 200, tokenizer=None):
        self.model, self.train_dataset, self.dev_dataset = model, train_dataset, dev_dataset
        self.metric = metric or "rouge_l"
        self.eval_batch_size, self.eval_generate, self.tokenizer = eval_batch_size, eval_generate, tokenizer

    @torch.no_grad()
    def evaluate(self, engine):
        if self.dev_dataset is None:
            return None

        model, ds = self.model, self.dev_dataset
        loss = correct = n = 0.0
        for inputs, out in run(model, ds, batch_size=self.eval_batch_size, prepare=self.inputs,
                               device=engine.device, autocast=engine.autocast):
            logits, labels = out.lm_logits.float(), inputs["lm_labels"]
            loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct += float((logits.argmax(-1) == labels).sum())
            n += labels.numel()
        metrics = {"loss": loss / max(n, 1), "token_acc": correct / max(n, 1)}
        if self.tokenizer is not None and self.eval_generate:
            hyps, refs = [], []
            for i in range(min(self.eval_generate, len(ds))):  # generate_ids: eval mode of its own, put back after
                ids = generate_ids(model, ds.source_ids(i), mode="seq2seq", eos_token_id=self.tokenizer.sep_id,
                                   max_new_tokens=ds.max_target_length)
                hyps.append(self.tokenizer.decode(ids).split())
                refs.append(self.tokenizer.decode(self.tokenizer.encode_ids_batch([ds.targets[i]])[0]).split())
            metrics["bleu"] = corpus_bleu(hyps, refs)
            metrics["rouge_l"] = rouge_l(hyps, refs)
        return metrics

    def describe(self) -> str:
        return f"seq2seq LM (next-token on the target); bleu / rouge_l on {self.eval_generate} dev generations"
