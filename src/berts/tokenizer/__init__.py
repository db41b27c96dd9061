"""BERT's WordPiece tokenizer on the ``tokenizers`` library, one job per module.

backend.py   the ``tokenizers`` pipeline set up as BERT's; the special tokens' names
training.py  WordPieceTrainer on the corpus reader -> a backend
files.py     the Hugging Face directory (and a bare vocab.txt): read and write
vocab.py     WordPieceVocab: the trained vocabulary (ids, specials, tokenize, decode, batch ids)
hf_call.py   HFCall: transformers' ``encode`` / ``__call__`` (padding, truncation, pairs, tensors)
wordpiece.py Tokenizer = HFCall + WordPieceVocab, and load_tokenizer (what the commands use)

Nothing is imported here: importing one of them does not import the rest.
"""
