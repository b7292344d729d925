"""Figures for the committed results: matplotlib without a display, written as SVG that
changes only when the numbers do (no date, fixed element ids), so a re-render of the same
results leaves git clean. matplotlib comes with the test extra (``pip install -e ".[test]"``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

plt.rcParams["svg.hashsalt"] = "dqc"


def figure(width: float, height: float):
    """A new figure and its axes, ``width`` x ``height`` inches."""
    return plt.subplots(figsize=(width, height))


def save_svg(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)
