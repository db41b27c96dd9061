"""Sentence embeddings: pooling, sentence-transformers directories, the Encoder, losses, metrics.

pooling.py    Pooling: token states -> sentence embeddings (cls, mean, max, mean-sqrt-len, ...)
st_format.py  sentence-transformers directories, read and written
encoder.py    Encoder: from_pretrained(dir), encode(texts) -> numpy [n, dim]
losses.py     multiple-negatives ranking (DDP-gathered negatives), SimCSE, CoSENT, cosine MSE
metrics.py    STS (Spearman, Pearson of cosine) and retrieval (BEIR layout; recall@k, MRR, nDCG, MAP)

Nothing is imported here: importing one of them does not import the rest.
"""
