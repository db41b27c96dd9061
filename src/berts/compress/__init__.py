"""Model compression. Distillation: DistilBERT (distil.py) and TinyBERT (tinybert.py), each a Task
for the one engine (a frozen teacher, a trainable student and, for TinyBERT, a projection), their
losses in losses.py; ``berts distill`` builds the run (distil.distillation_run). Early exit:
FastBERT / PABEE (fastbert.py)."""
