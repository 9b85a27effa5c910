# GPU figures of docs/performance.md and a CUDA smoke run of both protocols (run on a lent GPU machine, repo root):
#   bash benchmarks/gpu/throughput.sh
# Writes JSON under $OUT. Timings are best-of-N with torch.cuda.synchronize() around each call.
. benchmarks/gpu/setup.sh
set +e -x
sb build-datasets --dataset fashion-mnist --quiet
sb build-datasets --dataset fashion-mnist-seg --limit 256 --quiet
# CUDA smoke runs of both protocols (1 epoch, small subsets): the code paths, not the figures
sb evaluate --model gaussdernet --limit 1024 --epochs 1 --batch-size 64 --device cuda --progress none --out /tmp/smoke
sb evaluate --model gaussdernet --limit 1024 --epochs 1 --batch-size 64 --device cuda --amp --progress none --out /tmp/smoke
for m in unet njet-unet; do
  sb evaluate --model $m --dataset fashion-mnist-seg-limit256 --train-scales 4 --preset paper --epochs 2 \
    --batch-size 8 --eval-batch-size 16 --device cuda --progress none --out /tmp/smoke
done
python3 - <<'PY'
import json, glob
for p in sorted(glob.glob("/tmp/smoke/**/results.json", recursive=True)):
    r = json.load(open(p))
    print(p.split("/tmp/smoke/")[1], json.dumps(r.get("timings")), r.get("environment", {}).get("device"))
PY
python3 benchmarks/models.py --device cuda --threads 16 --batch 64 --repeats 10 --layer-repeats 20 --json $OUT/models_cuda_b64.json
python3 benchmarks/models.py --device cuda --threads 16 --batch 256 --repeats 10 --no-layer --no-njet --json $OUT/models_cuda_b256.json
python3 benchmarks/models.py --device cuda --threads 16 --batch 256 --repeats 10 --no-layer --no-njet --amp --json $OUT/models_cuda_b256_amp.json
