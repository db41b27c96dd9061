import sys, os, json
import berts.model.attention as A
A.SHORT_CPU = int(sys.argv[1])
from berts.cli import main
cache = os.path.expanduser("~/.cache/berts")
rc = main(["compare", "en/teacher/best", "en/distilbert/best", "en/tinybert/best", "--eval-file", f"{cache}/corpora/en-rotten-tomatoes-0-v1/test.tsv", "--out", f"/tmp/cmp{sys.argv[1]}_{sys.argv[2]}", "--repeats", "3", "--latency-examples", "32", "--overwrite"])
