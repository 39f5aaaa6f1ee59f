"""Figures logged with every run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def contingency_heatmap(table: pd.DataFrame, title: str) -> Figure:
    """Share of each cluster's frames per label; clusters ordered by their majority label so a
    good clustering shows as a diagonal."""
    shares = table.div(table.sum(axis=1), axis=0)
    majority = shares.to_numpy().argmax(axis=1)
    order = np.lexsort((-shares.to_numpy().max(axis=1), majority))
    shares = shares.iloc[order]
    height = max(4.0, 0.22 * len(shares) + 1.5)
    width = max(6.0, 0.28 * shares.shape[1] + 2.5)
    fig, ax = plt.subplots(figsize=(width, height), constrained_layout=True)
    image = ax.imshow(shares.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(shares.shape[1]), shares.columns, rotation=90, fontsize=8)
    ax.set_yticks(range(len(shares)), [f"{c} (n={table.loc[c].sum()})" for c in shares.index], fontsize=7)
    ax.set_xlabel("label (by frequency)")
    ax.set_ylabel("cluster (by majority label)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="share of the cluster's frames")
    return fig
