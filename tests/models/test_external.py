"""Models from outside the zoo: references to a file or a module, their source hashes, entry points, errors."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest
import torch

from scalebench.checks import ScalebenchError
from scalebench.models import external
from scalebench.models.external import is_reference, load_factory, structure_sha256, zoo_source

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    def build(*, num_classes, in_channels, width=4):
        return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(width, num_classes))
    """
)


def test_a_file_reference_loads_its_factory_and_hashes_the_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(MODEL)
    factory, source = load_factory(f"{path}:build")
    net = factory(num_classes=3, in_channels=1)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    assert source.kind == "file" and source.reference == f"{path}:build" and len(source.sha256) == 64
    path.write_text(MODEL.replace("width=4", "width=5"))
    _, changed = load_factory(f"{path}:build")
    assert changed.sha256 != source.sha256  # an edited architecture is another source


def test_a_file_source_hash_covers_the_neighbour_files_it_imports(tmp_path):
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "__init__.py").write_text("")
    (tmp_path / "blocks" / "conv.py").write_text("WIDTH = 4\n")
    (tmp_path / "unrelated.py").write_text("x = 1\n")
    path = tmp_path / "net_with_helpers.py"
    path.write_text("import torch\nfrom blocks.conv import WIDTH\n" + MODEL.replace("width=4", "width=WIDTH"))
    _, first = load_factory(f"{path}:build")
    assert first.sha256 != external._sha256_file(path)  # the helper is part of the model's code
    (tmp_path / "unrelated.py").write_text("x = 2\n")
    assert external.source_sha256(path) == first.sha256  # a file the model does not import is not
    (tmp_path / "blocks" / "conv.py").write_text("WIDTH = 8\n")
    assert external.source_sha256(path) != first.sha256


def test_a_module_reference_records_the_module_file(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    factory, source = load_factory("mypkg.nets:build")
    assert callable(factory) and source.kind == "module" and source.reference == "mypkg.nets:build"
    assert source.sha256 is not None and source.distribution is None  # not an installed distribution
    sys.modules.pop("mypkg.nets", None)
    sys.modules.pop("mypkg", None)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("missing.py:build", "does not exist"),
        ("FILE:build", "cannot be imported"),
        ("my_model.py:nope", "has no attribute 'nope'"),
        ("my_model.py:WIDTH", "not a callable factory"),
        ("my_model.py", "must be FILE.py:FACTORY"),
        ("broken.py:build", "Importing model file .* failed: ZeroDivisionError"),
    ],
)
def test_bad_references_are_one_error(tmp_path, monkeypatch, reference, message):
    (tmp_path / "my_model.py").write_text(MODEL + "\nWIDTH = 4\n")
    (tmp_path / "broken.py").write_text("1 / 0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScalebenchError, match=message):
        load_factory(reference)


def test_reference_syntax():
    assert is_reference("a.py:b") and is_reference("pkg.mod:make") and not is_reference("cnn")


def test_zoo_source_covers_the_modules_a_model_is_built_from():
    from scalebench.models.gaussdernet import _build

    source = zoo_source(_build)
    assert source.kind == "zoo" and source.distribution == "scalebench" and len(source.sha256) == 64
    used = external._imported_model_modules("scalebench.models.gaussdernet")
    assert {"scalebench.models.scalespace", "scalebench.models.gaussder"} <= used
    assert "scalebench.models.unet" not in used and "scalebench.models.zoo" not in used


def test_structure_fingerprint_follows_names_and_shapes():
    a, b = torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(1, 4, 3)
    assert structure_sha256(a) == structure_sha256(b)
    assert structure_sha256(a) != structure_sha256(torch.nn.Conv2d(1, 5, 3))


class _EntryPoint:
    def __init__(self, name, obj):
        self.name, self.obj, self.dist = name, obj, None

    def load(self):
        if isinstance(self.obj, Exception):
            raise self.obj
        return self.obj


def test_entry_points_register_models_and_a_broken_one_is_one_error(monkeypatch):
    calls = []
    points = [_EntryPoint("mine", lambda: calls.append("registered"))]
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: points if group == external.ENTRY_POINT_GROUP else [],
    )
    assert external.load_entry_points() == ["mine"] and calls == ["registered"]
    points[:] = [_EntryPoint("bad", ImportError("no torchvision"))]
    with pytest.raises(ScalebenchError, match=r"entry point 'bad' .* failed to load: ImportError"):
        external.load_entry_points()
