"""torchvision-style classes over the rescaled builds: PIL items, transforms, classes, targets, repr."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import open_build
from scalebench.datasets_builders.torchvision_style import RescaledFashionMNIST


def test_items_are_pil_images_and_the_transforms_apply(tmp_path):
    ds = RescaledFashionMNIST(tmp_path, split="test", scale=0.5, embedded=True, download=True)
    image, label = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (72, 72)
    built = open_build("fashion-mnist-embedded", tmp_path)
    x, y = built.dataset("test", 0.5)[0]
    assert label == int(y) == ds.targets[0]
    np.testing.assert_array_equal(np.asarray(image), np.rint(x.numpy()[0] * 255).astype(np.uint8))
    tensor = RescaledFashionMNIST(tmp_path, split="test", scale=0.5, embedded=True,
                                  transform=transforms.ToTensor(), target_transform=lambda t: t + 100)  # fmt: skip
    t, shifted = tensor[0]
    assert torch.equal(t, x) and shifted == label + 100  # ToTensor gives back the stored floats exactly
    assert ds.classes[0] == "T-shirt/top" and len(ds.targets) == len(ds) == 1000
    text = repr(tensor)
    assert text.startswith("Dataset RescaledFashionMNIST\n    Number of datapoints: 1000")
    assert "Split: test" in text and "Scale: 0.5" in text and "Transform: ToTensor()" in text


def test_train_split_at_the_training_scale_and_missing_builds(tmp_path):
    with pytest.raises(ScalebenchError, match="has not been built"):
        RescaledFashionMNIST(tmp_path, split="train", embedded=True)
    train = RescaledFashionMNIST(tmp_path, split="train", embedded=True, download=True)
    assert len(train) == 1600 and train.scale == 1.0
    with pytest.raises(ScalebenchError, match="split"):
        RescaledFashionMNIST(tmp_path, split="training", embedded=True)
