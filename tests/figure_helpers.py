"""What a test reads off a matplotlib figure: its texts, its legend, and where the legend sits."""

from __future__ import annotations

from matplotlib.text import Text


def figure_texts(fig) -> list[str]:
    """Every non-empty text of ``fig``."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def legend_texts(fig) -> list[str]:
    """The entries of the legend of the first axes."""
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def legend_is_outside(fig) -> bool:
    """True when the legend of the first axes covers none of its plot area."""
    fig.draw_without_rendering()
    ax = fig.axes[0]
    return not ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())
