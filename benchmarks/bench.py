"""The `berts bench` table as a script: `python benchmarks/bench.py [berts bench options]`.

Same options as `berts bench --help` (e.g. `--preset mini --seq 128 --batch 32 --json out.json`).
`--quick`: the tiny preset, 32 tokens, batch 4, one timed step (seconds; the numbers mean nothing).
See benchmarks/README.md for the recorded results and what each speed lever gave.
"""
import sys

from berts.cli import main

QUICK = ["--preset", "tiny", "--seq", "32", "--batch", "4", "--steps", "1", "--warmup", "1", "--threads", "1",
         "--only", "pretrain,finetune,infer", "--lengths", "fixed,real"]

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--quick" in args:  # the quick sizes first: options given after --quick still win
        i = args.index("--quick")
        args = args[:i] + QUICK + args[i + 1:]
    sys.exit(main(["bench", *args]))
