"""The protocol on the real pieces: a tiny build of the embedded Fashion-MNIST subset and real zoo models."""

from __future__ import annotations

import pytest

from scalebench.benchmark.config import PAPER_DEFAULTS, QUICK_RECIPE, make_config, resolve_recipe
from scalebench.benchmark.protocol import run
from scalebench.datasets_builders import build_dataset
from scalebench.demo import run_demo
from scalebench.models import get_model_card, list_models
from scalebench.results import load_results


@pytest.mark.parametrize("name", list_models())
def test_every_model_card_gives_a_valid_paper_and_quick_recipe(name):
    """Each field a card's recipe sets reaches the resolved recipe unchanged; the rest is the preset's."""
    card = get_model_card(name)
    for preset, stated, defaults in (
        ("paper", card.paper_training, PAPER_DEFAULTS),
        ("quick", card.quick_training, QUICK_RECIPE),
    ):
        recipe = resolve_recipe(preset, card.paper_training, {}, card.quick_training)
        expected = {**defaults, **stated.fields()}
        assert {k: getattr(recipe, k) for k in expected} == expected, (name, preset)


@pytest.fixture(scope="module")
def tiny_real_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("home")
    built = build_dataset(
        "fashion-mnist", embedded=True, limit=24, scales=[1.0, 2.0], root=root, progress=False
    )
    return root, built.build_id


@pytest.mark.slow
def test_end_to_end_on_real_build_and_gaussdernet(tmp_path, tiny_real_home):
    root, build_id = tiny_real_home
    config = make_config(
        model="gaussdernet", dataset=build_id, root=root, out=tmp_path, device="cpu", progress="none", num_workers=1,
        model_config_overrides={"widths": [4], "num_scale_channels": 3},
        recipe_overrides={"epochs": 1, "batch_size": 8, "eval_batch_size": 8},
    )  # fmt: skip
    outcome = run(config)
    result = load_results(outcome.files["results.json"])
    assert result.dataset.build_id == build_id and result.dataset.canvas == (72, 72)
    assert [(r.scale, r.total) for r in result.per_scale] == [(1.0, 24), (2.0, 24)]
    assert result.scale_selection is not None and len(result.scale_selection.channel_sigmas) == 3
    assert outcome.files["curve.png"].read_bytes()[:4] == b"\x89PNG"
    assert outcome.files["selection.png"].read_bytes()[:4] == b"\x89PNG"


def test_demo_runs_and_says_where_the_figures_are(tmp_path, fake_built, capsys):
    files = run_demo(tmp_path / "demo", models=("_bench_tiny_sc", "_bench_tiny"), epochs=1, progress="none", limit=12,
                     dataset="tiny")  # fmt: skip
    out = capsys.readouterr().out
    assert f"both generalisation curves: {files['curves_png']}" in out
    assert files["curves_png"].is_file() and files["curves_svg"].is_file()
    rows = files["curves_csv"].read_text().splitlines()
    assert rows[0] == "model,scale,mean_accuracy,std_accuracy,n_seeds" and len(rows) == 1 + 2 * 3
    demo_result = load_results(files["_bench_tiny_sc_results"])
    assert demo_result.model.name == "_bench_tiny_sc"
    assert demo_result.limit == 12 and all(r.total == 12 for r in demo_result.per_scale)
