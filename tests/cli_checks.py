"""Checks on what a ``CliRunner`` run of ``scalebench`` printed."""

from __future__ import annotations


def one_error_line(result) -> str:
    """The CLI failed with exit code 1 and one 'Error:' line, no traceback; returns that line."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]
