"""How long one seed of each model takes on the lite track, projected from its measured throughput.

The lite track's promise is that one seed of every classification model trains and tests within 30 minutes on
a 2-core CPU (``docs/leaderboard.md``). The times the board shows are those of the runs themselves, which on
this project's machine shared the CPU with other runs and tests. This script measures each model alone, in one
process, with the quick preset exactly as a lite run uses it (the card's quick config and quick recipe at the
dataset's input: batch ``batch_size`` split into micro-batches, AdamW or the card's optimizer, channels_last),
and projects a lite run from the lite build's sizes:

    time = epochs * n_train / (training images/s) + (epochs * n_val + n_scales * n_test) / (evaluation images/s)

(validation after every epoch, then the test set at every scale; the data pipeline is left out:
``benchmarks/evaluate.py`` measures it at <= 1.2x the raw forward). Training images/s is the best of
``--repeats`` timed rounds of ``--steps`` optimizer steps after one warm-up step; evaluation likewise with
``eval_batch_size`` images per forward pass under ``torch.inference_mode``.

Usage (stop other jobs first for an idle-machine figure; 2 threads = the 2-core laptop):

    .venv/bin/python benchmarks/lite_time.py --threads 2 [--models gaussdernet,cnn] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from scalebench.benchmark.config import resolve_recipe
from scalebench.benchmark.engine import make_optimizer, model_to_device
from scalebench.datasets_builders import DATASETS
from scalebench.models import create_model, get_model_card, list_models
from scalebench.models.registry import validate_model_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/timing.py
from timing import tune_allocator

#: The dataset of the lite board; its lite split sizes, test scales, canvas and classes come from its spec.
SPEC = DATASETS["fashion-mnist"]
LITE = {**SPEC.lite_sizes, "scales": len(SPEC.test_scales), "canvas": SPEC.canvas[0], "channels": SPEC.channels,
        "classes": SPEC.num_classes}  # fmt: skip


def _best(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(name: str, steps: int, repeats: int) -> dict[str, float | str]:
    """Training and evaluation images/s of ``name``'s quick preset, and the projected lite-run minutes."""
    card = get_model_card(name)
    config = validate_model_config(name, {}, quick=True, num_classes=LITE["classes"],
                                   in_channels=LITE["channels"], dataset="fashion-mnist")  # fmt: skip
    recipe = resolve_recipe("quick", card.paper_training, {}, card.quick_training)
    torch.manual_seed(0)
    model = create_model(name, num_classes=LITE["classes"], in_channels=LITE["channels"], **config)
    model = model_to_device(model, torch.device("cpu"), channels_last=True)
    optimizer = make_optimizer(model, recipe)
    micro = recipe.micro_batch_size or recipe.batch_size
    side = LITE["canvas"]
    x = torch.randn(recipe.batch_size, LITE["channels"], side, side).to(memory_format=torch.channels_last)
    y = torch.randint(0, LITE["classes"], (recipe.batch_size,))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    def train() -> None:
        model.train()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            for xs, ys in zip(x.split(micro), y.split(micro), strict=True):
                (loss_fn(model(xs), ys) * len(ys) / len(y)).backward()
            optimizer.step()

    xe = torch.randn(recipe.eval_batch_size, LITE["channels"], side, side).to(
        memory_format=torch.channels_last
    )

    def evaluate() -> None:
        model.eval()
        with torch.inference_mode():
            for _ in range(steps):
                model(xe)

    train_ips = steps * recipe.batch_size / _best(train, repeats)
    eval_ips = steps * recipe.eval_batch_size / _best(evaluate, repeats)
    train_images = recipe.epochs * LITE["train"]
    eval_images = recipe.epochs * LITE["val"] + LITE["scales"] * LITE["test"]
    minutes = (train_images / train_ips + eval_images / eval_ips) / 60
    return {"model": name, "train_img_s": round(train_ips, 1), "eval_img_s": round(eval_ips, 1),
            "epochs": recipe.epochs, "projected_minutes": round(minutes, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default=None, help="comma-separated (default: every classification model)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps (or eval batches) per round")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(args.threads)
    names = args.models.split(",") if args.models else [
        n for n in list_models() if get_model_card(n).task == "classification"
    ]  # fmt: skip
    rows = []
    print(
        f"{'model':<20} {'train img/s':>11} {'eval img/s':>10} {'lite run (min)':>14}  ({args.threads} threads)"
    )
    for name in names:
        row = measure(name, args.steps, args.repeats)
        rows.append(row)
        print(f"{name:<20} {row['train_img_s']:>11} {row['eval_img_s']:>10} {row['projected_minutes']:>14}",
              flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
