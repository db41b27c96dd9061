"""A ``tokenizers.Tokenizer`` set up exactly as BERT's, and the names of BERT's special tokens.

What every other module of this package builds on: ``BertNormalizer`` (control characters removed,
each CJK character its own word, optional lowercasing / accent stripping), ``BertPreTokenizer``,
a ``WordPiece`` model with ``##`` continuation pieces, a ``[CLS] A [SEP] B [SEP]`` template and
the WordPiece decoder. No berts state here: functions from settings to a backend.
"""
from __future__ import annotations

from tokenizers import Tokenizer as Backend
from tokenizers import decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)  # ids 0..4 in a trained vocabulary
ROLES = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")  # transformers' names for them
DEFAULT_NAMES = dict(zip(ROLES, SPECIAL_TOKENS))  # role -> token string
CONTINUATION_PREFIX = "##"
MAX_INPUT_CHARS_PER_WORD = 200  # Google BERT's value; a longer word becomes [UNK]
DEFAULT_MODEL_MAX_LENGTH = 512


def wordpiece_model(vocab: dict[str, int] | None = None, unk_token: str = UNK) -> WordPiece:
    """The WordPiece model with BERT's settings (``vocab=None``: an empty one, for the trainer)."""
    kw = dict(unk_token=unk_token, continuing_subword_prefix=CONTINUATION_PREFIX,
              max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD)
    return WordPiece(vocab, **kw) if vocab is not None else WordPiece(**kw)


def bert_pipeline(backend: Backend, *, lowercase: bool, strip_accents: bool | None,
                  tokenize_chinese_chars: bool = True) -> None:
    """Normalizer, pre-tokenizer and decoder as BERT's (the post-processor needs ids: see
    :func:`finish`)."""
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=strip_accents, lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)


def finish(backend: Backend, names: dict[str, str], vocab: dict[str, int]) -> Backend:
    """Register the five specials (never split, skipped by decode) and the [CLS] A [SEP] B [SEP]
    template. ``names``: role -> token string; ``vocab``: token -> id (holds every special)."""
    backend.add_special_tokens([names[r] for r in ROLES])
    cls_token, sep_token = names["cls_token"], names["sep_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, vocab[cls_token]), (sep_token, vocab[sep_token])],
    )
    return backend


def bert_backend(vocab: dict[str, int], names: dict[str, str], *, lowercase: bool = True,
                 strip_accents: bool | None = None, tokenize_chinese_chars: bool = True) -> Backend:
    """A BERT WordPiece backend (like tokenizers' BertWordPieceTokenizer) over ``vocab`` (token -> id),
    whose specials are ``names`` (role -> token string, all in ``vocab``)."""
    backend = Backend(wordpiece_model(vocab, unk_token=names["unk_token"]))
    bert_pipeline(backend, lowercase=lowercase, strip_accents=strip_accents,
                  tokenize_chinese_chars=tokenize_chinese_chars)
    return finish(backend, names, vocab)
