# The segmentation track's real run (docs/segmentation.md) on a GPU (repo root):  bash benchmarks/gpu/segmentation_real_run.sh
# U-Net and N-Jet U-Net (paper widths), trained on the s=1 and s=4 training sets of the real Fashion-MNIST
# segmentation set, four runs at once on the one GPU. The number of epochs is planned from step times
# measured first (plan_epochs.py), so that everything ends inside one 10-minute device call. Results
# (without checkpoints) come back in $OUT/segruns.tar.gz; docs/segmentation.md reports them.
. benchmarks/gpu/setup.sh
set +e -x
N=${N:-2000}            # training composites per training set (--limit); val/test keep 1,000 each
BUDGET=${BUDGET:-420}   # seconds for the four concurrent runs, build excluded
SECONDS=0
sb build-datasets --dataset fashion-mnist-seg --limit "$N" --quiet
echo "build took $SECONDS s"
python3 benchmarks/gpu/plan_epochs.py --dataset "fashion-mnist-seg-limit$N" --budget "$BUDGET" > /tmp/epochs.env
cat /tmp/epochs.env
. /tmp/epochs.env
for m in unet njet-unet; do
  E=$([ "$m" = unet ] && echo "$E_UNET" || echo "$E_NJET")
  for s in 1 4; do
    sb evaluate --model "$m" --dataset "fashion-mnist-seg-limit$N" --train-scales "$s" --preset paper \
      --epochs "$E" --batch-size 8 --eval-batch-size 32 --lr 1e-3 --amp --num-workers 3 --device cuda \
      --progress plain --out /tmp/segruns > "/tmp/log_${m}_${s}.txt" 2>&1 &
  done
done
wait
echo "runs took $SECONDS s in all"
tail -n 8 /tmp/log_*.txt
tar czf "$OUT/segruns.tar.gz" --exclude='*.safetensors' -C /tmp segruns /tmp/log_*.txt /tmp/epochs.env
