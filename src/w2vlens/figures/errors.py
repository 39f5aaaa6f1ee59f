"""Figures of the fine-tuned model's errors: the projection coloured by how many annotators agree
about an error (paper Figure 2) and the mistake probe's confusion matrix (Figure 3)."""

from __future__ import annotations

import re
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import CORRECT, UNANNOTATED
from w2vlens.result import FIGURE_DPI

CORRECT_COLOUR = "#d9d9d9"
_AGREEMENT = re.compile(r"^(\d+)/(\d+)$")


def _agreement(category: str) -> tuple[int, int]:
    match = _AGREEMENT.match(category)
    if match is None:
        raise W2VLensError(f"unknown error category {category!r}: expected '{CORRECT}', '{UNANNOTATED}' or 'k/K'")
    return int(match.group(1)), int(match.group(2))


def agreement_projection(coords: np.ndarray, categories: np.ndarray, title: str = "", point_size: float = 2.0,
                         seed: int = 0) -> Figure:
    """Scatter of 2-D coordinates coloured by annotator agreement on an error ("1/K" .. "K/K").

    Correct frames are drawn first, small and faded light grey, as the backdrop; error categories follow
    in order of agreement, so the errors all annotators agree on lie on top, each category's points in a
    shuffled order. "unannotated" frames are left out. Points are rasterised, text stays vector.
    """
    coords, categories = np.asarray(coords), np.asarray(categories).astype(str)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(categories):
        raise W2VLensError(f"need (n, 2) coordinates and n categories, got {coords.shape} and {len(categories)}")
    errors = sorted({c for c in categories.tolist() if c not in (CORRECT, UNANNOTATED)}, key=_agreement)
    # No pale yellows: every error category must stand out on the grey backdrop and on white.
    colours = plt.get_cmap("plasma_r")(np.linspace(0.35, 1.0, max(len(errors), 1)))
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(6.5, 6), constrained_layout=True, dpi=FIGURE_DPI)
    correct = np.flatnonzero(categories == CORRECT)
    ax.scatter(coords[correct, 0], coords[correct, 1], s=point_size * 0.5, c=CORRECT_COLOUR, alpha=0.4,
               linewidths=0, marker=".", rasterized=True, label=f"{CORRECT} ({len(correct):,})")
    for rank, (category, colour) in enumerate(zip(errors, colours, strict=False)):
        rows = rng.permutation(np.flatnonzero(categories == category))
        ax.scatter(coords[rows, 0], coords[rows, 1], s=point_size * (2 + rank), color=colour, alpha=0.9, linewidths=0,
                   marker=".", rasterized=True, label=f"{category} ({len(rows):,})")
    ax.legend(title="annotators marking an error", markerscale=6, fontsize=8, title_fontsize=8, frameon=False,
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=min(6, len(errors) + 1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return fig


def confusion_figure(confusion: pd.DataFrame, title: str = "", min_support: int = 10) -> Figure:
    """Row-normalised confusion matrix (true classes as rows): colour is the share of the row, each
    cell annotated with its count and that share. Each row is labelled with its number of test
    frames; a row with fewer than `min_support` is marked too small to score (its shares are shown
    greyed, or not at all when it has no frame), instead of passing for a class the probe never finds."""
    counts = confusion.to_numpy(dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    small = totals[:, 0] < min_support
    size = 1.2 + 0.75 * max(counts.shape)
    fig, ax = plt.subplots(figsize=(size + 2.4, size), constrained_layout=True, dpi=FIGURE_DPI)
    image = ax.imshow(np.where(small[:, None], np.nan, shares), cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        if small[row]:
            text = "–" if totals[row, 0] == 0 else f"{int(count):,}"
            ax.text(column, row, text, ha="center", va="center", fontsize=10, color="grey")
            continue
        ax.text(column, row, f"{int(count):,}\n{shares[row, column]:.0%}", ha="center", va="center", fontsize=10,
                color="white" if shares[row, column] > 0.5 else "black")
    ax.set_xticks(range(counts.shape[1]), [str(c) for c in confusion.columns], rotation=45, ha="right")
    rows = [f"{name} (n={int(total):,}{': too few to score' if too_small else ''})"
            for name, total, too_small in zip(confusion.index, totals[:, 0], small, strict=True)]
    ax.set_yticks(range(counts.shape[0]), rows)
    for label, too_small in zip(ax.get_yticklabels(), small, strict=True):
        if too_small:
            label.set_color("grey")
    ax.set_xlabel(confusion.columns.name or "predicted")
    ax.set_ylabel(confusion.index.name or "true")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the row")
    if title:
        fig.suptitle(textwrap.fill(title, 60), fontsize=11)  # wrapped: a long title would run off the edge
    return fig
