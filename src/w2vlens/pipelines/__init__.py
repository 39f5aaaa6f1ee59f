"""The analyses a run can do, each a function of plain inputs (stores, frame labels, estimators,
settings) that returns a `w2vlens.result.Result` and never touches MLflow or the Hydra config:
`view` (one view, the default), `layers` (every layer of both models) and `paper` (the paper's
whole analysis)."""
