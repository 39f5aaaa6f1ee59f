"""The names every module agrees on: frame label names and the clustering scores' metric names.

Defined once here (a module without imports) so that reading a label name never pulls in torch or
transformers.
"""

BLANK_LABEL = "blank"  # CTC blank: models.py renames the checkpoint's pad token to this
SILENCE_LABEL = "silence"  # a long blank run at a word boundary or an utterance edge (silence.py)
WORD_DELIMITER = "|"  # the CTC vocabulary's word separator
UNALIGNED = "unaligned"  # forced-alignment label of frames whose utterance could not be aligned
CORRECT = "correct"  # Figure 2: no annotator calls the frame's character a mistake
UNANNOTATED = "unannotated"  # Figure 2: the frame's utterance has no annotator transcript

WORD_DELIMITER_SHOWN = "\u2423"  # how figures write `|`: a bare bar is hard to tell from `l` in small print

SCORES = ("ami", "homogeneity", "completeness")  # the paper's scores (Tables 1-3), in its order


def shown_label(label: object) -> str:
    """A label as figures write it: the word delimiter as a visible open box, the rest as is."""
    text = str(label)
    return WORD_DELIMITER_SHOWN if text == WORD_DELIMITER else text
