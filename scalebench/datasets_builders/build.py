"""Build the rescaled classification datasets (raw files -> rescaling -> HDF5 + manifest); their handle.

A classification build (``datasets_dir(root) / build_id /``; the lock, the manifest and the faults a build
survives: ``manifest.py``) holds one train/val file per training scale,
``<prefix>_tr<n>_vl<n>_outsize<H>-<W>_sctr<tag>.h5`` (``x_train``, ``y_train``, ``x_val``, ``y_val``), and one
test file per test scale, ``<prefix>_te<n>_outsize<H>-<W>_scte<tag>.h5`` (``x_test``, ``y_test``): the naming of
Jansson & Lindeberg's MNIST Large Scale files; ``x`` is [n, H, W, C] uint8 in gzip chunks of about 256 KiB
(readable by any HDF5 reader), ``y`` int64.

Training sets are keyed by training scale and built on demand, as test scales are: ``build_dataset(...,
train_scales=[1.0, 2.0])`` (``scalebench datasets build --train-scale S``) adds a train/val file per training
scale, and ``ClassificationBuild.dataset("train", train_scale=S)`` (or ``"val"``) picks one. The scale a build
was created with stays its default (``protocol.train_scale``, part of every file's stored config); the
manifest lists ``protocol.train_scales`` only when there are several, so a build with one training scale keeps
the manifest of earlier versions (and the canonical sha256 of ``specs.py``); a run records the digest of the
manifest restricted to the sets it used (``Build.view_sha256``), which for the default set and every test scale
is that of the build as it was first built. ``scalebench evaluate --train-scale S`` trains on set ``S``, and
``sweep launch --train-scales 1,2`` runs the grid over the training sets of one build.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scalebench.checks import ScalebenchError, check_choice, parse_float_list
from scalebench.datasets_builders.builds import Build
from scalebench.datasets_builders.manifest import (
    CHUNK_BYTES,
    GZIP_LEVEL,
    SetPlan,
    array_record,
    build_id_for,
    cap_sizes,
    check_limit,
    run_build,
    write_array_chunked,
    write_set,
)
from scalebench.datasets_builders.raw import (
    LITE_RULE,
    RawSplits,
    expected_source_md5s,
    lite_indices,
    load_raw,
    select_splits,
)
from scalebench.datasets_builders.readers import RescaledDataset
from scalebench.datasets_builders.rescale import FRAC_BITS, rescale_batch
from scalebench.datasets_builders.scales import same_scale, scale_tag, unique_scales
from scalebench.datasets_builders.specs import (
    DATASETS,
    EMBEDDED_SIZES,
    GENERATOR_VERSION,
    DatasetSpec,
    check_split,
)
from scalebench.fileio import is_finite_number
from scalebench.paths import datasets_dir

MANIFEST_FORMAT = "scalebench.rescaled-classification/1"


# --- planning --------------------------------------------------------------------------------------------


def _sizes(spec: DatasetSpec, limit: int | None, embedded: bool, lite: bool = False) -> dict[str, int]:
    return cap_sizes(EMBEDDED_SIZES if embedded else spec.lite_sizes if lite else spec.split_sizes, limit)


def _chunk_images(spec: DatasetSpec) -> int:
    H, W = spec.canvas
    return max(1, CHUNK_BYTES // (H * W * spec.channels))


def _plan(
    spec: DatasetSpec, protocol: dict[str, Any], role: str, scale: float, sizes: dict[str, int]
) -> SetPlan:
    H, W = spec.canvas
    kind = (
        f"tr{sizes['train']}_vl{sizes['val']}_outsize{H}-{W}_sctr"
        if role == "train_val"
        else f"te{sizes['test']}_outsize{H}-{W}_scte"
    )
    config = json.dumps(
        {"protocol": protocol, "role": role, "scale": scale, "sizes": sizes},
        sort_keys=True,
        separators=(",", ":"),
    )
    entry = {"role": role, "scale": scale, "scale_tag": scale_tag(scale)}
    return SetPlan(f"{spec.file_prefix}_{kind}{scale_tag(scale)}.h5", sizes, config, entry)


def plan_sets(
    spec: DatasetSpec,
    sizes: dict[str, int],
    protocol: dict[str, Any],
    train: Iterable[float],
    test: Iterable[float],
) -> list[SetPlan]:
    """The files of a build: the train/val files (the default training scale first), then the test files."""
    first = protocol["train_scale"]
    train = [first, *(s for s in sorted(train) if not same_scale(s, first))]
    plans = [
        _plan(spec, protocol, "train_val", s, {"train": sizes["train"], "val": sizes["val"]}) for s in train
    ]
    return plans + [_plan(spec, protocol, "test", s, {"test": sizes["test"]}) for s in sorted(test)]


def _scales_option(
    values: Iterable[float] | str | None, default: Iterable[float], name: str, spec: DatasetSpec
) -> list[float]:
    """The scales given to ``name`` (or ``default``), in the order given: each rounds to 0.001 or more and is at
    most the canvas's smaller side (above it, one source pixel covers the whole canvas, so every image is a blur
    of a few pixels of the object's centre, measuring nothing about scale, and a typo such as ``--scales 1e9`` is
    refused)."""
    out = parse_float_list(values, name) if values is not None else [float(s) for s in default]
    top = float(min(spec.canvas))
    for s in out:
        if s > top:
            raise ScalebenchError(
                f"{name}: {s:g} is above {top:g}, the largest scale of a {spec.name} build (at scales above "
                f"its {spec.canvas[0]}x{spec.canvas[1]} canvas one source pixel covers the whole canvas); "
                f"give scales between 0.001 and {top:g}."
            )
    if any(same_scale(s, 0.0) for s in out):
        raise ScalebenchError(f"{name}: a scale rounds to 0.000; give scales >= 0.001.")
    return out


def _protocol(
    spec: DatasetSpec,
    *,
    sizes: dict[str, int],
    train_scale: float,
    limit: int | None,
    embedded: bool,
    lite: bool,
) -> dict[str, Any]:
    """Protocol parameters shared by every file of a build (test scales and extra training scales excluded).

    A lite build adds ``subset`` (its rule and seed); other builds have no such key, so their manifests
    (and the canonical full build's sha256) are those of earlier versions.
    """
    subset = {"subset": {"name": "lite", "rule": LITE_RULE, "seed": spec.lite_seed}}
    split_rule = (
        "embedded Fashion-MNIST subset: see scalebench/datasets_builders/embedded/subset.json"
        if embedded
        else spec.split_rule
    )
    return {
        "dataset": spec.name,
        "generator_version": GENERATOR_VERSION,
        "canvas": list(spec.canvas),
        "channels": spec.channels,
        "source_size": list(spec.source_size),
        "padding": spec.padding,
        "interpolation": spec.interpolation,
        "kernel": "Keys cubic convolution, a = -0.5 (PIL BICUBIC)",
        "antialias": spec.antialias,
        "antialias_rule": "kernel stretched by 1/s when s < 1",
        "centring": "u_j = (j + 1/2 - N_out/2)/s + n_in/2 - 1/2 (object centre at canvas centre)",
        "weights": f"integers over 2^{FRAC_BITS}, rows summing to 2^{FRAC_BITS}; float64 products exact",
        "rounding": "round half to even, clipped to [0, 255], uint8",
        "train_scale": train_scale,
        "split_rule": split_rule
        + (f"; each split truncated to its first {limit} images" if limit is not None else ""),
        "split_sizes": dict(sizes),
        "seed": spec.seed,
        "limit": limit,
        "embedded": embedded,
        "class_names": list(spec.class_names),
        "source_md5s": dict(sorted(expected_source_md5s(spec, embedded).items())),
        "array_hash": "sha256 of the C-order bytes of each decoded array (x uint8, y int64 little-endian)",
        **(subset if lite else {}),
    }


def _but(protocol: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in protocol.items() if k not in keys}


def _extend(
    folder: Path,
    protocol: dict[str, Any],
    old: dict[str, Any] | None,
    unreadable: bool,
    train: list,
    test: list,
) -> tuple[dict[str, Any], list[float], list[float]]:
    """The protocol, training scales and test scales of a build: those asked for plus those it has (a build
    only grows), its default training scale kept. A build made with another protocol (generator version, raw
    files, sizes) is rebuilt; an unreadable manifest is rebuilt from the set files made with this protocol."""
    if old is not None:
        proto = _but(old["protocol"], "test_scales", "train_scales")
        trains = old["protocol"].get("train_scales", [proto.get("train_scale")])
        had = [*(("train_val", s) for s in trains), *(("test", s) for s in old["protocol"]["test_scales"])]
    else:
        found = _recover_sets(folder, protocol) if unreadable else []
        proto = found[0]["protocol"] if found else {}
        had = [(c["role"], float(c["scale"])) for c in found if c["protocol"] == proto]
    first = proto.get("train_scale")
    if not is_finite_number(first) or _but(proto, "train_scale") != _but(protocol, "train_scale"):
        return protocol, unique_scales(train), unique_scales(test)
    return (
        {**protocol, "train_scale": first},
        unique_scales([*(s for role, s in had if role == "train_val"), *train]),
        unique_scales([*(s for role, s in had if role == "test"), *test]),
    )


def _recover_sets(folder: Path, protocol: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored configs of the set files in ``folder`` made with ``protocol`` (its default training scale
    apart): read when the manifest is unreadable, so that the repaired manifest lists every set."""
    found = []
    for path in sorted(p for p in folder.glob("*.h5") if not p.name.startswith(".")):
        try:
            with h5py.File(path, "r") as f:
                config = json.loads(f.attrs["set_config"])
            if config["role"] in ("train_val", "test") and _but(config["protocol"], "train_scale") == _but(
                protocol, "train_scale"
            ):
                found.append(config)
        except (OSError, KeyError, TypeError, ValueError, AttributeError):
            continue
    return found


# --- writing one set -----------------------------------------------------------------------------------------


def _write_set(
    plan: SetPlan, spec: DatasetSpec, raw: RawSplits, protocol: dict[str, Any], out_dir: Path, tick: Any
) -> dict[str, dict[str, Any]]:
    """Write one HDF5 file atomically; return the hash record of its arrays."""
    (H, W), C, scale = spec.canvas, spec.channels, plan.entry["scale"]

    def fill(f: h5py.File, arrays: dict[str, Any]) -> dict[str, Any]:
        for split, n in plan.sizes.items():
            src = raw.x[split]

            def produce(a: int, b: int, src: np.ndarray = src) -> np.ndarray:
                return rescale_batch(src[a:b], scale, (H, W), spec.padding)

            arrays[f"x_{split}"] = write_array_chunked(
                f, f"x_{split}", (n, H, W, C), produce, _chunk_images(spec), tick
            )
            y = np.ascontiguousarray(raw.y[split][:n], dtype="<i8")
            f.create_dataset(f"y_{split}", data=y)
            arrays[f"y_{split}"] = array_record(y)
        return {
            "dataset": spec.name,
            "role": plan.entry["role"],
            "scale": float(scale),
            "scale_tag": scale_tag(scale),
            "canvas": list(spec.canvas),
            "channels": C,
            "interpolation": spec.interpolation,
            "antialias": spec.antialias,
            "padding": spec.padding,
            "source_md5s": json.dumps(protocol["source_md5s"], sort_keys=True),
            "generator_version": GENERATOR_VERSION,
            "seed": spec.seed,
            "class_names": json.dumps(list(spec.class_names)),
            "protocol": json.dumps(protocol, sort_keys=True),
        }

    return write_set(out_dir, plan, "set_config", fill)


# --- the build handle ------------------------------------------------------------------------------------------


class ClassificationBuild(Build):
    """A built rescaled classification dataset (:class:`~scalebench.datasets_builders.builds.Build`), with
    ``train_scale`` (the default training scale, the build's first), ``train_scales`` (all) and ``lite``."""

    task = "classification"
    format = MANIFEST_FORMAT
    _train_fix = "add it with `{command} --train-scale {key}` (one scale per training set)"
    _extra_keys = ("train_scales",)

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        super().__init__(root, manifest)
        proto = manifest["protocol"]
        self.train_scale = float(proto["train_scale"])
        self.train_scales = [key[0] for key in self.train_keys]
        self.default_train_key = (self.train_scale,)
        self.lite = (proto.get("subset") or {}).get("name") == "lite"
        spec = DATASETS.get(self.name)
        known = (
            None
            if spec is None
            else spec.known_lite_manifest_sha256
            if self.lite
            else spec.known_manifest_sha256
        )
        self.canonical_sha256 = known

    def path(self, split: str, scale: float | None = None, *, train_scale: float | None = None) -> Path:
        """The HDF5 file of ``split``: ``test`` at ``scale`` (default: the default training scale), ``train`` and
        ``val`` of the training scale ``train_scale`` (default: the build's first training scale)."""
        if check_split(split) == "test":
            return self.test_path(self.train_scale if scale is None else scale)
        if scale is not None:
            raise ScalebenchError(
                f"{self.build_id}: scale={scale:g} picks a test set; the {split} split takes train_scale= (built "
                f"training scales: {', '.join(f'{s:.3f}' for s in self.train_scales)})."
            )
        return self.train_path(train_scale)

    def dataset(
        self, split: str, scale: float | None = None, *, train_scale: Any = None, transform: Any = None
    ) -> RescaledDataset:
        """A lazy torch Dataset over ``split`` (see :meth:`path`); ``transform`` is applied to each image."""
        return RescaledDataset(self.path(split, scale, train_scale=train_scale), split, transform=transform)

    def _scales_line(self) -> str:
        test = ", ".join(f"{s:.3f}" for s in self.test_scales)
        if len(self.train_scales) == 1:
            return f"train scale {self.train_scale:.3f}; test scales {test}"
        train = [
            f"{s:.3f}" + (" (default)" if same_scale(s, self.train_scale) else "") for s in self.train_scales
        ]
        return f"train scales {', '.join(train)}; test scales {test}"


# --- building --------------------------------------------------------------------------------------------


def _check_options(
    name: str, spec: DatasetSpec | None, limit: Any, embedded: bool, lite: bool
) -> tuple[DatasetSpec, int | None]:
    check_choice(name, "dataset", list(DATASETS))
    if embedded and name != "fashion-mnist":
        raise ScalebenchError(f"--embedded exists for fashion-mnist only, not {name!r}; drop --embedded.")
    if lite and (embedded or limit is not None):
        raise ScalebenchError(
            "--lite is a fixed subset of the full raw files; it takes neither --embedded nor --limit."
        )
    return spec or DATASETS[name], check_limit(limit)


def build_dataset(
    name: str,
    *,
    root: str | Path | None = None,
    raw_dir: str | Path | None = None,
    scales: Iterable[float] | str | None = None,
    train_scales: Iterable[float] | str | None = None,
    limit: int | None = None,
    embedded: bool = False,
    lite: bool = False,
    download: bool = False,
    progress: bool | str = "auto",
    spec: DatasetSpec | None = None,
) -> ClassificationBuild:
    """Build (or complete) the rescaled dataset ``name``; sets that are complete and valid are skipped.

    Args:
        name: ``fashion-mnist``, ``cifar10`` or ``stl10``.
        root: scalebench home (default ``$SCALEBENCH_HOME`` or ``~/.cache/scalebench``).
        raw_dir: offline raw mirror in torchvision's layout (default ``$SCALEBENCH_RAW_DIR``), read-only.
        scales: test scales (default s = 2^(k/4), k = -4..4), added to those of an existing build.
        train_scales: training scales (default 1), each a train/val file, added to those of an existing build;
            the first is the default training scale of a new build.
        limit: keep only the first ``limit`` images of each split (build id ``<name>-limit<N>``).
        embedded: use the Fashion-MNIST subset shipped with scalebench (build id ``fashion-mnist-embedded``).
        lite: the canonical small build (build id ``<name>-lite``): a seeded, stratified subset of the full
            build's splits (``spec.lite_sizes``; :func:`~scalebench.datasets_builders.raw.lite_indices`),
            rescaled exactly as the full build.
        download: download missing raw files into ``<home>/raw`` (md5-checked).
        progress: the display on stderr, a ``--progress`` mode (:data:`scalebench.progress.PROGRESS_MODES`;
            True is ``auto``, False ``none``).
        spec: override the dataset spec (tests and benchmarks on synthetic raw files only).
    """
    spec, limit = _check_options(name, spec, limit, embedded, lite)
    train = _scales_option(train_scales, [spec.train_scale], "--train-scale", spec)
    test = _scales_option(scales, spec.test_scales, "--scales", spec)
    build_id = build_id_for(name, limit=limit, embedded=embedded, lite=lite)
    out_dir = datasets_dir(root) / build_id
    sizes = _sizes(spec, limit, embedded, lite)
    base = _protocol(spec, sizes=sizes, train_scale=train[0], limit=limit, embedded=embedded, lite=lite)

    def plan(old: dict[str, Any] | None, unreadable: bool) -> tuple[dict[str, Any], list[SetPlan]]:
        protocol, train_, test_ = _extend(out_dir, base, old, unreadable, train, test)
        extra = {"train_scales": train_} if len(train_) > 1 else {}
        return {**protocol, "test_scales": test_, **extra}, plan_sets(spec, sizes, protocol, train_, test_)

    def writer(protocol: dict[str, Any]) -> Callable[[SetPlan, Any], dict[str, Any]]:
        raw = load_raw(spec, root=root, raw_dir=raw_dir, download=download, embedded=embedded)
        raw = select_splits(raw, lite_indices(raw.y, sizes, spec.lite_seed)) if lite else raw
        proto = _but(protocol, "test_scales", "train_scales")  # what every set file stores
        return lambda plan, tick: _write_set(plan, spec, raw, proto, out_dir, tick)

    compression = f"gzip level {GZIP_LEVEL}, chunks of {_chunk_images(spec)} images"
    manifest = run_build(out_dir, MANIFEST_FORMAT, plan, writer, attr="set_config", progress=progress,
                         compression=compression)  # fmt: skip
    return ClassificationBuild(out_dir, manifest)
