"""Early exit's command-line flags (berts predict / evaluate), apart from exits.py so that the
parsers are built without torch: `berts --help` and an argument error stay fast (tests/test_cli_fast.py).
Applying the flags to a model is fastbert.apply_exit_arguments."""
from __future__ import annotations

from berts.util.values import count, probability

# FastBERT's entropy rule and PABEE's patience rule (exits.py re-exports this)
RULES = ("entropy", "patience")


def add_exit_arguments(p) -> None:
    """--speed, --exit, --patience (berts predict / evaluate / compare)."""
    p.add_argument("--speed", type=probability, metavar="S",
                   help="early exit (a `berts finetune --early-exit` directory): leave at the first layer whose "
                        "normalised entropy is below S (0: the final classifier; 1: every example at layer 1)")
    p.add_argument("--exit", choices=RULES, default=None,
                   help="early-exit rule: entropy (FastBERT, with --speed; the default) or patience (PABEE, "
                        "with --patience)")
    p.add_argument("--patience", type=count, metavar="K",
                   help="--exit patience: leave once the prediction has stayed the same for K layers in a row")
