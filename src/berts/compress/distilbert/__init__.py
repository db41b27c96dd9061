"""DistilBERT (Sanh et al. 2019): soft targets, the student's own loss and the cosine of the last
hidden states (task.py; losses in berts.compress.losses). Registered in berts.compress.registry."""
