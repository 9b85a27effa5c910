"""Stand-ins for the protocol tests: a tiny in-memory built dataset and tiny registered models.

The dataset follows the Build contract of ``scalebench.datasets_builders`` (split/scale datasets with a
batched read) and logs every batch read, so tests can check that no test image is read before training ends.
The models follow the model-zoo contract: one plain BN network, one scale-channel network with
``forward_with_selection`` and ``channel_sigmas``, and one that (wrongly) updates its BN statistics in eval mode.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scalebench.checks import ScalebenchError
from scalebench.models import ModelCard, register_model


class FakeSplit(torch.utils.data.Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray, log: list, tag: tuple) -> None:
        self.x, self.labels, self.log, self.tag = x, y, log, tag

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        self.log.append(self.tag)
        return torch.from_numpy(self.x[i]), int(self.labels[i])

    def read_batch(self, indices):
        self.log.append(self.tag)
        return torch.from_numpy(self.x[indices]), torch.from_numpy(self.labels[indices])


class FakeBuilt:
    """Bars whose length scales with s: class 0 horizontal, class 1 vertical (learnable by a tiny CNN)."""

    task = "classification"

    def __init__(self, scales=(0.5, 1.0, 2.0), n=(32, 16, 16), canvas=16, build_id="tiny") -> None:
        self.build_id, self.name, self.version = build_id, "tiny", "0.1"
        self.manifest_sha256 = "c" * 64
        self.train_scale, self.test_scales, self.canvas, self.side = (
            1.0,
            sorted(scales),
            (canvas, canvas),
            canvas,
        )
        self.channels, self.num_classes, self.class_names = 1, 2, ["h", "v"]
        self.limit, self.embedded = None, False
        self.log: list[tuple] = []
        self._n = dict(zip(("train", "val", "test"), n, strict=True))

    def _make(self, split: str, scale: float):
        rng = np.random.default_rng(zlib.crc32(f"{split}/{scale:.6f}".encode()))
        n = self._n[split]
        y = (np.arange(n) % 2).astype(np.int64)
        x = rng.uniform(0, 0.2, size=(n, 1, self.side, self.side)).astype(np.float32)
        c = self.side // 2
        half = max(1, round(3 * scale))
        for i in range(n):
            off = int(rng.integers(-1, 2))
            if y[i] == 0:
                x[i, 0, c + off, max(0, c - half) : c + half] = 1.0
            else:
                x[i, 0, max(0, c - half) : c + half, c + off] = 1.0
        return x, y

    # The training-set side of the Build contract: one training set, (1.0,).
    default_train_key = (1.0,)
    train_keys = ((1.0,),)

    def train_key(self, train_scale=None):
        if train_scale is None:
            return self.default_train_key
        return tuple(
            sorted(
                float(s) for s in (train_scale if isinstance(train_scale, (list, tuple)) else [train_scale])
            )
        )

    def train_path(self, train_scale=None):
        key = self.train_key(train_scale)
        if key not in self.train_keys:
            raise ScalebenchError(
                f"tiny: no training set with scales {key}; built training sets: {self.train_keys}"
            )
        return "/fake/train"

    def view_sha256(self, train_scale=None, test_scales=None):
        self.train_path(train_scale)
        return self.manifest_sha256

    def path(self, split, scale=None):
        if scale is not None and scale not in self.test_scales:
            raise ScalebenchError(f"scale {scale} not built; built: {self.test_scales}")
        return f"/fake/{split}/{scale}"

    def dataset(self, split, scale=None, transform=None, *, train_scale=None):
        if split != "test":
            self.train_path(train_scale)
        scale = self.train_scale if scale is None else scale
        self.path(split, scale)
        x, y = self._make(split, scale)
        return FakeSplit(x, y, self.log, (split, scale))


class TinyNet(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(F.relu(self.bn(self.conv(x))).amax(dim=(2, 3)))


class TinyScaleChannelNet(nn.Module):
    """Shared weights applied to the input blurred at several σ; max over channels; reports the winner."""

    def __init__(self, *, num_classes: int, in_channels: int, width: int = 4, channels: int = 3) -> None:
        super().__init__()
        self.net = TinyNet(num_classes=num_classes, in_channels=in_channels, width=width)
        self.channel_sigmas = [2.0 ** (i / 2) for i in range(channels)]

    def forward_with_selection(self, x):
        outs = []
        for s in self.channel_sigmas:
            k = max(1, round(s))
            outs.append(self.net(F.avg_pool2d(x, 2 * k + 1, stride=1, padding=k)))
        stacked = torch.stack(outs, dim=1)  # B, S, classes
        best = stacked.amax(dim=2).argmax(dim=1)
        return stacked.amax(dim=1), best

    def forward(self, x):
        return self.forward_with_selection(x)[0]


class LeakyBNNet(TinyNet):
    """Wrong on purpose: batch-norm always uses batch statistics and updates its running stats, even in eval."""

    def forward(self, x):
        h = self.conv(x)
        h = F.batch_norm(
            h, self.bn.running_mean, self.bn.running_var, self.bn.weight, self.bn.bias, training=True
        )
        return self.head(F.relu(h).amax(dim=(2, 3)))


def _card(name: str, builder, *, selection: bool, default_config: dict) -> None:
    model = builder(num_classes=2, in_channels=1, **default_config)
    card = ModelCard(
        name=name,
        family="test",
        paper="none (test stand-in)",
        bibtex_key="none",
        default_config=default_config,
        quick_config={},
        input_size=(1, 16, 16),
        num_classes=2,
        num_params=sum(p.numel() for p in model.parameters()),
        scale_covariant=selection,
        reports_scale_selection=selection,
        paper_training={"optimizer": "sgd", "lr": 0.05, "epochs": 2, "batch_size": 8, "source": "test"},
    )
    register_model(card)(builder)


_card("_bench_tiny", TinyNet, selection=False, default_config={"width": 4})
_card("_bench_tiny_sc", TinyScaleChannelNet, selection=True, default_config={"width": 4, "channels": 3})
_card("_bench_leaky_bn", LeakyBNNet, selection=False, default_config={"width": 4})
