"""Frame labelling over a store's logits: alignment, the silence split, skipped utterances."""

import json

import numpy as np
import pandas as pd
import pytest

from w2vlens.labelling.frames import label_frames, silence_scores

VOCABULARY = ["blank", "<unk>", "|", "a", "t"]


def peaked_logits(frame_labels: list[int]) -> np.ndarray:
    logits = np.full((len(frame_labels), len(VOCABULARY)), -5.0, dtype=np.float32)
    logits[np.arange(len(frame_labels)), frame_labels] = 5.0
    return logits


def test_label_frames_splits_pauses_and_reports_skipped_utterances(caplog: pytest.LogCaptureFixture) -> None:
    # "ta ta": 12 frames of leading pause, t a, a 12-frame pause between the words, t a, 3 blank frames
    first = [0] * 12 + [4, 3] + [0] * 5 + [2] + [0] * 6 + [4, 3] + [0] * 3
    second = [4, 3, 0, 4]  # too short for its transcript
    third = [0, 3, 0]  # no transcript
    logits = np.concatenate([peaked_logits(first), peaked_logits(second), peaked_logits(third)])
    utterances = pd.DataFrame({
        "id": ["u1", "u2", "u3"], "audio": ["u1.wav", "u2.wav", "u3.wav"],
        "text": ["ta ta", "tatatata", None], "offset": [0, len(first), len(first) + len(second)],
        "n_frames": [len(first), len(second), len(third)],
        "pauses": [json.dumps([[0.0, 0.24], [0.28, 0.52]]), "[]", "[]"],
    })
    labels = label_frames(logits, utterances, VOCABULARY, min_silence_frames=10)
    assert labels.pseudo.tolist() == first + second + third
    u1 = labels.classes[: len(first)]
    assert list(u1[:12]) == ["silence"] * 12
    assert list(u1[14:26]) == ["silence"] * 5 + ["|"] + ["silence"] * 6
    assert list(u1[-3:]) == ["blank"] * 3  # a 3-frame tail is shorter than a pause
    assert set(labels.skipped) == {"u2", "u3"}
    assert "needs at least 8 frames" in labels.skipped["u2"]
    assert "u2" in caplog.text and "alignment skipped" in caplog.text
    assert list(labels.classes[len(first):]) == ["t", "a", "blank", "t", "blank", "a", "blank"]

    scores = silence_scores(labels.classes, utterances, frame_seconds=0.02)
    assert scores["precision"] == pytest.approx(1.0)
    assert scores["recall"] == pytest.approx(23 / 24)  # the "|" frame inside the pause is not silence


def test_silence_scores_need_known_pauses() -> None:
    utterances = pd.DataFrame({"id": ["u"], "offset": [0], "n_frames": [2]})
    assert silence_scores(np.array(["blank", "a"], dtype=object), utterances, 0.02) is None
