"""Figures logged with every run."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from w2vlens.figures.projections import DPI
from w2vlens.labels import shown_label


def contingency_heatmap(table: pd.DataFrame, title: str) -> Figure:
    """Share of each cluster's frames per label; clusters ordered by their majority label so a
    good clustering shows as a diagonal."""
    shares = table.div(table.sum(axis=1), axis=0)
    majority = shares.to_numpy().argmax(axis=1)
    order = np.lexsort((-shares.to_numpy().max(axis=1), majority))
    shares = shares.iloc[order]
    height = max(4.0, 0.22 * len(shares) + 1.5)
    width = max(6.0, 0.28 * shares.shape[1] + 2.5)
    fig, ax = plt.subplots(figsize=(width, height), constrained_layout=True, dpi=DPI)
    image = ax.imshow(shares.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(shares.shape[1]), [shown_label(label) for label in shares.columns], rotation=90, fontsize=8)
    ax.set_yticks(range(len(shares)), [f"{c} (n={table.loc[c].sum()})" for c in shares.index], fontsize=7)
    ax.set_xlabel("label (by frequency)")
    ax.set_ylabel("cluster (by majority label)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="share of the cluster's frames")
    return fig


def layer_curves(table: pd.DataFrame, views: list[str], title: str, cnn_ami: float | None = None) -> Figure:
    """AMI, homogeneity and completeness per layer for each view, and their linear CKA per layer;
    `cnn_ami`, the CNN encoder output's AMI, as a level line: what the Transformer adds to it."""
    with_cka = "linear_cka" in table
    fig, axes = plt.subplots(1, 2 if with_cka else 1, figsize=(11 if with_cka else 6, 4), squeeze=False,
                             constrained_layout=True, dpi=DPI)
    styles = {"ami": "-", "homogeneity": "--", "completeness": ":"}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, view in zip(colours[: len(views)], views, strict=True):
        for metric, style in styles.items():
            axes[0, 0].plot(table["layer"], table[f"{view}_{metric}"], style, color=colour, marker="o",
                            markersize=3, label=f"{view} {metric}")
    if cnn_ami is not None:
        axes[0, 0].axhline(cnn_ami, color="grey", linewidth=1, linestyle="-.", label=f"CNN output ami ({cnn_ami:.2f})")
    axes[0, 0].set(xlabel="layer (0 = Transformer input)", ylabel="score vs pseudo-labels", ylim=(0, 1))
    axes[0, 0].legend(fontsize=8)
    if with_cka:
        axes[0, 1].plot(table["layer"], table["linear_cka"], "-o", color="black", markersize=3)
        axes[0, 1].set(xlabel="layer", ylabel=f"linear CKA, {' vs '.join(views)}", ylim=(0, 1))
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
    fig.suptitle(title, fontsize=10)
    return fig


def sweep_comparison(children: pd.DataFrame, metrics: tuple[str, ...], title: str = "sweep") -> Figure:
    """Grouped bars of each sweep job's headline metrics (rows: jobs by name; columns `metrics.<m>`),
    each bar labelled with its value."""
    children = children.sort_index()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(children) + 2), 4.5), constrained_layout=True, dpi=DPI)
    _grouped_bars(ax, list(children.index), {metric: children[f"metrics.{metric}"].to_numpy() for metric in metrics})
    ax.set(ylabel="score vs pseudo-labels", ylim=(0, 1.1))
    ax.set_title(title, fontsize=10)
    return fig


def paper_scores(table1: pd.DataFrame, table2: pd.DataFrame, table3: pd.DataFrame, title: str) -> Figure:
    """Tables 1-3 of the paper as one picture of bars with their values: each view's clustering
    against the pseudo-labels (Table 1), what each projection keeps of the clusters (Table 2) and
    how alike the views' clusterings and embeddings are (Table 3)."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True, dpi=DPI,
                             gridspec_kw={"width_ratios": [len(table1) + 1, len(table2) + 1, len(table3) + 1]})
    _grouped_bars(axes[0], [f"{row.view} {row.clustering}" for row in table1.itertuples()],
                  {metric: table1[metric].to_numpy() for metric in ("ami", "homogeneity", "completeness")})
    axes[0].set_title("Table 1: clusters vs pseudo-labels", fontsize=10)
    _grouped_bars(axes[1], [f"{row.view} {row.projection}" for row in table2.itertuples()],
                  {"ami": table2["projection_ami"].to_numpy()})
    axes[1].set_title("Table 2: 2-D clusters vs the embeddings' clusters", fontsize=10)
    _grouped_bars(axes[2], [f"{row.earlier} vs {row.later}" for row in table3.itertuples()],
                  {metric: table3[metric].to_numpy() for metric in ("ami", "linear_cka")})
    axes[2].set_title("Table 3: views compared", fontsize=10)
    for ax in axes:
        ax.set_ylim(0, 1.1)
    axes[0].set_ylabel("score")
    fig.suptitle(title, fontsize=11)
    return fig


def _grouped_bars(ax: plt.Axes, groups: list[str], series: dict[str, np.ndarray]) -> None:
    """One group of bars per entry of `groups`, a bar per series, each labelled with its value."""
    positions = np.arange(len(groups))
    width = 0.8 / len(series)
    for index, (name, values) in enumerate(series.items()):
        bars = ax.bar(positions + index * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.set_xticks(positions + width * (len(series) - 1) / 2, groups, rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=7, loc="upper right")
