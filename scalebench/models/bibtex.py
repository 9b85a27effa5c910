"""BibTeX entries of the papers behind the zoo, by the cards' ``bibtex_key`` (one place for every citation).

The entries live in ``data/references.bib``, a plain BibTeX file that a reader can cite from directly; each
states what the paper's front matter states (authors, title, venue, volume, pages, year, arXiv id).
``scalebench_cnn_baseline`` cites scalebench itself, since the plain CNN baseline comes from no paper.
"""

from __future__ import annotations

import re
from pathlib import Path

#: The zoo's references, shipped with the package.
REFERENCES_BIB = Path(__file__).with_name("data") / "references.bib"

_ENTRY = re.compile(r"^@\w+\{([^,\s]+),.*?^\}", re.M | re.S)


def read_bibtex(text: str) -> dict[str, str]:
    """The entries of a BibTeX text by key, each from its ``@type{key,`` line to its closing ``}`` line.

    Example:
        >>> read_bibtex("% comment\\n@misc{a,\\n  year = {2026}\\n}\\n\\n@book{b,\\n  title = {T}\\n}\\n")
        {'a': '@misc{a,\\n  year = {2026}\\n}', 'b': '@book{b,\\n  title = {T}\\n}'}
    """
    return {m.group(1): m.group(0) for m in _ENTRY.finditer(text)}


BIBTEX: dict[str, str] = read_bibtex(REFERENCES_BIB.read_text(encoding="utf-8"))
