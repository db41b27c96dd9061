"""TinyBERT (Jiao et al. 2020): embedding, attention-score, hidden-state and prediction-layer losses
on a uniform layer map (task.py; losses in berts.compress.losses). Registered in berts.compress.registry."""
