"""Figures logged with every run."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from w2vlens.figures.projections import DPI


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
    ax.set_xticks(range(shares.shape[1]), shares.columns, rotation=90, fontsize=8)
    ax.set_yticks(range(len(shares)), [f"{c} (n={table.loc[c].sum()})" for c in shares.index], fontsize=7)
    ax.set_xlabel("label (by frequency)")
    ax.set_ylabel("cluster (by majority label)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="share of the cluster's frames")
    return fig


def layer_curves(table: pd.DataFrame, views: list[str], title: str) -> Figure:
    """AMI, homogeneity and completeness per layer for each view, and their linear CKA per layer."""
    with_cka = "linear_cka" in table
    fig, axes = plt.subplots(1, 2 if with_cka else 1, figsize=(11 if with_cka else 6, 4), squeeze=False,
                             constrained_layout=True, dpi=DPI)
    styles = {"ami": "-", "homogeneity": "--", "completeness": ":"}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, view in zip(colours[: len(views)], views, strict=True):
        for metric, style in styles.items():
            axes[0, 0].plot(table["layer"], table[f"{view}_{metric}"], style, color=colour, marker="o",
                            markersize=3, label=f"{view} {metric}")
    axes[0, 0].set(xlabel="layer (0 = Transformer input)", ylabel="score vs pseudo-labels", ylim=(0, 1))
    axes[0, 0].legend(fontsize=8)
    if with_cka:
        axes[0, 1].plot(table["layer"], table["linear_cka"], "-o", color="black", markersize=3)
        axes[0, 1].set(xlabel="layer", ylabel=f"linear CKA, {' vs '.join(views)}", ylim=(0, 1))
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
    fig.suptitle(title, fontsize=10)
    return fig


def sweep_comparison(children: pd.DataFrame, metrics: tuple[str, ...]) -> Figure:
    """Grouped bars of each sweep job's headline metrics (rows: jobs by name; columns `metrics.<m>`)."""
    children = children.sort_index()
    positions = np.arange(len(children))
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(children) + 2), 4.5), constrained_layout=True, dpi=DPI)
    for index, metric in enumerate(metrics):
        ax.bar(positions + index * width, children[f"metrics.{metric}"], width, label=metric)
    ax.set_xticks(positions + width * (len(metrics) - 1) / 2, children.index, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="score vs pseudo-labels", ylim=(0, 1), title="sweep: jobs side by side")
    ax.legend(fontsize=8)
    return fig


def forest_plot(table: pd.DataFrame, metrics: tuple[str, ...], title: str) -> Figure:
    """One panel per metric, one row per entry (`table`'s index, e.g. "finetuned kmeans"): the mean
    over K-means seeds (dot), the bootstrap interval (`<metric>_low`-`<metric>_high`, line) and the
    seeds' range (`<metric>_min`-`<metric>_max`, thick bar)."""
    rows = np.arange(len(table))[::-1]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1.5, 0.45 * len(table) + 1.4),
                             sharey=True, squeeze=False, constrained_layout=True, dpi=DPI)
    for ax, metric in zip(axes[0], metrics, strict=True):
        mean = table[metric].to_numpy(dtype=float)
        if f"{metric}_low" in table:
            low, high = table[f"{metric}_low"].to_numpy(dtype=float), table[f"{metric}_high"].to_numpy(dtype=float)
            ax.hlines(rows, low, high, color="black", linewidth=1, label="95% bootstrap interval")
        if f"{metric}_min" in table:
            ax.hlines(rows, table[f"{metric}_min"], table[f"{metric}_max"], color="tab:blue", linewidth=5, alpha=0.5,
                      label="K-means seeds, min-max")
        ax.plot(mean, rows, "o", color="tab:red", markersize=5, label="mean over seeds")
        ax.set(xlabel=metric, xlim=(0, 1))
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(rows, [str(name) for name in table.index], fontsize=9)
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return fig
