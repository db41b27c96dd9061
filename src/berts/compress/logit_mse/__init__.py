"""Logit regression (Ba & Caruana 2014): the student learns the teacher's logits by squared error
(task.py). The worked example of docs/extending/compression.md; registered in berts.compress.registry."""
