"""The analysis stages, plain functions and sklearn-style classes over arrays: K-means (`cluster`),
2-D projections and kNN graphs (`reduce`), what a projection loses (`faithfulness`), clustering
scores (`metrics`), views compared (`compare`), characters in clusters (`characters`), their
correlations (`correlate`) and the mistake probe (`probe`)."""
