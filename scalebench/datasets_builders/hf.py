"""Export a built rescaled dataset as a Hugging Face ``datasets`` repository (Parquet + dataset card).

Layout written under ``<out>/<build_id>/``:

- ``train/train-*.parquet``, ``val/validation-*.parquet`` and one ``test_<tag>/test-*.parquet`` per test scale
  (one configuration each: ``train``, ``val``, ``test_0p500`` ... ``test_2p000``); the build's other training
  scales, if any, as ``train_<tag>`` and ``val_<tag>``;
- ``README.md``: the dataset card, YAML metadata (``configs``, licence, task) then the protocol, the source
  licence and citation, and the manifest hashes.

The ``default`` configuration holds every one of them as a split (``train``, ``validation``, ``test_0p500``
...), so ``datasets.load_dataset("<out>/<build_id>")`` loads them all.

Features: ``image`` (``datasets.Image``, stored as lossless PNG bytes, so pixels read back identical) and
``label`` (``datasets.ClassLabel`` with the class names). Read it back with
``datasets.load_dataset("<out>/<build_id>", "test_1p000", split="test")`` or
``load_dataset("parquet", data_files=...)``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any, cast

import numpy as np

from scalebench import __version__
from scalebench.checks import ScalebenchError, check_choice
from scalebench.datasets_builders.build import ClassificationBuild
from scalebench.datasets_builders.inventory import build_task, list_builds, no_build_error, open_build
from scalebench.datasets_builders.scales import same_scale, scale_tag
from scalebench.datasets_builders.specs import DATASETS
from scalebench.progress import Progress

SHARD_ROWS = 10000
BLOCK_ROWS = 2000


def _configs(built: ClassificationBuild) -> list[tuple[str, str, Path, str]]:
    """(config name, HF split name, HDF5 path, scalebench split) for every export configuration."""
    out = []
    for t in built.train_scales:  # the default training set is `train` and `val`
        tag = "" if same_scale(t, built.train_scale) else f"_{scale_tag(t)}"
        out.append((f"train{tag}", "train", built.path("train", train_scale=t), "train"))
        out.append((f"val{tag}", "validation", built.path("val", train_scale=t), "val"))
    return out + [(f"test_{scale_tag(s)}", "test", built.path("test", s), "test") for s in built.test_scales]


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buf, format="PNG", compress_level=1
    )
    return buf.getvalue()


def export_hf(
    build_id: str,
    out: str | Path,
    *,
    root: str | Path | None = None,
    push_to_hub: str | None = None,
    progress: bool | str = "none",
) -> Path:
    """Write build ``build_id`` as a Hugging Face dataset repository under ``out/<build_id>``; optionally push.
    ``progress``: a ``--progress`` mode (one step per image encoded).

    Returns:
        The folder written.

    Raises:
        ScalebenchError: when the build does not exist, or pushing fails (offline, no token, ...).
    """
    import datasets
    import h5py

    built = cast(ClassificationBuild, open_build(build_id, root, task="classification"))
    dest = Path(out).expanduser() / build_id
    dest.mkdir(parents=True, exist_ok=True)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(built.class_names))}
    )
    configs = _configs(built)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one display, ours: no tqdm bar per shard
    with Progress(progress) as bar, contextlib.ExitStack() as undo:
        undo.callback(datasets.enable_progress_bars if bars else lambda: None)
        total = sum(built.split_sizes[split] for *_, split in configs)  # the images to encode
        bar.start(f"{build_id}: export {len(configs)} configurations", total)
        for config, hf_split, path, split in configs:
            folder = dest / config
            folder.mkdir(exist_ok=True)
            for old in folder.glob("*.parquet"):
                old.unlink()
            with h5py.File(path, "r") as f:
                x, y = f[f"x_{split}"], np.asarray(f[f"y_{split}"][()]).reshape(-1)
                n = x.shape[0]
                n_shards = max(1, -(-n // SHARD_ROWS))
                for k in range(n_shards):
                    lo, hi = k * SHARD_ROWS, min(n, (k + 1) * SHARD_ROWS)
                    images: list[dict[str, Any]] = []
                    for b in range(lo, hi, BLOCK_ROWS):
                        block = np.asarray(x[b : min(hi, b + BLOCK_ROWS)])
                        images += [{"bytes": _png(img), "path": None} for img in block]
                        bar.advance(len(block))
                    shard = datasets.Dataset.from_dict(
                        {"image": images, "label": y[lo:hi].tolist()}, features=features
                    )
                    shard.to_parquet(str(folder / f"{hf_split}-{k:05d}-of-{n_shards:05d}.parquet"))
        bar.end()
    (dest / "README.md").write_text(_card(built, configs))
    if push_to_hub:
        push_folder(dest, push_to_hub)
    return dest


def _default_split(config: str) -> str:
    """The split name of a configuration in the ``default`` configuration: ``train``, ``validation``, ``test_<tag>``
    (and ``train_<tag>`` / ``validation_<tag>`` for other training scales)."""
    return config.replace("val", "validation", 1) if config.startswith("val") else config


def _card(built: ClassificationBuild, configs: list[tuple[str, str, Path, str]]) -> str:
    spec = DATASETS.get(built.name)
    licence_id = "mit" if built.name == "fashion-mnist" else "other"
    lines = ["---", f"license: {licence_id}", f"pretty_name: Rescaled {built.name} ({built.build_id})"]
    lines += ["task_categories:", "- image-classification", "tags:", "- scale-generalisation", "configs:"]
    lines += ["- config_name: default", "  default: true", "  data_files:"]
    for config, hf_split, _, _ in configs:  # every split and scale, each a split of the default configuration
        lines += [
            f"  - split: {_default_split(config)}",
            f"    path: {config}/{hf_split}-*.parquet",
        ]
    for config, hf_split, _, _ in configs:
        lines += [
            f"- config_name: {config}",
            "  data_files:",
            f"  - split: {hf_split}",
            f"    path: {config}/{hf_split}-*.parquet",
        ]
    lines.append("---")
    proto = built.manifest["protocol"]
    scales = ", ".join(f"{s:.3f}" for s in built.test_scales)
    train = ", ".join(f"{t:.3f}" for t in built.train_scales)
    train += f" (default {built.train_scale:.3f}, config `train`)" if len(built.train_scales) > 1 else ""
    body = f"""
# Rescaled {built.name}: `{built.build_id}`

Built by scalebench {__version__} (dataset generator version {built.version}) following the protocol of J. Perzanowski and T. Lindeberg (2025),
"Scale generalisation properties of extended scale-covariant and scale-invariant Gaussian derivative networks
on image datasets with spatial scaling variations", JMIV 67(29), arXiv:2409.11140. This is a re-implementation
of that protocol, not the original Zenodo files.

## Protocol

- Canvas {built.canvas[0]}x{built.canvas[1]}, {built.channels} channel(s), padding `{proto["padding"]}`.
- Train and validation at scale {train}; one test configuration per scale: {scales}.
- Resampling: {proto["interpolation"]} ({proto["kernel"]}), anti-aliased when shrinking
  ({proto["antialias_rule"]}); {proto["rounding"]}; centring {proto["centring"]}.
- Splits: {proto["split_rule"]}; sizes {json.dumps(proto["split_sizes"])}.
- Labels: {", ".join(f"{i} {n}" for i, n in enumerate(built.class_names))}.

Load everything: `datasets.load_dataset("<this folder>")` gives one split per configuration (`train`,
`validation`, `test_0p500` ... `test_2p000`). Load one scale: `datasets.load_dataset("<this folder>",
"test_1p000", split="test")`.

## Source and licence

{spec.citation if spec else ""}. Licence of the source images: {spec.licence if spec else "unknown"}.

## Hashes

- manifest sha256 (canonical JSON of `manifest.json`): `{built.manifest_sha256}`
- source md5s: {", ".join(f"`{k}` {v}" for k, v in proto["source_md5s"].items())}

| file | array | shape | sha256 of the decoded array |
|---|---|---|---|
"""
    for fname, rec in sorted(built.manifest["files"].items()):
        for key, arr in sorted(rec["arrays"].items()):
            body += f"| {fname} | {key} | {arr['shape']} | `{arr['sha256']}` |\n"
    return "\n".join(lines) + "\n" + body


def push_folder(folder: Path, repo: str) -> None:
    """Upload an exported folder to the Hugging Face Hub as a dataset repository (needs network and a token)."""
    flag = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE") or "").lower()
    if flag in ("1", "true", "yes", "on"):
        raise ScalebenchError(
            f"Cannot push to the Hugging Face Hub repo {repo!r}: offline mode is set (HF_HUB_OFFLINE / "
            f"HF_DATASETS_OFFLINE). The export is in {folder}; push it later when online."
        )
    try:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset")
    except Exception as err:
        raise ScalebenchError(
            f"Pushing {folder} to the Hugging Face Hub repo {repo!r} failed ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). Are you online and logged in (`hf auth login`)? "
            f"The export itself is complete in {folder}."
        ) from None


def export_datasets(
    dataset: str | None,
    out: str | Path,
    *,
    format: str = "hf",
    root: str | Path | None = None,
    push_to_hub: str | None = None,
    progress: bool | str = "none",
) -> list[Path]:
    """Export every classification build (or those of ``dataset``, a name or a build id) in ``format`` (``hf``)
    under ``out``. Segmentation builds are not exported (one named in ``dataset`` is an error that says so).
    ``progress``: a ``--progress`` mode."""
    check_choice(format, "--format", ["hf"])
    ids = list_builds(root, dataset)
    if dataset is None or dataset == "all":  # every classification build: segmentation sets are not exported
        ids = [b for b in ids if build_task(b, root) in (None, "classification")]
    if not ids:
        raise no_build_error(root, dataset)
    if push_to_hub and len(ids) > 1:
        raise ScalebenchError(
            f"--push-to-hub takes one build, but {len(ids)} match ({', '.join(ids)}); pass --dataset BUILD_ID."
        )
    return [export_hf(b, out, root=root, push_to_hub=push_to_hub, progress=progress) for b in ids]
