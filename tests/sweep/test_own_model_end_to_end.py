"""A model of one's own, from a file to a leaderboard entry, as docs/own-model.md walks it (tiny-sized):
evaluate FILE.py:factory, change the file and get a new run, verify in a fresh process, a local sweep over two
seeds, submit, and the entry on the board."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scalebench.checks import ScalebenchError
from scalebench.cli import main
from scalebench.sweep import run_job, sweep_status

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dilated_scale_net.py"
#: The worked example of docs/own-model.md, made tiny (width 4 instead of 16).
MODEL = EXAMPLE.read_text().replace("width: int = 16", "width=4")
FACTORY = "dilated_scale_net"


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    from scalebench.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_RULES", dict(registry._RULES))
    monkeypatch.setattr(registry, "_EXTERNAL", {})


def _cli(*args: str) -> str:
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def _fresh_process(*args: str) -> subprocess.CompletedProcess:
    """``scalebench ARGS`` in a new Python process (nothing registered there)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "scalebench.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_own_model_from_a_file_to_the_board(sweep_home, tmp_path, monkeypatch):
    home, known = sweep_home
    monkeypatch.setattr("scalebench.leaderboard.validate.known_builds", lambda: tuple(known))
    model = tmp_path / "dilated_scale_net.py"
    model.write_text(MODEL)
    runs, ref = tmp_path / "runs", f"{model}:{FACTORY}"
    common = ["--dataset", "fashion-mnist", "--root", home, "--device", "cpu", "--epochs", "1", "--progress",
              "none"]  # fmt: skip

    # 1. evaluate FILE.py:factory
    _cli("evaluate", "--model", ref, *common, "--out", runs)
    (first,) = runs.glob(f"{FACTORY}__fashion-mnist__seed0__*")
    selection = json.loads((first / "results.json").read_text())["scale_selection"]
    assert selection["channel_sigmas"] == [1.0, 2.0, 4.0]  # the example's dilations: selection histograms
    # 2. change the file: a new run id, never the old numbers
    model.write_text(MODEL.replace("width=4", "width=6"))
    _cli("evaluate", "--model", ref, *common, "--out", runs)
    (second,) = set(runs.glob(f"{FACTORY}__fashion-mnist__seed0__*")) - {first}
    assert (
        json.loads((second / "results.json").read_text())["model"]["num_params"]
        > json.loads((first / "results.json").read_text())["model"]["num_params"]
    )

    # 3. verify in a fresh process: only when trusted, and only the code that made the numbers
    verify = ["verify", second / "results.json", "--checkpoint", second / "best.safetensors", "--root", home,
              "--device", "cpu", "--progress", "none"]  # fmt: skip
    refused = _fresh_process(*verify)
    assert refused.returncode == 1 and "--trust-model-code" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    done = _fresh_process(*verify, "--trust-model-code")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (second / "results.verified.json").is_file()
    stale = _fresh_process("verify", first / "results.json", "--checkpoint", first / "best.safetensors",
                           "--root", home, "--device", "cpu", "--trust-model-code")  # fmt: skip
    assert (
        stale.returncode == 1 and "sha256" in stale.stderr + stale.stdout and "Traceback" not in stale.stderr
    )

    # 4. a local sweep over two seeds (worker processes rebuild the model from the reference)
    sweep = tmp_path / "sweep"
    _cli("sweep", "launch", "--models", ref, "--datasets", "fashion-mnist", "--seeds", "0,1", "--root", home,
         "--device", "cpu", "--epochs", "1", "--launcher", "local", "--out", sweep)  # fmt: skip
    status = _cli("sweep", "status", "--out", sweep)
    assert "2 done" in status
    # jobs added for code that then changes stop with one error instead of writing another run
    model.write_text(MODEL.replace("width=4", "width=5"))
    _cli("sweep", "launch", "--models", ref, "--datasets", "fashion-mnist", "--seeds", "0", "--root", home,
         "--device", "cpu", "--epochs", "1", "--launcher", "debug", "--out", sweep)  # fmt: skip
    (pending,) = [r.job.job_id for r in sweep_status(sweep) if r.state == "pending"]
    model.write_text(MODEL.replace("width=4", "width=7"))
    with pytest.raises(ScalebenchError, match="changed since `sweep launch`"):
        run_job(sweep, pending)
    assert not (sweep / "runs" / pending).exists() and len(list((sweep / "runs").iterdir())) == 2
    model.write_text(MODEL.replace("width=4", "width=6"))

    # 5. submit (the board never imports the model) and 6. the entry on the board
    store = tmp_path / "results"
    _cli("sweep", "collect", "--out", sweep, "--store", store)
    site = tmp_path / "site"
    _cli("leaderboard", "build", "--store", store, "--out", site)
    entries = json.loads((site / "leaderboard.json").read_text())["entries"]
    (entry,) = [e for e in entries if e["model"] == FACTORY]
    assert entry["n_seeds"] == 2 and entry["display_name"] == "Dilated scale net (example)"
    assert "Dilated scale net (example)" in (site / "index.html").read_text()
