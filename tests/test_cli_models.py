"""`scalebench models list|info`: one CliRunner smoke test per command, plus the error path."""

from __future__ import annotations

from click.testing import CliRunner

from scalebench.cli import main
from scalebench.models import list_models


def test_models_list_prints_every_model_as_tab_separated_rows():
    result = CliRunner().invoke(main, ["models", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split("\t")[:4] == ["name", "family", "task", "params"]
    assert [line.split("\t")[0] for line in lines[1:]] == list_models()
    nin = next(line for line in lines if line.startswith("njetnet_nin\t"))
    assert "496,663" in nin.split("\t")


def test_models_list_pattern_filters():
    result = CliRunner().invoke(main, ["models", "list", "resnet*"])
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.output.strip().splitlines()[1:]] == [
        "resnet20",
        "resnet32",
    ]


def test_models_info_shows_paper_key_params_defaults_and_flags():
    result = CliRunner().invoke(main, ["models", "info", "njetnet_resnet32"])
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in (
        "paper: S. L. Pintea",
        "bibtex key: pintea2021resolution",
        "parameters: 310,441",
        "default depth: 32",
        "scale covariant: no",
        "reports scale selection: no",
    ):
        assert expected in out


def test_models_errors_are_one_line_without_traceback():
    result = CliRunner().invoke(main, ["models", "info", "resnet21"])
    assert result.exit_code == 1
    assert "Unknown model 'resnet21'" in result.output and "resnet20" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["models", "list", "zzz*"])
    assert result.exit_code == 1 and "No registered model matches 'zzz*'" in result.output
