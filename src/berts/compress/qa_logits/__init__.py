"""Logit distillation for extractive QA (task.py): DistilBERT's SQuAD recipe on start/end logits.
Registered in berts.compress.registry as ``qa-logits``."""
