"""The `berts bench` table as a script: `python benchmarks/bench.py [berts bench options]`.

Same options as `berts bench --help` (e.g. `--preset mini --seq 128 --batch 32 --json out.json`).
See benchmarks/README.md for the recorded results and what each speed lever gave.
"""
import sys

from berts.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
