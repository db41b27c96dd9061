"""Embedding distillation: a student encoder learns a sentence encoder's embeddings by squared
error (task.py). Registered in berts.compress.registry as ``embedding``."""
