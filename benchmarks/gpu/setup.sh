# Source this on a lent GPU machine (the workplace's `device` tool), from the repository root:
#   . benchmarks/gpu/setup.sh
# It makes the checkout importable without installing it (the machine's Python has torch and most of
# scalebench's dependencies; missing ones travel as wheels in .whl/, see docs/performance.md "GPU figures"),
# points scalebench at a scratch home and at the raw Fashion-MNIST files carried in .gpudata/, and prints
# what the machine is.
set -eu
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export SCALEBENCH_HOME=/tmp/sbhome
export SCALEBENCH_RAW_DIR="$PWD/.gpudata"
export OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT" "$SCALEBENCH_HOME"
sb() { python3 -m scalebench.cli "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 -c "import torch, scalebench; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(), 'scalebench', scalebench.__version__)"
nproc
