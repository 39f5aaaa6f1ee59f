"""Frame labels: CTC forced alignment (`align`), the silence split (`silence`), annotator transcripts
vs the model's (`transcripts`), the per-frame labels built from them (`frames`) and the label names
every module agrees on (`names`). This `__init__` imports nothing, so `names` stays light."""
