"""Unsafe deserialisation (the probe's cases P1 and P2): nothing in scalebench runs code from data it reads."""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.raw import read_cifar_batch

ROOT = Path(__file__).resolve().parents[2]

#: Calls that can run code from the data they read, as the probe's grep listed them (``model.eval()`` is a
#: method of nn.Module, not the builtin).
UNSAFE = re.compile(
    r"torch\.load\(|pickle\.loads?\(|(?<![.\w])eval\(|(?<![.\w])exec\(|yaml\.load\(|shell=True|os\.system\("
    r"|marshal\.|allow_pickle=True|np\.load\("
)


@pytest.mark.case("P1")
def test_no_call_that_runs_code_from_data():
    """No torch.load, pickle.load, eval/exec of data, yaml.load, shell=True or os.system anywhere in the package,
    the benchmarks or the scripts; the only unpickling is CIFAR-10's allow-listed ``_ArrayOnlyUnpickler``."""
    found = []
    for folder in ("scalebench", "benchmarks", "scripts"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".sh") or not path.is_file():
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if UNSAFE.search(code) and "``" not in code:
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []
    raw = (ROOT / "scalebench" / "datasets_builders" / "raw.py").read_text()
    assert raw.count("pickle.Unpickler") == 1 and "_ArrayOnlyUnpickler(io.BytesIO" in raw


class _Reduce:
    def __init__(self, target, args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


@pytest.mark.case("P2")
@pytest.mark.parametrize("kind", ["os.system", "object-array", "builtins.exec"])
def test_cifar_batches_never_unpickle_code(tmp_path, kind):
    """A CIFAR-10 batch that would run a command when unpickled is refused, and the command never runs."""
    marker = tmp_path / "ran"
    command = _Reduce(os.system, (f"touch {marker}",))
    payload = {
        "os.system": command,
        "object-array": {"data": np.array([command], dtype=object), "labels": [0]},
        "builtins.exec": _Reduce(exec, (f"open({str(marker)!r}, 'w').close()",)),
    }[kind]
    path = tmp_path / "data_batch_1"
    buf = io.BytesIO()
    pickle.dump(payload, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(ScalebenchError, match="is not allowed"):
        read_cifar_batch(path)
    assert not marker.exists()
