"""The fine-tuned model's transcripts against references and annotators (paper Table 5, Figure 2).

Greedy CTC decoding keeps, for every emitted character, the run of frames that produced it, so that
judgements about characters can be carried back to frames. Alignments are rapidfuzz's Levenshtein
opcodes; reference and annotator texts are normalised with `normalize_text`, hypotheses are taken as
`greedy_transcript` produces them.

Annotator error counts (Figure 2). For each hypothesis character, the count is the number of
annotators whose transcript marks it as an error: aligned to a different character (substitution)
or to nothing (insertion). A deletion (the annotator has characters the hypothesis lacks) has no
hypothesis character to sit on; it belongs to the gap where the missing characters would go: gap i
lies before hypothesis character i, gap len(hypothesis) after the last one. Each annotator counts at
most once per character and once per gap. On frames, a character's count covers its span and a gap's
count covers the blank frames between the neighbouring spans (the frames that "ate" the character),
except pause frames (the silence split's `silence`, when given): a pause is no character the model
swallowed, and spreading a deletion over it flags far more frames than the paper's categories hold.
A gap without such frames (two spans touch, a span sits at the utterance edge, or the gap is all
pause) hands its count to the frames of the character after it (of the last character, for the
final gap), which keep the larger of the two counts: counts alone don't say whether the same
annotators are meant, so that is a lower bound.

Frame categories: "correct" (no annotator sees an error), "k/K" for k of K annotators, K being the
number of annotator columns, and "unannotated" for frames of utterances without any annotator
transcript. Missing or empty annotator transcripts are skipped for their utterance (with a warning),
so such an utterance's counts run over fewer than K annotators.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from w2vlens.corpora.corpus import ANNOTATOR_PREFIX
from w2vlens.corpora.text import characters_outside, normalize_text
from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import BLANK_LABEL, CORRECT, UNANNOTATED, WORD_DELIMITER

log = logging.getLogger(__name__)
UNKNOWN_CHARACTER = "\ufffd"  # what a multi-character token such as <unk> emits: one character, one span


class AlignedChar(NamedTuple):
    """One step of a character alignment; positions and characters are None on the side that has none."""

    op: str  # "match", "substitute", "insert" (only in the hypothesis) or "delete" (only in the reference)
    ref_pos: int | None
    hyp_pos: int | None
    ref_char: str | None
    hyp_char: str | None


class AnnotatorCounts(NamedTuple):
    """Per hypothesis character and per gap (len + 1 of them), how many annotators see an error."""

    char_counts: np.ndarray
    deletion_counts: np.ndarray
    n_annotators: int


class ErrorFrames(NamedTuple):
    """Per-frame annotator error counts (-1 where unannotated), their categories, K and the warnings."""

    counts: np.ndarray
    categories: np.ndarray
    n_annotators: int
    warnings: list[str]


def greedy_transcript(frame_ids: np.ndarray, vocabulary: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Greedy CTC text of one utterance's per-frame label ids, and each character's frame span
    [start, end): the run of frames of its id.

    Runs of one id give one character; blank runs give none; the word delimiter gives a space, except
    at the start or end of the text or after another space (as `normalize_text` would); a token longer
    than one character (<unk>) gives the replacement character U+FFFD.
    """
    frame_ids = np.asarray(frame_ids)
    if frame_ids.size and (frame_ids.min() < 0 or frame_ids.max() >= len(vocabulary)):
        raise W2VLensError(f"label ids must lie in [0, {len(vocabulary)}), got {frame_ids.min()}..{frame_ids.max()}")
    edges = np.flatnonzero(np.diff(frame_ids)) + 1
    starts = np.concatenate(([0], edges)) if frame_ids.size else np.array([], dtype=np.int64)
    ends = np.concatenate((edges, [len(frame_ids)])) if frame_ids.size else starts
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        token = vocabulary[frame_ids[start]]
        if token == BLANK_LABEL:
            continue
        if token == WORD_DELIMITER:
            if not chars or chars[-1] == " ":
                continue
            token = " "
        chars.append(token if len(token) == 1 else UNKNOWN_CHARACTER)
        spans.append((start, end))
    if chars and chars[-1] == " ":
        chars.pop()
        spans.pop()
    return "".join(chars), spans


def char_alignment(reference: str, hypothesis: str) -> list[AlignedChar]:
    """A minimum-edit alignment of the two strings, one entry per aligned character."""
    steps: list[AlignedChar] = []
    for op in Levenshtein.opcodes(reference, hypothesis):
        refs, hyps = range(op.src_start, op.src_end), range(op.dest_start, op.dest_end)
        if op.tag in ("equal", "replace"):  # Levenshtein replace blocks pair characters one to one
            name = "match" if op.tag == "equal" else "substitute"
            steps += [AlignedChar(name, r, h, reference[r], hypothesis[h]) for r, h in zip(refs, hyps, strict=True)]
        elif op.tag == "insert":
            steps += [AlignedChar("insert", None, h, None, hypothesis[h]) for h in hyps]
        else:
            steps += [AlignedChar("delete", r, None, reference[r], None) for r in refs]
    return steps


def per_character_accuracy_vs_reference(hypotheses: Sequence[str], references: Sequence[str],
                                        vocabulary: Sequence[str] | None = None) -> pd.DataFrame:
    """Per reference character (spaces left out): `occurrences`, `matched`, `substituted`, `deleted`
    and `accuracy` = matched / occurrences. Insertions belong to no reference character.

    With `vocabulary`, a reference character the model cannot emit is an error: its accuracy would be
    zero by construction, not a finding.
    """
    counts: dict[str, dict[str, int]] = {}
    for number, (hypothesis, reference) in enumerate(zip(hypotheses, references, strict=True)):
        reference = normalize_text(reference or "")
        if vocabulary is not None:
            missing = characters_outside(reference, set(vocabulary))
            if missing:
                raise W2VLensError(f"reference {number} ({reference[:40]!r}) has characters outside the model "
                                   f"vocabulary: {' '.join(repr(ch) for ch in missing)}")
        for step in char_alignment(reference, hypothesis):
            if step.ref_char is None or step.ref_char == " ":
                continue
            row = counts.setdefault(step.ref_char, {"matched": 0, "substituted": 0, "deleted": 0})
            row[{"match": "matched", "substitute": "substituted", "delete": "deleted"}[step.op]] += 1
    table = pd.DataFrame.from_dict(counts, orient="index", columns=["matched", "substituted", "deleted"])
    table = table.sort_index()
    table.insert(0, "occurrences", table.sum(axis=1))
    table["accuracy"] = table["matched"] / table["occurrences"]
    table.index.name = "character"
    return table


def percentile_groups(table: pd.DataFrame, percentiles: Sequence[float] = (33, 66)) -> pd.DataFrame:
    """The paper's Table 5: characters grouped by accuracy between the given percentiles of the
    accuracies (a boundary value belongs to the lower group). Columns: low, high, interval, characters."""
    accuracy = table["accuracy"].astype(float)
    if accuracy.empty:
        raise W2VLensError("no characters to group")
    bounds = np.percentile(accuracy, percentiles)
    group = np.digitize(accuracy, bounds, right=True)
    rows = []
    for number in range(len(bounds) + 1):
        members = accuracy[group == number]
        low = accuracy.min() if number == 0 else bounds[number - 1]
        high = accuracy.max() if number == len(bounds) else bounds[number]
        rows.append({"low": float(low), "high": float(high), "interval": f"{low:.0%} – {high:.0%}",
                     "characters": ", ".join(sorted(members.index))})
    return pd.DataFrame(rows)


def annotator_error_counts(hypothesis: str, annotator_transcripts: Sequence[str | None]) -> AnnotatorCounts:
    """How many annotators see each hypothesis character, and each gap, as an error (module docstring).
    Missing or empty transcripts are skipped with a warning; all of them missing is an error."""
    char_counts = np.zeros(len(hypothesis), dtype=np.int64)
    deletion_counts = np.zeros(len(hypothesis) + 1, dtype=np.int64)
    used = 0
    for number, transcript in enumerate(annotator_transcripts):
        text = normalize_text(transcript) if isinstance(transcript, str) else ""
        if not text:
            log.warning("annotator transcript %d is missing or empty: skipped", number)
            continue
        used += 1
        wrong_chars = np.zeros(len(hypothesis), dtype=bool)
        wrong_gaps = np.zeros(len(hypothesis) + 1, dtype=bool)
        for op in Levenshtein.opcodes(text, hypothesis):
            if op.tag in ("replace", "insert"):
                wrong_chars[op.dest_start : op.dest_end] = True
            elif op.tag == "delete":
                wrong_gaps[op.dest_start] = True
        char_counts += wrong_chars
        deletion_counts += wrong_gaps
    if used == 0:
        raise W2VLensError("no usable annotator transcript: all are missing or empty")
    return AnnotatorCounts(char_counts, deletion_counts, used)


def frame_error_counts(n_frames: int, spans: Sequence[tuple[int, int]], char_counts: np.ndarray,
                       gap_counts: np.ndarray, pauses: np.ndarray | None = None) -> np.ndarray:
    """Per-frame counts: each character's count on its span, each gap's count on the frames between
    the neighbouring spans that are not `pauses` (per-frame booleans; a gap without such frames: see
    the module docstring)."""
    char_counts, gap_counts = np.asarray(char_counts), np.asarray(gap_counts)
    pauses = np.zeros(n_frames, dtype=bool) if pauses is None else np.asarray(pauses, dtype=bool)
    if len(pauses) != n_frames:
        raise W2VLensError(f"{len(pauses)} pause flags for an utterance of {n_frames} frames")
    if len(char_counts) != len(spans) or len(gap_counts) != len(spans) + 1:
        raise W2VLensError(f"{len(spans)} spans need as many character counts and one more gap count, "
                           f"got {len(char_counts)} and {len(gap_counts)}")
    bounds = [0] + [edge for span in spans for edge in span] + [n_frames]
    if any(a > b for a, b in zip(bounds[:-1], bounds[1:], strict=True)):
        raise W2VLensError(f"spans must be ordered, disjoint and within the utterance's {n_frames} frames")
    counts = np.zeros(n_frames, dtype=np.int64)
    for (start, end), count in zip(spans, char_counts, strict=True):
        counts[start:end] = count
    for gap, count in enumerate(gap_counts.tolist()):
        start, end = bounds[2 * gap], bounds[2 * gap + 1]
        blanks = start + np.flatnonzero(~pauses[start:end])
        if len(blanks):
            counts[blanks] = count
        elif count and spans:
            neighbour = spans[gap] if gap < len(spans) else spans[-1]
            counts[neighbour[0] : neighbour[1]] = np.maximum(counts[neighbour[0] : neighbour[1]], count)
    return counts


def error_category_names(n_annotators: int) -> list[str]:
    """Category names in order of severity: "correct", "1/K", ..., "K/K"."""
    return [CORRECT] + [f"{k}/{n_annotators}" for k in range(1, n_annotators + 1)]


def count_categories(counts: np.ndarray, n_annotators: int) -> np.ndarray:
    """Per-frame category names for annotator error counts; -1 marks unannotated frames."""
    counts = np.asarray(counts)
    if counts.size and counts.max() > n_annotators:
        raise W2VLensError(f"an error count of {counts.max()} exceeds the {n_annotators} annotators")
    names = np.asarray([UNANNOTATED] + error_category_names(n_annotators), dtype=object)
    return names[counts + 1]


def annotator_columns(utterances: pd.DataFrame) -> list[str]:
    return sorted(c for c in utterances.columns if str(c).startswith(ANNOTATOR_PREFIX))


def _usable(value: object) -> bool:
    return isinstance(value, str) and bool(normalize_text(value))


def check_annotators(utterances: pd.DataFrame, vocabulary: Sequence[str] | None = None) -> list[str]:
    """Warnings about the utterances' `annotator_*` transcripts; an error when there are none at all.

    Warned about: missing or empty transcripts (skipped for their utterance, so utterances differ
    in their number of annotators), utterances with no transcript (their frames are "unannotated"),
    and, with `vocabulary`, characters the model cannot emit (they still count as the model's errors
    against that annotator, as the model could never have matched them).
    """
    columns = annotator_columns(utterances)
    if not columns:
        raise W2VLensError(f"no {ANNOTATOR_PREFIX}* columns in the utterance table (columns: {list(utterances)})")
    usable = pd.DataFrame({c: utterances[c].map(_usable) for c in columns})
    if not usable.to_numpy().any():
        raise W2VLensError(f"every annotator transcript is missing or empty (columns: {', '.join(columns)})")
    ids = utterances["id"].astype(str) if "id" in utterances else utterances.index.astype(str)
    warnings = []
    for column in columns:
        lacking = ids[~usable[column].to_numpy()].tolist()
        if lacking:
            warnings.append(f"{column}: missing or empty transcript in {len(lacking)} of {len(ids)} utterances "
                            f"({', '.join(lacking[:5])}{' ...' if len(lacking) > 5 else ''}); that annotator is "
                            f"skipped there, so those utterances have fewer than {len(columns)} annotators")
    per_utterance = usable.sum(axis=1).to_numpy()
    if (per_utterance == 0).any():
        none = ids[per_utterance == 0].tolist()
        warnings.append(f"{len(none)} utterances have no annotator transcript ({', '.join(none[:5])}"
                        f"{' ...' if len(none) > 5 else ''}); their frames are '{UNANNOTATED}'")
    if vocabulary is not None:
        outside = sorted({ch for column in columns for text in utterances[column] if _usable(text)
                          for ch in characters_outside(normalize_text(text), set(vocabulary))})
        if outside:
            warnings.append(f"annotator transcripts use characters outside the model vocabulary "
                            f"({' '.join(repr(ch) for ch in outside)}); they count as the model's errors")
    return warnings


def error_frames(pseudo: np.ndarray, vocabulary: Sequence[str], utterances: pd.DataFrame,
                 pauses: np.ndarray | None = None) -> ErrorFrames:
    """Figure 2's per-frame annotator error counts and categories over a corpus: each utterance's
    (`offset`, `n_frames`) frames are decoded greedily and judged against its annotator transcripts;
    deletions leave out the `pauses` frames (per-frame booleans over the corpus)."""
    warnings = check_annotators(utterances, vocabulary)
    for warning in warnings:
        log.warning(warning)
    columns = annotator_columns(utterances)
    counts = np.full(len(pseudo), -1, dtype=np.int64)
    for row in utterances.to_dict("records"):
        transcripts = [row[c] for c in columns if _usable(row[c])]
        if not transcripts:
            continue
        start, length = int(row["offset"]), int(row["n_frames"])
        text, spans = greedy_transcript(pseudo[start : start + length], vocabulary)
        judged = annotator_error_counts(text, transcripts)
        counts[start : start + length] = frame_error_counts(
            length, spans, judged.char_counts, judged.deletion_counts,
            None if pauses is None else pauses[start : start + length])
    return ErrorFrames(counts, count_categories(counts, len(columns)), len(columns), warnings)


def annotator_error_frames(predictions: np.ndarray, vocabulary: Sequence[str], offsets: Sequence[int],
                           annotators: Mapping[str, Sequence[str | None]], pauses: np.ndarray | None = None,
                           blank: str = "<pad>", ids: Sequence[str] | None = None) -> ErrorFrames:
    """Figure 2: per frame, how many annotators' transcripts mark the greedy character it belongs
    to as a mistake (substituted or inserted), -1 for frames of utterances no annotator transcribed.

    `predictions` are the fine-tuned model's per-frame CTC ids, `offsets` the utterances' first
    frames (each runs to the next offset), `annotators` one transcript per utterance for each
    annotator. A deletion (an annotator hears characters the model did not emit) is put on the
    blank frames between the two predicted characters around it, leaving out `pauses` (per-frame
    booleans: the silence split's `silence` frames); a gap with no such frame hands it to the
    character after it. Without `pauses`, it covers every blank frame between them, pauses
    included, as the authors' released categories do. Categories: "correct", "k/K" for k of K
    annotators, "unannotated". `ids` name the utterances in warnings."""
    predictions = np.asarray(predictions)
    bounds = [int(offset) for offset in offsets] + [len(predictions)]
    if any(a > b for a, b in zip(bounds[:-1], bounds[1:], strict=True)):
        raise W2VLensError(f"utterance offsets must increase within the {len(predictions)} frames")
    names = list(ids) if ids is not None else [f"utterance {i}" for i in range(len(offsets))]
    table = pd.DataFrame({"id": names, "offset": bounds[:-1],
                          "n_frames": np.diff(bounds)})
    for name, transcripts in annotators.items():
        if len(transcripts) != len(table):
            raise W2VLensError(f"annotator {name!r}: {len(transcripts)} transcripts for {len(table)} utterances")
        column = name if str(name).startswith("annotator_") else f"annotator_{name}"
        table[column] = list(transcripts)
    tokens = [token if token != blank else BLANK_LABEL for token in vocabulary]
    return error_frames(predictions, tokens, table, pauses)
