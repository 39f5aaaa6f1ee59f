"""The label names every module agrees on (frame labels, Figure 2's categories) and how figures
write them.

Defined once here (a module without imports, in a package whose `__init__` imports nothing) so that
reading a label name never pulls in torch or transformers.
"""

BLANK_LABEL = "blank"  # CTC blank: models.py renames the checkpoint's pad token to this
SILENCE_LABEL = "silence"  # a long blank run at a word boundary or an utterance edge (silence.py)
WORD_DELIMITER = "|"  # the CTC vocabulary's word separator
UNALIGNED = "unaligned"  # forced-alignment label of frames whose utterance could not be aligned
CORRECT = "correct"  # Figure 2: no annotator calls the frame's character a mistake
UNANNOTATED = "unannotated"  # Figure 2: the frame's utterance has no annotator transcript

WORD_DELIMITER_SHOWN = "\u2423"  # how figures write `|`: a bare bar is hard to tell from `l` in small print


def shown_label(label: object) -> str:
    """A label as figures write it: the word delimiter as a visible open box, the rest as is."""
    text = str(label)
    return WORD_DELIMITER_SHOWN if text == WORD_DELIMITER else text
