"""Model compression methods, one folder each: distilbert/ and tinybert/ (distillation Tasks for the
one engine: a frozen teacher, a trainable student), logit_mse/ (the smallest one, the worked example
of docs/extending/compression.md), early_exit/ (FastBERT / PABEE exits). registry.py maps `berts
distill --method` to the distillation methods; students.py loads the teacher and makes students;
losses.py holds the distillation losses; prune.py cuts a smaller model out of a bigger one;
transforms.py: int8 and pruning as transforms of a saved directory. The runs that use them (``berts
distill``, ``berts finetune --early-exit``) are berts.runs.distill and berts.runs.early_exit."""
