"""torchvision-style dataset classes over the rescaled builds, for people with a training loop of their own.

``RescaledFashionMNIST(root, split="test", scale=0.5, transform=None, target_transform=None, download=False)``
and its siblings :class:`RescaledCIFAR10` and :class:`RescaledSTL10` behave like torchvision's
``FashionMNIST`` / ``CIFAR10`` / ``STL10``: items are ``(PIL.Image, int)`` (mode ``L`` for grey, ``RGB`` for
colour), so that ``transforms.ToTensor()`` works; ``transform`` and ``target_transform`` apply as in
torchvision (``StandardTransform``); ``.classes`` and ``.targets`` are there, and ``repr`` reads like
torchvision's.

``root`` is a scalebench home (default ``$SCALEBENCH_HOME`` or ``~/.cache/scalebench``); the build is
``<dataset>`` (full), ``<dataset>-lite`` (``lite=True``) or the embedded Fashion-MNIST subset
(``embedded=True``). A missing build is built when ``download=True`` (the raw files are downloaded, md5
checked, unless an offline mirror ``$SCALEBENCH_RAW_DIR`` holds them), else one error naming the command.
``split`` is ``train`` or ``val`` (at the training scale ``scale``, default the build's) or ``test`` (at the
test scale ``scale``, default 1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.specs import check_split


class _RescaledVision:
    """The shared body of the three classes (``dataset`` names the spec; see the module docstring)."""

    dataset = ""

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "test",
        scale: float | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
        *,
        lite: bool = False,
        embedded: bool = False,
    ) -> None:
        from scalebench.datasets_builders import DATASETS, build_dataset, open_build
        from scalebench.datasets_builders.manifest import build_id_for

        check_split(split)
        self.root, self.split, self.transform, self.target_transform = (
            root,
            split,
            transform,
            target_transform,
        )
        build_id = build_id_for(self.dataset, lite=lite, embedded=embedded)
        try:
            built = open_build(build_id, root, task="classification")
        except ScalebenchError:
            if not download:
                raise
            built = build_dataset(self.dataset, root=root, lite=lite, embedded=embedded, download=True)
        if split == "test":
            self.scale = 1.0 if scale is None else float(scale)
            self._data = built.dataset("test", self.scale)
        else:
            self._data = built.dataset(split, train_scale=scale)
            self.scale = float(scale) if scale is not None else float(built.train_scale)
        self.build_id = built.build_id
        self.classes: list[str] = list(DATASETS[self.dataset].class_names)
        self.targets: list[int] = [int(v) for v in self._data.labels]

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        from PIL import Image

        x, y = self._data[index]  # float32 (C, H, W) in [0, 1], from uint8: exact round trip
        pixels = np.rint(x.numpy() * 255.0).astype(np.uint8)
        image = (
            Image.fromarray(pixels[0], mode="L")
            if pixels.shape[0] == 1
            else Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), mode="RGB")
        )
        target = int(y)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        lines = [
            f"Number of datapoints: {len(self)}",
            f"Root location: {self.root if self.root is not None else '$SCALEBENCH_HOME'}",
            f"Build: {self.build_id}",
            f"Split: {self.split}",
            f"Scale: {self.scale:g}",
        ]
        if self.transform is not None or self.target_transform is not None:
            lines.append("StandardTransform")
            if self.transform is not None:
                lines.append(f"Transform: {self.transform!r}")
            if self.target_transform is not None:
                lines.append(f"Target transform: {self.target_transform!r}")
        return "\n".join([f"Dataset {type(self).__name__}", *("    " + line for line in lines)])


class RescaledFashionMNIST(_RescaledVision):
    """Rescaled Fashion-MNIST on a 72 x 72 canvas (Perzanowski & Lindeberg's protocol); see the module docstring.

    Example:
        >>> ds = RescaledFashionMNIST(split="test", scale=0.5, embedded=True, download=True)  # doctest: +SKIP
        >>> image, label = ds[0]  # doctest: +SKIP
    """

    dataset = "fashion-mnist"


class RescaledCIFAR10(_RescaledVision):
    """Rescaled CIFAR-10 on a 64 x 64 mirror-extended canvas; see the module docstring."""

    dataset = "cifar10"


class RescaledSTL10(_RescaledVision):
    """Rescaled STL-10 on a 96 x 96 canvas; see the module docstring."""

    dataset = "stl10"
