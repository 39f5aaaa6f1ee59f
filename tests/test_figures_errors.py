"""Figures 2 and 3: agreement projection and the probe's confusion matrix."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from w2vlens.errors import W2VLensError
from w2vlens.figures.errors import CORRECT_COLOUR, agreement_projection, confusion_figure


def test_agreement_projection_draws_correct_first_in_grey() -> None:
    rng = np.random.default_rng(0)
    categories = np.array(["correct"] * 50 + ["2/4"] * 5 + ["4/4"] * 5 + ["1/4"] * 5 + ["unannotated"] * 3)
    fig = agreement_projection(rng.normal(size=(len(categories), 2)), categories, title="errors")
    collections = fig.axes[0].collections
    assert [len(c.get_offsets()) for c in collections] == [50, 5, 5, 5]
    assert np.allclose(collections[0].get_facecolor()[0][:3], to_rgba(CORRECT_COLOUR)[:3])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["correct (50)", "1/4 (5)", "2/4 (5)",
                                                                            "4/4 (5)"]
    assert all(c.get_rasterized() for c in collections)
    plt.close(fig)
    with pytest.raises(W2VLensError, match="unknown error category"):
        agreement_projection(np.zeros((2, 2)), np.array(["correct", "oops"]), "")


def test_confusion_figure_is_row_normalised_and_annotated() -> None:
    confusion = pd.DataFrame([[8, 2], [0, 0]], index=["correct", "1/1"], columns=["correct", "1/1"])
    fig = confusion_figure(confusion, "probe", min_support=0)
    ax = fig.axes[0]
    assert np.allclose(ax.images[0].get_array(), [[0.8, 0.2], [0.0, 0.0]])
    assert [t.get_text() for t in ax.texts] == ["8\n80%", "2\n20%", "0\n0%", "0\n0%"]
    plt.close(fig)


def test_confusion_figure_marks_classes_too_small_to_score() -> None:
    confusion = pd.DataFrame([[8, 2], [0, 0], [1, 1]], index=["correct", "1/2", "2/2"], columns=["correct", "1/2"])
    fig = confusion_figure(confusion, "probe", min_support=5)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["correct (n=10)", "1/2 (n=0: too few to score)", "2/2 (n=2: too few to score)"]
    assert np.ma.getmaskarray(ax.images[0].get_array())[1:].all()  # no shares drawn for those rows
    assert [t.get_text() for t in ax.texts][2:] == ["–", "–", "1", "1"]
    plt.close(fig)
