"""Scatter panels of 2-D projections (paper, Figs. 1 and 2): one panel per view, coloured by a
category (label, silence/blank, speaker, cluster id) or by a numeric value.

Points are drawn as one rasterised collection per panel in a shuffled order, so no category hides
another by being drawn last and a PDF or SVG stays small while its text stays vector. Markers grow
and turn opaque as a panel holds fewer points, so sparse panels are not washed out. A category has
the same colour in every panel, from a Glasbey palette (colorcet) whose colours stay apart for
hundreds of categories; silence and non-silent blank get two fixed greys the palette (chroma >= 20)
never uses. Each category's name is written at its points' median, as in the paper's figures.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import colorcet
import matplotlib.patheffects as path_effects
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import shown_label

SPECIAL_COLOURS = {"silence": "#1a1a1a", "blank": "#b0b0b0"}
LEGEND_ENTRIES = 60  # more categories than this are drawn but only the most frequent are listed
DPI = 200  # figures save at this resolution (matplotlib's default is 100)
# Glasbey colours (max-min distance in CAM02-UCS) without greys (chroma >= 20) or pale ones
# (lightness <= 70), so every colour stands out on white and from the two greys above.
PALETTE = [tuple(colour) for colour in colorcet.glasbey_bw_minc_20_maxl_70]


def projection_panels(coords_by_view: Mapping[str, np.ndarray], colours: Mapping[str, np.ndarray] | np.ndarray,
                      title: str = "", hide: Mapping[str, Collection[str]] | None = None,
                      max_categories: int = 60, point_size: float | None = None, alpha: float | None = None,
                      seed: int = 0, name_centroids: bool = True) -> Figure:
    """One scatter panel per view of its (n, 2) coordinates.

    `colours` is one array per view (or one array shared by all views, when they hold the same
    frames). Strings, booleans and numbers with at most `max_categories` distinct integer values are
    categories, listed in each panel's legend by frequency; other numbers get a colormap and a colour
    bar. `hide` drops categories from a view's panel, e.g. {"cnn": {"blank", "silence"}}, and its
    title says so. Several panels share one legend below them. Marker size and opacity follow the
    panel's number of points unless given; `name_centroids` writes each category's name at its
    points' median (where it would not overlap a more frequent one's), which suits labels and
    clusters but not metadata such as speakers, whose medians all fall near the centre.
    """
    hide = hide or {}
    values = {view: _colour_values(view, coords, colours) for view, coords in coords_by_view.items()}
    continuous = _is_continuous(np.concatenate(list(values.values())), max_categories)
    if not continuous:
        values = {view: np.asarray(v).astype(str) for view, v in values.items()}
    keep = {view: np.ones(len(v), bool) if continuous else ~np.isin(v, list(hide.get(view, ())))
            for view, v in values.items()}

    shown_values = [] if continuous else np.concatenate([v[keep[view]] for view, v in values.items()])
    legend_rows = min(LEGEND_ENTRIES, len(np.unique(shown_values))) if len(shown_values) else 0
    legend_columns = _legend_columns(legend_rows, len(values))
    height = 4.2 + 0.17 * math.ceil(legend_rows / legend_columns) if legend_rows else 4.2
    fig, axes = plt.subplots(1, len(values), figsize=(4.4 * len(values), height), squeeze=False,
                             constrained_layout=True, dpi=DPI)
    axes = axes[0]
    rng = np.random.default_rng(seed)
    if continuous:
        everything = np.concatenate(list(values.values())).astype(float)
        norm = Normalize(np.nanmin(everything), np.nanmax(everything))
    else:
        palette = _category_colours(shown_values)
    for ax, (view, coords) in zip(axes, coords_by_view.items(), strict=True):
        order = rng.permutation(np.flatnonzero(keep[view]))
        points = np.asarray(coords)[order]
        auto_size, auto_alpha = marker_style(len(order))
        style = dict(s=auto_size if point_size is None else point_size, alpha=auto_alpha if alpha is None else alpha,
                     linewidths=0, marker="o", rasterized=True)
        if continuous:
            mappable = ax.scatter(points[:, 0], points[:, 1], c=values[view][order].astype(float), cmap="viridis",
                                  norm=norm, **style)
        else:
            names, codes = np.unique(values[view][order], return_inverse=True)
            rgba = np.array([palette[name] for name in names]).reshape(-1, 4)[codes]
            ax.scatter(points[:, 0], points[:, 1], c=rgba, **style)
            if name_centroids:
                _name_centroids(ax, points, values[view][order])
        hidden = sorted(set(hide.get(view, ())) & set(np.unique(values[view]))) if not continuous else []
        note = f"; {' and '.join(hidden)} hidden" if hidden else ""
        ax.set_title(f"{view} ({len(order):,} frames{note})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    if continuous:
        fig.colorbar(mappable, ax=list(axes), shrink=0.8)
    else:
        _category_legend(fig, shown_values, palette, legend_columns)
    if title:
        fig.suptitle(title)
    return fig


def marker_style(n_points: int) -> tuple[float, float]:
    """Marker area (points^2) and opacity for a panel of `n_points`: about constant ink per panel,
    within bounds that keep 200k points from saturating and 1k points visible."""
    n = max(n_points, 1)
    return float(np.clip(6000 / n, 0.8, 12.0)), float(np.clip(0.3 + 6000 / n, 0.3, 0.9))


def _name_centroids(ax: plt.Axes, points: np.ndarray, values: np.ndarray, min_gap: float = 0.06) -> None:
    """Each category's name at the median of its points, outlined in white to stay readable. The
    most frequent categories are named first; a name closer than `min_gap` (a share of the panel's
    extent) to one already written is left out, so that diffuse categories, whose medians crowd
    the centre, do not print on top of each other."""
    outline = [path_effects.withStroke(linewidth=2.0, foreground="white")]
    names, counts = np.unique(values, return_counts=True)
    extent = np.ptp(points, axis=0) if len(points) else np.ones(2)
    extent = np.where(extent > 0, extent, 1.0)
    placed: list[np.ndarray] = []
    for index in np.lexsort((names, -counts)):
        name = names[index]
        if name in SPECIAL_COLOURS:
            continue
        median = np.median(points[values == name], axis=0)
        if any(np.all(np.abs(median - other) / extent < min_gap) for other in placed):
            continue
        placed.append(median)
        ax.text(median[0], median[1], shown_label(name), fontsize=7, fontweight="bold", ha="center", va="center",
                path_effects=outline)


def _colour_values(view: str, coords: np.ndarray, colours: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
    if np.asarray(coords).ndim != 2 or np.asarray(coords).shape[1] != 2:
        raise W2VLensError(f"view {view!r}: coordinates must be an (n, 2) array, got {np.shape(coords)}")
    if isinstance(colours, Mapping):
        if view not in colours:
            raise W2VLensError(f"no colours for view {view!r}")
        values = np.asarray(colours[view])
    else:
        values = np.asarray(colours)
    if len(values) != len(coords):
        raise W2VLensError(f"view {view!r}: {len(values)} colour values for {len(coords)} points")
    return values


def _is_continuous(values: np.ndarray, max_categories: int) -> bool:
    """Numbers are continuous unless they are few distinct integers (cluster ids, counts)."""
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
        return False
    distinct = np.unique(values)
    return len(distinct) > max_categories or not np.all(np.mod(distinct, 1) == 0)


def _category_colours(values: np.ndarray) -> dict[str, tuple[float, ...]]:
    """A colour per category, the palette's first colours going to the most frequent categories."""
    names, counts = np.unique(values, return_counts=True)
    ordered = [names[i] for i in np.lexsort((names, -counts)) if names[i] not in SPECIAL_COLOURS]
    return {name: to_rgba(SPECIAL_COLOURS[name]) for name in names if name in SPECIAL_COLOURS} | dict(
        zip(ordered, _palette(len(ordered)), strict=True))


def _palette(n: int) -> list[tuple[float, ...]]:
    """n distinct colours from the Glasbey palette; past its 256 colours they repeat."""
    return [to_rgba(PALETTE[i % len(PALETTE)]) for i in range(n)]


def _legend_columns(entries: int, panels: int = 1) -> int:
    """Up to 8 entries a column and 6 columns a panel's width."""
    return max(1, panels * min(6, math.ceil(entries / 8)))


def _category_legend(fig: Figure, values: np.ndarray, palette: dict, columns: int) -> None:
    """One legend below the panels, categories by their frequency over all of them."""
    names, counts = np.unique(values, return_counts=True)
    ordered = [names[i] for i in np.lexsort((names, -counts))]
    handles = [Line2D([], [], marker="o", linestyle="", markersize=5, color=palette[name], label=shown_label(name))
               for name in ordered[:LEGEND_ENTRIES]]
    note = f"{LEGEND_ENTRIES} most frequent of {len(ordered)}" if len(ordered) > LEGEND_ENTRIES else None
    fig.legend(handles=handles, title=note, loc="outside lower center", ncol=columns, fontsize=7, title_fontsize=7,
               frameon=False, handletextpad=0.1, columnspacing=0.8)
