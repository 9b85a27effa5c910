"""Runs the docstring examples of every scalebench module (kornia-style runnable examples).

Done here rather than with ``--doctest-modules`` so that pytest collects tests only from ``tests/``: the
doctest plugin also imports every ``conftest.py`` as a module, and same-named conftests of different test
folders then clash when several folders are given on the command line.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import scalebench

MODULES = sorted(m.name for m in pkgutil.walk_packages(scalebench.__path__, "scalebench."))


def test_every_module_is_listed():
    assert {"scalebench.models.scalespace", "scalebench.checks", "scalebench.results.metrics"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str):
    module = importlib.import_module(name)
    result = doctest.testmod(module, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
