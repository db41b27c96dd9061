set -e
cd /work/wt/reliab30
export PYTHONPATH=$PWD/src OMP_NUM_THREADS=1
M=$(/work/main/.venv/bin/python -c "from berts.data import corpora; print(corpora.en_minilm())")
D=/root/.cache/berts/corpora/en-rotten-tomatoes-0
/work/main/.venv/bin/python -m berts finetune --model $M --train $D/train.tsv --dev /tmp/r30_ft/dev500.tsv --text-column text --label-column label --out /tmp/r30_ft/run --budget 6m --lr 5e-5 --batch-size 32 --max-length 64 --set impl.threads=1 --set log.progress=none --set log.tensorboard=false --overwrite
for s in per-tensor per-channel smooth; do
  echo "== $s"
  /work/main/.venv/bin/python -m berts evaluate /tmp/r30_ft/run/best $D/test.tsv --int8 $s --quiet
done
