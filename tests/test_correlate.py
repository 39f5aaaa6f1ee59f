"""Character correlations and frequencies."""

import numpy as np
import pandas as pd
import pytest

from w2vlens.analysis.correlate import character_correlations, character_frequencies
from w2vlens.errors import W2VLensError


def test_perfect_correlation_and_multiple_r() -> None:
    characters = list("abcdefgh")
    rng = np.random.default_rng(0)
    pre = pd.Series(np.linspace(0.1, 0.8, 8), index=characters)
    frequency = pd.Series(rng.random(8), index=characters)
    scores = character_correlations(pre, 2 * pre + 0.1, frequency)
    assert scores["pre_vs_fine_pearson_r"] == pytest.approx(1.0)
    assert scores["pre_vs_fine_spearman_r"] == pytest.approx(1.0)
    assert scores["multiple_r"] == pytest.approx(1.0)

    fine = pre + frequency  # neither predictor alone explains it, both together do
    scores = character_correlations(pre, fine, frequency.drop("h"))  # "h" is not in all three
    assert scores["pre_vs_fine_n"] == 8 and scores["frequency_vs_fine_cer_n"] == scores["multiple_n"] == 7
    singles = max(abs(scores["pre_vs_fine_pearson_r"]), abs(scores["frequency_vs_fine_cer_pearson_r"]))
    assert scores["multiple_r"] >= singles
    assert scores["multiple_r"] == pytest.approx(1.0) and scores["multiple_r_p"] == 0
    with pytest.raises(W2VLensError, match="at least 4 characters"):
        character_correlations(pre[:3], pre[:3], frequency[:3])
    with pytest.raises(W2VLensError, match="at least 4 characters present in all three"):
        character_correlations(pre, fine, frequency[:3])
    assert set(character_correlations(pre, fine)) == {f"pre_vs_fine_{name}" for name in (
        "pearson_r", "pearson_p", "spearman_r", "spearman_p", "n")}


def test_character_frequencies_skip_spaces() -> None:
    frequencies = character_frequencies(["Aa b!", "ab"])
    assert frequencies.to_dict() == pytest.approx({"a": 0.6, "b": 0.4})
