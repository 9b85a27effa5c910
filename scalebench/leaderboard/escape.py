"""Escaping of results-file text for the leaderboard's Markdown and CSV outputs (HTML: Jinja2 autoescape).

Everything a results file carries as text (build ids, display names, configs, dates, device names) is written
through one of these functions, so that no file can inject markup into ``LEADERBOARD.md`` or a formula into a
spreadsheet that opens ``leaderboard.csv`` or ``segmentation.csv``:

- :func:`md_cell`: HTML special characters as entities, Markdown's inline syntax (links, emphasis, code,
  table pipes) backslash-escaped, all whitespace (line breaks included) collapsed to single spaces;
- :func:`csv_safe`: OWASP's rule against CSV formula injection (a cell starting with ``=``, ``+``, ``-``, ``@``,
  a tab or a carriage return gets a leading ``'``), except plain numbers, which stay numbers.
"""

from __future__ import annotations

import re

#: Markdown characters that start inline syntax: backslash, code, emphasis, links and images, table cells.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")
#: A plain decimal number (what a spreadsheet reads as a number, never as a formula).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell or heading: no raw HTML, no link or emphasis, no pipe, one line.

    Example:
        >>> md_cell("<script>a|b</script>")
        '&lt;script&gt;a\\\\|b&lt;/script&gt;'
        >>> md_cell("[x](javascript:alert(1))")
        '\\\\[x\\\\](javascript:alert(1))'
    """
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _MD_SPECIAL.sub(r"\\\1", out)
    return " ".join(out.split())


def csv_safe(text: str) -> str:
    """A CSV cell that a spreadsheet cannot run as a formula (OWASP's rule: prefix ``'`` to a leading =, +,
    -, @, tab or carriage return); a plain number such as ``-0.25`` is left as it is.

    Example:
        >>> csv_safe("=HYPERLINK(1)"), csv_safe("gaussdernet"), csv_safe("-0.25"), csv_safe("-1+1")
        ("'=HYPERLINK(1)", 'gaussdernet', '-0.25', "'-1+1")
    """
    text = str(text)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.fullmatch(text):
        return "'" + text
    return text
