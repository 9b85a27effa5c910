"""Package-level smoke tests: import, version, CLI help, shared checks and atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

import scalebench
from scalebench.checks import ScalebenchError, check_choice, parse_float_list, parse_int_list
from scalebench.cli import main
from scalebench.fileio import atomic_path, config_hash, write_json_atomic
from scalebench.paths import raw_mirror_dir, scalebench_home


def test_version_and_help():
    runner = CliRunner()
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert scalebench.__version__ in result.output
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "scale generalisation" in result.output


def test_check_choice_lists_valid_values_and_close_matches():
    with pytest.raises(ScalebenchError, match=r"Valid values are .*'max'.*Did you mean 'max'"):
        check_choice("maxx", "pooling", ["max", "avg"])


def test_parse_lists():
    assert parse_float_list("0.5,1,2", "--scales") == [0.5, 1.0, 2.0]
    assert parse_int_list("3, 4", "--seeds") == [3, 4]
    with pytest.raises(ScalebenchError, match="--scales"):
        parse_float_list("1,-2", "--scales")
    with pytest.raises(ScalebenchError, match="--seeds"):
        parse_int_list("a", "--seeds")


def test_home_and_raw_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALEBENCH_HOME", str(tmp_path / "h"))
    assert scalebench_home() == tmp_path / "h"
    assert scalebench_home(tmp_path / "r") == tmp_path / "r"
    monkeypatch.delenv("SCALEBENCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert scalebench_home() == tmp_path / "xdg" / "scalebench"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG specification says
    assert scalebench_home() == Path.home() / ".cache" / "scalebench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert scalebench_home() == Path.home() / ".cache" / "scalebench"
    monkeypatch.delenv("SCALEBENCH_RAW_DIR", raising=False)
    assert raw_mirror_dir() is None
    with pytest.raises(ScalebenchError, match="does not exist"):
        raw_mirror_dir(tmp_path / "missing")


def test_atomic_write_leaves_nothing_on_error(tmp_path: Path):
    dest = tmp_path / "out.json"
    write_json_atomic(dest, {"a": 1})
    assert json.loads(dest.read_text()) == {"a": 1}
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert json.loads(dest.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    with pytest.raises(ValueError):
        write_json_atomic(dest, {"a": float("nan")})
    assert json.loads(dest.read_text()) == {"a": 1}


def test_atomic_writes_are_readable_like_open_writes(tmp_path: Path):
    umask = os.umask(0o022)
    os.umask(umask)
    if 0o666 & ~umask == 0o600:
        pytest.skip("this umask makes every new file private anyway")
    write_json_atomic(tmp_path / "r.json", {"a": 1})
    with open(tmp_path / "plain.json", "w") as fh:
        fh.write("{}")
    mode = stat.S_IMODE((tmp_path / "r.json").stat().st_mode)
    assert (
        mode == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == 0o666 & ~umask
    )  # not mkstemp's 0o600


def test_config_hash_is_order_independent():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_the_leaderboard_results_and_figures_do_not_import_the_benchmark():
    """The layering: the results record (and its recipe), the figures and the leaderboard sit below the
    benchmark; nothing in them imports ``scalebench.benchmark`` (read statically, and imported afresh)."""
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1] / "scalebench"
    imports = re.compile(r"^\s*(from\s+scalebench\.benchmark|import\s+scalebench\.benchmark|from\s+scalebench\s+"
                         r"import\s+benchmark)", re.M)  # fmt: skip
    for package in ("leaderboard", "results", "figures"):
        for path in sorted((root / package).rglob("*.py")):
            assert not imports.search(path.read_text()), path
    code = (
        "import sys, scalebench.leaderboard.validate, scalebench.leaderboard.store, scalebench.figures.curves\n"
        "print(sorted(m for m in sys.modules if m.startswith('scalebench.benchmark')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_import_graph_has_no_circles():
    """Module-level imports inside scalebench form no circle (``from pkg import sub`` counts as importing
    ``pkg``, whose ``__init__`` runs first); imports inside functions are deferred on purpose and not counted."""
    import ast

    root = Path(__file__).resolve().parents[1]
    modules = {}
    for path in (root / "scalebench").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            assert state.get(dep) != 1, " -> ".join([*path, name, dep])
            if dep not in state:
                visit(dep, [*path, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_no_function_is_over_80_lines():
    """Long functions hide several steps: each function of the package fits in 80 lines (docstring included)."""
    import ast

    root = Path(__file__).resolve().parents[1] / "scalebench"
    long = [
        f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(root.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 80
    ]
    assert long == []


def test_no_task_is_recognised_by_its_build_id():
    """A build's task is its manifest's ``format`` and a results file's is its ``task`` field: outside the
    builders (which pick a builder by the dataset's name), nothing tests a name for a segmentation marker."""
    import re

    root = Path(__file__).resolve().parents[1] / "scalebench"
    literal = re.compile(r"""(startswith|endswith)\(\s*["'][^"']*seg|["'][^"']*-seg[^"']*["']\s*(==|!=|in\b)|"""
                         r"""(==|!=|\bin)\s*["'][^"']*-seg|SEGMENTATION_DATASET""")  # fmt: skip
    hits = [
        f"{path.relative_to(root)}:{i}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if "datasets_builders" not in path.parts
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert hits == []
    assert literal.search('if build_id.startswith("fashion-mnist-seg"):')  # the pattern does find routing
    assert literal.search('seg = "-seg" in build_id')
