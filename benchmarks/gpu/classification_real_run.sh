# A full-data classification run on a lent GPU (repo root): bash benchmarks/gpu/classification_real_run.sh
# GPU figures of the Gaussian derivative models first, then the default GaussDerNet (paper preset, fewer
# epochs, batch 64, bf16 autocast) and the CNN baseline (paper preset) on the full rescaled Fashion-MNIST,
# concurrently. The runs are stopped after BUDGET seconds (keep it well inside the device call's limit);
# logs go to $OUT as they are written, and the run folders (without checkpoints) to $OUT/clsruns.tar.gz.
. benchmarks/gpu/setup.sh
set +e -x
EPOCHS=${EPOCHS:-5}
BUDGET=${BUDGET:-400}
SECONDS=0
sb build-datasets --dataset fashion-mnist --quiet
python3 benchmarks/models.py --device cuda --threads 16 --batch 64 --models 'gaussder*' --no-njet --no-dense \
  --repeats 10 --layer-repeats 20 --json "$OUT/models_cuda_gaussder.json"
timeout "$BUDGET" python3 -m scalebench.cli evaluate --model gaussdernet --preset paper --epochs "$EPOCHS" \
  --batch-size 64 --amp --num-workers 6 --device cuda --progress plain --out /tmp/clsruns \
  > "$OUT/log_gaussdernet.txt" 2>&1 &
timeout "$BUDGET" python3 -m scalebench.cli evaluate --model cnn --preset paper --amp --num-workers 4 --device cuda \
  --progress plain --out /tmp/clsruns > "$OUT/log_cnn.txt" 2>&1 &
wait
echo "all took $SECONDS s"
tar czf "$OUT/clsruns.tar.gz" --exclude='*.safetensors' -C /tmp clsruns
