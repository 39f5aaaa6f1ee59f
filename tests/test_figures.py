"""Projection panels: one per view, hidden categories left out, categorical or continuous colours."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from w2vlens.errors import W2VLensError
from w2vlens.figures import layer_curves, projection_panels
from w2vlens.figures.projections import SPECIAL_COLOURS, marker_style

VIEWS = ("cnn", "pretrained", "finetuned")


def panels_data(n: int = 20_000) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array(list("aeiklmnorstuy") + ["blank", "silence", "|"]), n)
    return {view: rng.normal(size=(n, 2)) for view in VIEWS}, labels


def legend_labels(fig: plt.Figure) -> list[str]:
    (legend,) = fig.legends  # one legend shared by the panels
    return [text.get_text() for text in legend.get_texts()]


def legend_colours(fig: plt.Figure) -> dict[str, tuple]:
    (legend,) = fig.legends
    return {handle.get_label(): to_rgba(handle.get_color()) for handle in legend.legend_handles}


def test_panels_hide_categories_and_save(tmp_path: Path) -> None:
    coords, labels = panels_data()
    hidden = {"blank", "silence"}
    fig = projection_panels(coords, labels, title="UMAP", hide={"cnn": hidden, "pretrained": hidden})
    assert len(fig.axes) == 3
    cnn, _, finetuned = fig.axes
    assert "blank and silence hidden" in cnn.get_title() and "hidden" not in finetuned.get_title()
    assert hidden <= set(legend_labels(fig))  # the fine-tuned panel shows them
    assert len(cnn.collections[0].get_offsets()) == np.isin(labels, list(hidden), invert=True).sum()
    assert legend_colours(fig)["silence"] == to_rgba(SPECIAL_COLOURS["silence"])
    assert legend_colours(fig)["blank"] == to_rgba(SPECIAL_COLOURS["blank"])
    assert "|" not in legend_labels(fig) and "\u2423" in legend_labels(fig)  # the word delimiter, visibly
    assert all(c.get_rasterized() for ax in fig.axes for c in ax.collections)
    for suffix in ("png", "pdf"):
        fig.savefig(tmp_path / f"panels.{suffix}")
        assert (tmp_path / f"panels.{suffix}").stat().st_size > 1000
    plt.close(fig)


def test_legend_is_sorted_by_frequency() -> None:
    labels = np.array(["b"] * 5 + ["a"] * 3 + ["c"] * 9)
    fig = projection_panels({"view": np.zeros((len(labels), 2))}, {"view": labels})
    assert legend_labels(fig) == ["c", "b", "a"]
    plt.close(fig)


def test_numbers_are_categories_when_few_integers_and_a_colormap_otherwise() -> None:
    coords, _ = panels_data(2000)
    clusters = np.random.default_rng(1).integers(0, 33, 2000)
    fig = projection_panels(coords, {view: clusters for view in VIEWS})
    assert len(fig.axes) == 3 and len(legend_labels(fig)) == 33
    plt.close(fig)
    fig = projection_panels(coords, np.random.default_rng(2).normal(size=2000), title="confidence")
    assert len(fig.axes) == 4  # three panels and one shared colour bar
    assert not fig.legends and all(ax.get_legend() is None for ax in fig.axes[:3])
    plt.close(fig)


def test_mismatched_inputs_are_errors() -> None:
    coords, labels = panels_data(100)
    with pytest.raises(W2VLensError, match="colour values for"):
        projection_panels(coords, labels[:50])
    with pytest.raises(W2VLensError, match="no colours for view 'cnn'"):
        projection_panels(coords, {"finetuned": labels})


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours in [0, 1], for perceptual distances."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def test_forty_labels_get_forty_colours_apart_from_each_other_and_the_greys() -> None:
    labels = np.array([f"c{i}" for i in range(40) for _ in range(i + 1)] + ["blank", "silence"] * 5)
    fig = projection_panels({"view": np.random.default_rng(0).normal(size=(len(labels), 2))}, labels)
    colours = legend_colours(fig)
    plt.close(fig)
    assert len(colours) == 42 and len(set(colours.values())) == 42  # no two labels share a colour
    lab = srgb_to_lab(np.array([colour[:3] for colour in colours.values()]))
    distances = np.linalg.norm(lab[:, None] - lab[None], axis=-1)[np.triu_indices(len(lab), 1)]
    assert distances.min() > 12  # CIE76 delta E: clearly different side by side, not just unequal


def test_png_is_saved_at_200_dpi(tmp_path: Path) -> None:
    coords, labels = panels_data(3000)
    fig = projection_panels(coords, labels, title="UMAP")
    width_inches = fig.get_size_inches()[0]
    fig.savefig(tmp_path / "figure1.png")
    plt.close(fig)
    width, height = plt.imread(tmp_path / "figure1.png").shape[1::-1]
    assert width >= 200 * width_inches - 2 and width >= 2600


def test_markers_grow_and_darken_as_panels_get_sparse() -> None:
    sparse, dense = marker_style(2_000), marker_style(200_000)
    assert sparse[0] > dense[0] and sparse[1] > dense[1]
    assert dense[0] > 0 and 0 < dense[1] < sparse[1] <= 1


def test_each_category_is_named_at_its_median() -> None:
    labels = np.array(["a"] * 50 + ["b"] * 50 + ["silence"] * 10)
    coords = np.concatenate([np.full((50, 2), -3.0), np.full((50, 2), 4.0), np.zeros((10, 2))])
    fig = projection_panels({"view": coords}, labels)
    names = {text.get_text(): text.get_position() for text in fig.axes[0].texts}
    plt.close(fig)
    assert names == {"a": (-3.0, -3.0), "b": (4.0, 4.0)}  # silence and blank keep only their grey


def test_names_that_would_overlap_give_way_to_the_more_frequent() -> None:
    rng = np.random.default_rng(0)
    labels = np.array(["a"] * 300 + ["b"] * 200 + ["c"] * 100 + ["|"] * 100)
    coords = rng.normal(size=(len(labels), 2))  # diffuse categories: every median near the centre
    coords[labels == "|"] += 6.0
    fig = projection_panels({"view": coords}, labels)
    names = [text.get_text() for text in fig.axes[0].texts]
    plt.close(fig)
    assert names == ["a", "\u2423"]  # b and c would print over a; the delimiter is written visibly


def test_layer_curves_tick_whole_layers() -> None:
    table = pd.DataFrame({"layer": range(5), **{f"finetuned_{m}": np.linspace(0.1, 0.5, 5)
                                                for m in ("ami", "homogeneity", "completeness")}})
    fig = layer_curves(table, ["finetuned"], "layers")
    fig.canvas.draw()
    ticks = fig.axes[0].get_xticks()
    plt.close(fig)
    assert len(ticks) >= 3 and np.all(np.mod(ticks, 1) == 0)


def test_titles_name_the_cnn_view_once() -> None:
    from w2vlens.pipelines.view import view_title

    assert view_title("cnn", "cnn") == "cnn"
    assert view_title("finetuned", "layer_04") == "finetuned layer_04"
