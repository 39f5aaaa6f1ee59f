"""Figures logged with every run."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from w2vlens.figures.projections import DPI
from w2vlens.labelling.names import shown_label


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


def forest_plot(table: pd.DataFrame, metrics: tuple[str, ...], title: str) -> Figure:
    """One panel per metric, one row per entry (`table`'s index, e.g. "finetuned kmeans"): the mean
    over K-means seeds (dot, and its value with the interval as text), the bootstrap interval
    (`<metric>_low`-`<metric>_high`, line with caps) and the seeds' range (`<metric>_min`-`_max`,
    thick bar). Each panel's axis spans its own values, so that intervals of ±0.01 stay visible."""
    rows = np.arange(len(table))[::-1]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics) + 1.5, 0.5 * len(table) + 1.6),
                             sharey=True, squeeze=False, constrained_layout=True, dpi=DPI)
    for ax, metric in zip(axes[0], metrics, strict=True):
        mean = table[metric].to_numpy(dtype=float)
        low = table.get(f"{metric}_low", table[metric]).to_numpy(dtype=float)
        high = table.get(f"{metric}_high", table[metric]).to_numpy(dtype=float)
        if f"{metric}_min" in table:
            ax.hlines(rows, table[f"{metric}_min"], table[f"{metric}_max"], color="tab:blue", linewidth=7,
                      alpha=0.4, label="K-means seeds, min-max")
        if f"{metric}_low" in table:
            ax.hlines(rows, low, high, color="black", linewidth=1.2, label="95% bootstrap interval")
            ax.plot(np.r_[low, high], np.r_[rows, rows], "|", color="black", markersize=8)
        ax.plot(mean, rows, "o", color="tab:red", markersize=4, label="mean over seeds")
        for row, value, lo, hi in zip(rows, mean, low, high, strict=True):
            text = f"{value:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if f"{metric}_low" in table else "")
            ax.annotate(text, (value, row), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=7)
        span = np.nanmax(np.r_[high, mean]) - np.nanmin(np.r_[low, mean])
        pad = max(0.08 * span, 0.02)
        ax.set(xlabel=metric, xlim=(np.nanmin(np.r_[low, mean]) - pad, np.nanmax(np.r_[high, mean]) + pad),
               ylim=(-0.6, len(table) - 0.3))
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(rows, [str(name) for name in table.index], fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    return fig
