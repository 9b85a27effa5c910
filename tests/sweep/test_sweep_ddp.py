"""``evaluate --distributed``: a 2-process gloo run equals a single-process run (counts exactly, losses to fp),
for a classification and a segmentation build, through the one protocol."""

from __future__ import annotations

import itertools
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from sweep_ddp_worker import config_fields, rank_main, seg_config_fields

from scalebench.benchmark.config import make_config
from scalebench.benchmark.distributed import Dist
from scalebench.benchmark.protocol import run
from scalebench.checks import ScalebenchError
from scalebench.results import load_results


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_share_partitions_every_batch_size():
    for n in range(0, 12):
        for world in (1, 2, 3, 4):
            shares = [Dist(r, world).share(n) for r in range(world)]
            assert shares[0][0] == 0 and shares[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(shares))
            assert max(hi - lo for lo, hi in shares) - min(hi - lo for lo, hi in shares) <= 1


def test_distributed_without_torchrun_names_the_command(sweep_home, tmp_path, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    home, _ = sweep_home
    with pytest.raises(ScalebenchError, match="torchrun --nproc_per_node"):
        run(make_config(**config_fields(home, tmp_path, True)))


@pytest.mark.slow
def test_gloo_ddp_two_processes_match_one_process(sweep_home, tmp_path):
    home, _ = sweep_home
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run(make_config(**config_fields(home, tmp_path / "single", False)))
    finally:
        torch.set_num_threads(old)
    fields = config_fields(home, tmp_path / "ddp", True)
    mp.spawn(rank_main, args=(2, _free_port(), fields), nprocs=2, join=True)

    runs = list((tmp_path / "ddp").iterdir())
    assert [r.name for r in runs] == [single.run_dir.name]  # same config hash: same run identity
    ddp = load_results(runs[0] / "results.json")
    one = single.result
    assert (runs[0] / "done").is_file()
    assert [(r.scale, r.correct, r.total) for r in ddp.per_scale] == [
        (r.scale, r.correct, r.total) for r in one.per_scale
    ]
    assert ddp.per_scale[0].total == 12  # every test image counted once, none twice
    assert ddp.scale_selection.counts == one.scale_selection.counts
    assert ddp.training.best_epoch == one.training.best_epoch
    for a, b in zip(ddp.training.history, one.training.history, strict=True):
        assert a.val_accuracy == b.val_accuracy
        assert a.train_accuracy == b.train_accuracy
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5, abs=1e-7)
    w_ddp, w_one = load_file(runs[0] / "best.safetensors"), load_file(single.run_dir / "best.safetensors")
    assert w_ddp.keys() == w_one.keys()
    for k in w_one:
        torch.testing.assert_close(w_ddp[k], w_one[k], rtol=1e-5, atol=1e-6)
    assert one.training.history[0].train_loss != one.training.history[1].train_loss  # it trained


@pytest.mark.slow
def test_gloo_ddp_segmentation_matches_one_process(seg_sweep_home, tmp_path):
    """The same code path for segmentation: sharded batches with the summed class-weight normaliser, an empty
    share, evaluation sharded and summed; the run directory of a training set other than the default."""
    home, built = seg_sweep_home
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run(make_config(**seg_config_fields(home, built.build_id, tmp_path / "single", False)))
    finally:
        torch.set_num_threads(old)
    fields = seg_config_fields(home, built.build_id, tmp_path / "ddp", True)
    mp.spawn(rank_main, args=(2, _free_port(), fields), nprocs=2, join=True)

    runs = list((tmp_path / "ddp").iterdir())
    assert [r.name for r in runs] == [single.run_dir.name] and "__train4__seed0__" in runs[0].name
    ddp, one = load_results(runs[0] / "results.json", tasks=("segmentation",)), single.result
    assert (runs[0] / "done").is_file() and ddp.dataset.train_scales == [4.0]
    assert [p.images for p in ddp.per_scale] == [p.images for p in one.per_scale] == [4, 4]  # each image once
    assert ddp.per_scale == one.per_scale  # every intersection and union count (U-Net: no batch norm)
    for a, b in zip(ddp.training.history, one.training.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5, abs=1e-7)
        assert a.val_mean_iou == b.val_mean_iou
    assert ddp.training.class_weights == one.training.class_weights
    w_ddp, w_one = load_file(runs[0] / "best.safetensors"), load_file(single.run_dir / "best.safetensors")
    for k in w_one:
        torch.testing.assert_close(w_ddp[k], w_one[k], rtol=1e-5, atol=1e-6)
    assert one.training.history[0].train_loss != one.training.history[1].train_loss  # it trained
