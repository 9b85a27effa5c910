"""The handle of a built dataset, whatever its task: :class:`Build`.

``open_build`` (``inventory.py``) returns the handle that the manifest's ``format`` names: ``ClassificationBuild``
(``build.py``) or ``SegmentationBuild`` (``segmentation.py``). Each answers ``dataset(split, scale, *,
train_scale)``: a test set by its scale, a training or validation set by its training set. Training sets are
keyed by their scales: a classification build carries one train/val file per training scale (key ``(s,)``,
added on demand as test scales are), the segmentation build its four training sets (``(1,)``, ``(2,)``,
``(4,)``, ``(1, 2, 3, 4)``). ``train_scale`` is one scale, or several for a mixed set; ``None`` is the build's
default: the training scale a classification build was created with, the set ``1`` of the segmentation build.
Scales are compared by their 3-decimal tag (``scales.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from scalebench.checks import ScalebenchError, parse_float_list
from scalebench.datasets_builders.manifest import build_command, manifest_digest
from scalebench.datasets_builders.scales import find_scale, same_scales, unique_scales

TrainKey = tuple[float, ...]


def key_text(key: Iterable[float]) -> str:
    """A training set's key as text: its scales joined by ``+``.

    Example:
        >>> key_text((1.0,)), key_text((1, 2, 3, 4)), key_text((0.5,))
        ('1', '1+2+3+4', '0.5')
    """
    return "+".join(f"{float(s):g}" for s in key)


def parse_train_key(text: str | Iterable[float] | float, name: str = "--train-scale") -> TrainKey:
    """A training set's key from the command line: one scale (``2``), or the scales of a mixed set joined by
    ``+`` (``1+2+3+4``, as the results and the leaderboard write it) or by commas (``1,2,3,4``); sorted, each
    scale once.

    Example:
        >>> parse_train_key("2"), parse_train_key("1+2+3+4"), parse_train_key("4,1,2,3")
        ((2.0,), (1.0, 2.0, 3.0, 4.0), (1.0, 2.0, 3.0, 4.0))
    """
    if isinstance(text, str):
        values = parse_float_list(text.replace("+", ","), name)
    else:
        values = parse_float_list([text] if isinstance(text, (int, float)) else list(text), name)
    return tuple(unique_scales(values))


def _scales_of(entry: dict[str, Any]) -> TrainKey:
    """The scales of a manifest file entry: ``scales`` (segmentation) or ``(scale,)`` (classification)."""
    return tuple(float(s) for s in entry["scales"]) if "scales" in entry else (float(entry["scale"]),)


class Build:
    """A built dataset: ``task`` (``classification``, ``segmentation``) and manifest ``format``; ``build_id``,
    ``name``, ``version``, ``manifest``, ``manifest_sha256``, ``root`` (the build folder), ``canvas``, ``channels``,
    ``class_names``, ``num_classes``, ``split_sizes``, ``limit``, ``embedded``, ``test_scales`` (sorted),
    ``train_keys``, ``default_train_key``, ``canonical_sha256`` (of the canonical build of its kind, or None);
    :meth:`view_sha256` is the digest of what one run used."""

    task: ClassVar[str] = ""
    format: ClassVar[str] = ""
    _sizes_note: ClassVar[str] = ""  # after the split sizes in describe()
    _train_fix: ClassVar[str] = ""  # how to add a missing training set: {command} and {key} are filled in
    _extra_keys: ClassVar[tuple[str, ...]] = ()  # protocol keys that only extra sets add (dropped by a view)

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        proto = manifest["protocol"]
        self.root = Path(root)
        self.manifest = manifest
        self.manifest_sha256 = manifest_digest(manifest)
        self.build_id: str = manifest["build_id"]
        self.name: str = manifest["dataset"]
        self.version: str = manifest["generator_version"]
        self.canvas = (int(proto["canvas"][0]), int(proto["canvas"][1]))
        self.channels = int(proto.get("channels", 1))
        self.class_names = list(proto["class_names"])
        self.num_classes = len(self.class_names)
        self.split_sizes = dict(proto["split_sizes"])
        self.limit = proto["limit"]
        self.embedded = bool(proto["embedded"])
        self.test_scales = sorted(float(s) for s in proto["test_scales"])
        entries = manifest["files"].values()
        self.train_keys = sorted(_scales_of(e) for e in entries if e["role"] == "train_val")
        self.default_train_key: TrainKey = self.train_keys[0]
        self.canonical_sha256: str | None = None

    @property
    def is_canonical(self) -> bool:
        """True when the manifest hash equals the recorded hash of the canonical build."""
        return self.canonical_sha256 is not None and self.canonical_sha256 == self.manifest_sha256

    def files(self) -> list[Path]:
        return [self.root / f for f in sorted(self.manifest["files"])]

    def _find(self, role: str, scales: TrainKey) -> Path | None:
        for fname, entry in sorted(self.manifest["files"].items()):
            if entry["role"] == role and same_scales(_scales_of(entry), scales):
                return self.root / fname
        return None

    def test_path(self, scale: float) -> Path:
        """The HDF5 file of the test set at ``scale``."""
        path = self._find("test", (float(scale),))
        if path is None:
            built = ", ".join(f"{v:.3f}" for v in self.test_scales)
            raise ScalebenchError(
                f"{self.build_id}: no test set at scale {scale:.3f}; built test scales are {built}. Fix: "
                f"rebuild with `{build_command(self.build_id)} --scales {scale:.3f}` to add it."
            )
        return path

    def train_key(self, train_scale: float | Iterable[float] | None = None) -> TrainKey:
        """The key of a training set: the default one for None, else the sorted scales given."""
        if train_scale is None:
            return self.default_train_key
        values = list(train_scale) if isinstance(train_scale, Iterable) else [train_scale]
        return tuple(sorted({float(s) for s in values}))

    def train_path(self, train_scale: float | Iterable[float] | None = None) -> Path:
        """The HDF5 file of the training set (and its validation set) with ``train_scale``."""
        key = self.train_key(train_scale)
        path = self._find("train_val", key)
        if path is None:
            fix = self._train_fix.format(command=build_command(self.build_id), key=key_text(key))
            raise ScalebenchError(
                f"{self.build_id}: no training set with scales {key_text(key)}; built training sets: "
                f"{', '.join(key_text(k) for k in self.train_keys)}. Fix: {fix}."
            )
        return path

    def _view_train_keys(self, key: TrainKey) -> list[TrainKey]:
        """The training sets a view of ``key`` keeps (a classification build: that set only)."""
        return [key]

    def view_sha256(
        self, train_scale: float | Iterable[float] | None = None, test_scales: Iterable[float] | None = None
    ) -> str:
        """sha256 of the manifest restricted to what a run used: its training set (``train_scale``, default the
        build's default set) and ``test_scales`` (default every built one).

        The view keeps the files of that training set and of those test scales, sets ``protocol.test_scales`` to
        those scales (as the manifest spells them) and drops the protocol keys that only extra sets add
        (:attr:`_extra_keys`). A build used as built (default set, every test scale) has the view digest
        :attr:`manifest_sha256`, so a canonical build stays canonical for a run after it gains a set.
        """
        key = self.train_key(train_scale)
        self.train_path(key)  # a set the build lacks is an error naming the fix
        wanted = self.test_scales if test_scales is None else [float(s) for s in test_scales]
        for s in wanted:
            self.test_path(s)
        kept = self._view_train_keys(key)
        proto = self.manifest["protocol"]
        files = {
            name: entry
            for name, entry in self.manifest["files"].items()
            if (entry["role"] == "test" and find_scale(wanted, _scales_of(entry)[0]) is not None)
            or (entry["role"] == "train_val" and any(same_scales(_scales_of(entry), k) for k in kept))
        }
        protocol = {k: v for k, v in proto.items() if k not in self._extra_keys}
        protocol["test_scales"] = [s for s in proto["test_scales"] if find_scale(wanted, s) is not None]
        return manifest_digest({**self.manifest, "protocol": protocol, "files": files})

    def dataset(self, split: str, scale: float | None = None, *, train_scale: Any = None) -> Any:
        """A lazy torch Dataset: ``test`` at ``scale``, or ``train`` / ``val`` of the set ``train_scale``."""
        raise NotImplementedError

    def _scales_line(self) -> str:
        raise NotImplementedError

    def summary(self) -> str:
        """The line ``scalebench datasets build`` prints for this build: its sets, folder and manifest hash."""
        keys = ", ".join(key_text(k) for k in self.train_keys)
        return (
            f"{self.build_id}: {len(self.test_scales)} test scales, training sets {keys} in {self.root} (manifest "
            f"sha256 {self.manifest_sha256})"
        )

    def describe(self) -> list[str]:
        """The lines of ``scalebench datasets info`` for this build: sizes, scales, disk use, manifest hash."""
        sizes, (h, w), disk = self.split_sizes, self.canvas, sum(p.stat().st_size for p in self.files())
        return [
            f"{self.build_id}: {self.name} v{self.version}, {h}x{w}x{self.channels}, {self.num_classes} classes, "
            f"train/val/test {sizes['train']}/{sizes['val']}/{sizes['test']}{self._sizes_note}",
            f"  {self._scales_line()}",
            f"  {len(self.files())} files, {disk / 2**20:.1f} MiB in {self.root}",
            f"  manifest sha256 {self.manifest_sha256}" + (" (canonical)" if self.is_canonical else ""),
        ]

    def __repr__(self) -> str:
        keys, scales = [key_text(k) for k in self.train_keys], [f"{s:.3f}" for s in self.test_scales]
        return (
            f"{type(self).__name__}({self.build_id!r}, sizes={self.split_sizes}, train sets {keys}, test "
            f"scales {scales}, sha256={self.manifest_sha256[:12]})"
        )
