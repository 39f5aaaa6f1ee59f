"""experiment=layers: Table 1 for every Transformer layer of each view from the one extraction pass,
and the linear CKA between the views layer by layer, as curves over the layer index."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from w2vlens.analysis.compare import linear_cka
from w2vlens.analysis.metrics import SCORES, clustering_scores
from w2vlens.embeddings.store import EmbeddingStore
from w2vlens.figures import layer_curves
from w2vlens.labelling.frames import FrameLabels
from w2vlens.pipelines.view import KMeansFactory
from w2vlens.result import Result

log = logging.getLogger("w2vlens")


def run_layers(pair: str, stores: dict[str, EmbeddingStore], labels: FrameLabels, k: int, kmeans: KMeansFactory,
               cka_points: int, seed: int, cnn: np.ndarray | None = None) -> Result:
    """`stores`: view name -> its model's store. Curves `{view}_{score}` and `linear_cka` with
    step = layer (the MLflow UI draws them over the layers), `tables/layers.json` and one figure of
    them all. `cnn` (the CNN encoder's output) is scored once as the baseline every layer starts
    from (metrics `cnn_{score}`, a level line in the figure). Headline: the fine-tuned view's last
    layer."""
    with Result() as result:  # a failure removes the files written so far
        baseline = None
        if cnn is not None:
            baseline = clustering_scores(labels.pseudo, kmeans(n_clusters=k).fit(cnn).labels_)
            result.metrics |= {f"cnn_{metric}": baseline[metric] for metric in SCORES}
            log.info("cnn: %s", ", ".join(f"{m}={baseline[m]:.3f}" for m in SCORES))
        num_layers = min(store.num_layers for store in stores.values())
        rows = []
        for layer in range(num_layers + 1):
            row: dict[str, float] = {"layer": layer}
            arrays = {}
            for name, store in stores.items():
                arrays[name] = store.array(store.layer_name(layer))
                scores = clustering_scores(labels.pseudo, kmeans(n_clusters=k).fit(arrays[name]).labels_)
                row |= {f"{name}_{metric}": scores[metric] for metric in SCORES}
            if len(arrays) == 2:
                row["linear_cka"] = linear_cka(*arrays.values(), max_points=cka_points, seed=seed)
            for metric, value in row.items():
                if metric != "layer":
                    result.add_curve(metric, layer, value)
            log.info("layer %d: %s", layer, ", ".join(f"{m}={v:.3f}" for m, v in row.items() if m != "layer"))
            rows.append(row)
        table = pd.DataFrame(rows)
        result.tables["tables/layers.json"] = table
        figure = layer_curves(table, list(stores), f"{pair}: clusters vs pseudo-labels by layer (k={k})",
                              None if baseline is None else baseline["ami"])
        result.add_figure("figures/layers", figure, ("png", "pdf"))
        result.headline = {metric: float(table.iloc[-1][f"finetuned_{metric}"]) for metric in SCORES
                           if f"finetuned_{metric}" in table}
        return result
