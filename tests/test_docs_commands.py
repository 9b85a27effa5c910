"""Every ``scalebench`` command shown in a code block of the README or ``docs/`` still parses.

A renamed option or command would otherwise leave the docs showing a command that fails. Each command is
parsed by click as the shell would pass it (``shlex``, comments and line continuations removed): every
subcommand and option must exist and take the number of values shown. Values themselves (paths that exist
only on a user's machine, placeholders) are not checked.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from scalebench.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: An abbreviated command ("scalebench sweep launch ... (same options)", "scalebench COMMAND --help") is skipped.
ABBREVIATED = re.compile(r"\.\.\.|…|COMMAND")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_lines(text: str) -> list[str]:
    """The lines of fenced (```) and indented (4 spaces after a blank line) code blocks, continuations joined."""
    lines, fenced, indented, prev_blank = [], False, False, True
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        indented = raw.startswith("    ") and (indented or prev_blank) and not fenced
        if fenced or indented:
            lines.append(raw.strip())
        prev_blank = not raw.strip()
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line
        else:
            joined.append(line)
    return joined


def doc_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for line in code_lines(text):
            line = re.sub(r"^(\$ |\.venv/bin/|([A-Z_]+=\S* )+)", "", line)  # prompt, venv path, VAR=value
            if line.startswith("scalebench ") and not ABBREVIATED.search(line):
                found.append((doc.name, line))
        for span in re.findall(r"`(scalebench [^`]+)`", text):  # inline code
            if not ABBREVIATED.search(span):
                found.append((doc.name, " ".join(span.split())))
    return found


COMMANDS = doc_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 50, "the docs' code blocks are no longer found"


@pytest.mark.parametrize(("doc", "line"), COMMANDS, ids=[f"{d}:{i}" for i, (d, _) in enumerate(COMMANDS)])
def test_a_documented_command_parses(doc: str, line: str):
    line = re.sub(r"\[(--[^\]]*)\]", r"\1", line)  # an optional part shown in brackets: [--opt VALUE]
    args = shlex.split(line, comments=True)[1:]
    ends = [i for i, a in enumerate(args) if a in ("&", "&&", ";", "|", "||")]
    args = args[: ends[0]] if ends else args  # this command only, not the shell's next one
    command: click.Command = main
    ctx = None
    while True:
        # click's own option parser: unknown options and missing option values fail, values are not converted
        ctx = command.make_context(command.name or "scalebench", [], parent=ctx, resilient_parsing=True)
        ctx.resilient_parsing = False  # the context is made leniently (no values yet), the parse is strict
        try:
            _, rest, _ = command.make_parser(ctx).parse_args(list(args))
        except click.UsageError as e:
            pytest.fail(f"{doc}: `{line}` does not parse: {e.format_message()}")
        if not isinstance(command, click.Group):
            assert not rest, f"{doc}: `{line}`: unexpected arguments {rest}"
            return
        if not rest:  # a group named on its own (prose: "`scalebench sweep` runs ...")
            return
        try:
            _, sub, args = command.resolve_command(ctx, rest)
        except click.UsageError as e:
            pytest.fail(f"{doc}: `{line}`: {e.format_message()}")
        assert sub is not None, f"{doc}: `{line}`: no such command {rest[0]!r}"
        command = sub


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_the_docs_name_no_file_outside_the_repository_and_no_issue(doc: Path):
    """The docs travel with the package: they point at no development machine's files or issue tracker."""
    text = doc.read_text(encoding="utf-8")
    for pattern in (r"/work/", r"\.\./shared", r"\b[Ii]ssues? #?\d+"):
        hits = [line for line in text.splitlines() if re.search(pattern, line)]
        assert not hits, f"{doc.name} names {pattern!r}: {hits[:3]}"
