"""Projection panels: one per view, hidden categories left out, categorical or continuous colours."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from w2vlens.errors import W2VLensError
from w2vlens.plots import SPECIAL_COLOURS, projection_panels

VIEWS = ("cnn", "pretrained", "finetuned")


def panels_data(n: int = 20_000) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array(list("aeiklmnorstuy") + ["blank", "silence", "|"]), n)
    return {view: rng.normal(size=(n, 2)) for view in VIEWS}, labels


def legend_labels(ax: plt.Axes) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def legend_colours(ax: plt.Axes) -> dict[str, tuple]:
    return {handle.get_label(): to_rgba(handle.get_color()) for handle in ax.get_legend().legend_handles}


def test_panels_hide_categories_and_save(tmp_path: Path) -> None:
    coords, labels = panels_data()
    hidden = {"blank", "silence"}
    fig = projection_panels(coords, labels, title="UMAP", hide={"cnn": hidden, "pretrained": hidden})
    assert len(fig.axes) == 3
    cnn, _, finetuned = fig.axes
    assert hidden.isdisjoint(legend_labels(cnn))
    assert hidden <= set(legend_labels(finetuned))
    assert len(cnn.collections[0].get_offsets()) == np.isin(labels, list(hidden), invert=True).sum()
    assert legend_colours(finetuned)["silence"] == to_rgba(SPECIAL_COLOURS["silence"])
    assert legend_colours(finetuned)["blank"] == to_rgba(SPECIAL_COLOURS["blank"])
    assert legend_colours(cnn)["a"] == legend_colours(finetuned)["a"]  # one colour per category everywhere
    assert all(c.get_rasterized() for ax in fig.axes for c in ax.collections)
    for suffix in ("png", "pdf"):
        fig.savefig(tmp_path / f"panels.{suffix}")
        assert (tmp_path / f"panels.{suffix}").stat().st_size > 1000
    plt.close(fig)


def test_legend_is_sorted_by_frequency() -> None:
    labels = np.array(["b"] * 5 + ["a"] * 3 + ["c"] * 9)
    fig = projection_panels({"view": np.zeros((len(labels), 2))}, {"view": labels})
    assert legend_labels(fig.axes[0]) == ["c", "b", "a"]
    plt.close(fig)


def test_numbers_are_categories_when_few_integers_and_a_colormap_otherwise() -> None:
    coords, _ = panels_data(2000)
    clusters = np.random.default_rng(1).integers(0, 33, 2000)
    fig = projection_panels(coords, {view: clusters for view in VIEWS})
    assert len(fig.axes) == 3 and len(legend_labels(fig.axes[0])) == 33
    plt.close(fig)
    fig = projection_panels(coords, np.random.default_rng(2).normal(size=2000), title="confidence")
    assert len(fig.axes) == 4  # three panels and one shared colour bar
    assert all(ax.get_legend() is None for ax in fig.axes[:3])
    plt.close(fig)


def test_mismatched_inputs_are_errors() -> None:
    coords, labels = panels_data(100)
    with pytest.raises(W2VLensError, match="colour values for"):
        projection_panels(coords, labels[:50])
    with pytest.raises(W2VLensError, match="no colours for view 'cnn'"):
        projection_panels(coords, {"finetuned": labels})
