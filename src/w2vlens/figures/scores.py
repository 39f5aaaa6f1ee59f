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
