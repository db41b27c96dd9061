"""Model compression methods. Distillation: DistilBERT (distil.py) and TinyBERT (tinybert.py), each a
Task for the one engine (a frozen teacher, a trainable student and, for TinyBERT, a projection), their
losses in losses.py. Early exit: FastBERT / PABEE (fastbert.py). The runs that use them (``berts
distill``, ``berts finetune --early-exit``) are berts.runs.distill and berts.runs.early_exit."""
