"""Frame labels: CTC forced alignment (`align`), the silence split (`silence`), annotator transcripts
vs the model's (`transcripts`) and the per-frame labels built from them (`frames`)."""
