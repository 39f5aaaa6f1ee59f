"""What the pre-trained clusters know about characters (paper section 4.1, Table 4).

Each K-means cluster is named after its most frequent frame label (the majority mapping); a frame is
then "recognised" when its cluster's name equals its own label. From that come per-character
accuracies, a character x character confusion, the paper's character groups, and a CTC-style
decoding of the mapped clusters that gives the character recognition rate (1 - CER).

Labels are either integer ids into `label_names` (the CTC vocabulary) or names already (e.g.
`FrameLabels.classes`, where blank frames are split into "silence" and "blank"). Blank and silence
are ordinary labels here: a cluster may map to them, and they get accuracy rows of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from w2vlens.errors import W2VLensError
from w2vlens.metrics import character_error_rate
from w2vlens.models import BLANK_LABEL
from w2vlens.silence import SILENCE_LABEL
from w2vlens.text import WORD_DELIMITER, normalize_text

log = logging.getLogger(__name__)
BLANK_LIKE = frozenset({BLANK_LABEL, SILENCE_LABEL})
DEFAULT_BANDS = ((0.0, 0.2), (0.2, 0.3), (0.3, 1.0))


def _names(labels: np.ndarray, label_names: Sequence[str] | None) -> np.ndarray:
    """Per-frame label names: ids looked up in `label_names`, or the labels themselves when they are names."""
    labels = np.asarray(labels)
    if label_names is None or not np.issubdtype(labels.dtype, np.integer):
        return labels.astype(str)
    if labels.size and (labels.min() < 0 or labels.max() >= len(label_names)):
        raise W2VLensError(f"label ids must lie in [0, {len(label_names)}), got {labels.min()}..{labels.max()}")
    return np.asarray(label_names, dtype=object)[labels].astype(str)


def _check_lengths(clusters: np.ndarray, labels: np.ndarray) -> None:
    if len(clusters) != len(labels):
        raise W2VLensError(f"{len(clusters)} cluster ids but {len(labels)} frame labels")


def _mapped(clusters: np.ndarray, mapping: Mapping[int, str]) -> np.ndarray:
    """Per-frame names of the frames' clusters; a cluster the mapping lacks is an error."""
    clusters = np.asarray(clusters)
    ids, inverse = np.unique(clusters, return_inverse=True)
    missing = [int(c) for c in ids if int(c) not in mapping]
    if missing:
        raise W2VLensError(f"clusters without a mapped label: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    return np.asarray([mapping[int(c)] for c in ids], dtype=object)[inverse].astype(str)


def majority_mapping(clusters: np.ndarray, labels: np.ndarray,
                     label_names: Sequence[str] | None = None) -> dict[int, str]:
    """Each cluster's most frequent label; ties go to the alphabetically first label name."""
    clusters = np.asarray(clusters)
    names = _names(labels, label_names)
    _check_lengths(clusters, names)
    table = pd.crosstab(clusters, names)
    table = table[sorted(table.columns)]  # idxmax returns the first maximum: the smallest name wins a tie
    return {int(cluster): str(label) for cluster, label in table.idxmax(axis=1).items()}


def character_confusion(clusters: np.ndarray, labels: np.ndarray, label_names: Sequence[str] | None,
                        mapping: Mapping[int, str]) -> pd.DataFrame:
    """Frames per (true label, predicted label), the prediction being the frame's cluster's mapped
    label. Rows and columns cover every label that occurs on either side, in sorted order."""
    clusters = np.asarray(clusters)
    names = _names(labels, label_names)
    _check_lengths(clusters, names)
    predicted = _mapped(clusters, mapping)
    everything = sorted(set(names) | set(predicted))
    table = pd.crosstab(pd.Series(names, name="label"), pd.Series(predicted, name="predicted"))
    return table.reindex(index=everything, columns=everything, fill_value=0)


def per_character_accuracy(clusters: np.ndarray, labels: np.ndarray, label_names: Sequence[str] | None,
                           mapping: Mapping[int, str]) -> pd.DataFrame:
    """Per true label: `frames`, `correct` (frames whose cluster maps to that label) and `accuracy`.
    Blank and silence get their own rows like any other label."""
    confusion = character_confusion(clusters, labels, label_names, mapping)
    frames = confusion.sum(axis=1)
    correct = pd.Series(np.diag(confusion.to_numpy()), index=confusion.index)
    table = pd.DataFrame({"frames": frames, "correct": correct})
    table = table[table["frames"] > 0]
    table["accuracy"] = table["correct"] / table["frames"]
    table.index.name = "label"
    return table


def _is_character(name: str) -> bool:
    """Single written characters; blank, silence, the word delimiter and tokens like <unk> are not."""
    return len(name) == 1 and name != WORD_DELIMITER


def _band_name(low: float, high: float, last: bool) -> str:
    if low <= 0:
        return f"accuracy <{high:.0%}"
    if last and high >= 1:
        return f"accuracy {low:.0%}+"
    return f"accuracy {low:.0%}–{high:.0%}"


def character_groups(accuracy_table: pd.DataFrame, confusion: pd.DataFrame,
                     bands: Sequence[tuple[float, float]] = DEFAULT_BANDS,
                     blank_like: Collection[str] = BLANK_LIKE, merged_share: float = 0.5,
                     pair_share: float = 0.1, max_pairs: int = 5) -> pd.DataFrame:
    """The paper's Table 4: one row per group with its `members` and a `text` rendering.

    Only single characters are listed (not blank, silence, "|" or <unk>):

    - merged with blank: at least `merged_share` of the character's frames fall into clusters that
      map to a blank-like label;
    - often confused pairs: characters A, B whose frames cross over (A predicted as B plus B as A)
      make at least `pair_share` of their frames together; the `max_pairs` largest shares, each
      pair in alphabetical order;
    - accuracy bands: low <= accuracy < high, the last band including its upper bound.
    """
    characters = sorted(c for c in accuracy_table.index if _is_character(str(c)))
    missing = [c for c in characters if c not in confusion.index or c not in confusion.columns]
    if missing:
        raise W2VLensError(f"the confusion table lacks characters of the accuracy table: {missing}")
    frames = confusion.sum(axis=1)
    blank_columns = [c for c in confusion.columns if c in blank_like]
    to_blank = confusion[blank_columns].sum(axis=1) if blank_columns else pd.Series(0, index=confusion.index)
    merged = [c for c in characters if frames[c] and to_blank[c] / frames[c] >= merged_share]

    pairs = []
    for i, first in enumerate(characters):
        for second in characters[i + 1 :]:
            crossed = confusion.at[first, second] + confusion.at[second, first]
            share = crossed / (frames[first] + frames[second])
            if share >= pair_share:
                pairs.append((share, first, second))
    pairs.sort(key=lambda pair: (-pair[0], pair[1], pair[2]))
    confused = [(first, second) for _, first, second in pairs[:max_pairs]]

    rows = [
        {"category": "merged with blank", "members": merged, "text": ", ".join(merged)},
        {"category": "often confused pairs", "members": confused,
         "text": ", ".join(f"[{first}, {second}]" for first, second in confused)},
    ]
    accuracy = accuracy_table["accuracy"]
    for number, (low, high) in enumerate(bands):
        last = number == len(bands) - 1
        members = [c for c in characters if low <= accuracy[c] < high or (last and accuracy[c] == high)]
        rows.append({"category": _band_name(low, high, last), "members": members, "text": ", ".join(members)})
    return pd.DataFrame(rows)


def decode_cluster_sequence(frame_clusters: np.ndarray, mapping: Mapping[int, str],
                            blank_like: Collection[str] = BLANK_LIKE) -> str:
    """The text an utterance's clusters spell when read like greedy CTC output.

    The rule: name every frame by its cluster's mapped label, collapse each run of consecutive frames
    with the same label into one symbol (whatever clusters the run spans), then drop blank-like
    symbols and turn the word delimiter "|" into a space; other multi-character labels (<unk>) are
    dropped too. Spaces are normalised as in `normalize_text` (no leading, trailing or double ones).
    A double letter therefore survives only when another frame separates its runs: frames
    t t u u blank u l i i read "tuuli", frames t t u u u l i read "tuli".
    """
    labels = _mapped(np.asarray(frame_clusters), mapping)
    if labels.size == 0:
        return ""
    run_starts = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
    symbols = [" " if label == WORD_DELIMITER else label for label in labels[run_starts]
               if label not in blank_like and len(label) == 1]
    return " ".join("".join(symbols).split())


def decode_utterances(clusters: np.ndarray, mapping: Mapping[int, str], offsets: Sequence[int],
                      n_frames: Sequence[int], blank_like: Collection[str] = BLANK_LIKE) -> list[str]:
    """`decode_cluster_sequence` for each utterance's frames `offset : offset + n_frames`."""
    clusters = np.asarray(clusters)
    return [decode_cluster_sequence(clusters[int(start) : int(start) + int(length)], mapping, blank_like)
            for start, length in zip(offsets, n_frames, strict=True)]


def cluster_recognition_cer(clusters: np.ndarray, mapping: Mapping[int, str], offsets: Sequence[int],
                            n_frames: Sequence[int], references: Sequence[str | None],
                            blank_like: Collection[str] = BLANK_LIKE) -> float:
    """CER of the decoded clusters against the normalised reference texts (the paper reports
    83.4%, i.e. a 16.6% recognition rate). Utterances without a reference are left out."""
    hypotheses = decode_utterances(clusters, mapping, offsets, n_frames, blank_like)
    pairs = [(normalize_text(ref), hyp) for ref, hyp in zip(references, hypotheses, strict=True)
             if isinstance(ref, str) and ref.strip()]
    if not pairs:
        raise W2VLensError("no utterance has a reference text to score the cluster decoding against")
    if len(pairs) < len(hypotheses):
        log.warning("cluster recognition CER: %d of %d utterances have no reference text and are left out",
                    len(hypotheses) - len(pairs), len(hypotheses))
    refs, hyps = zip(*pairs, strict=True)
    return character_error_rate(list(refs), list(hyps))
