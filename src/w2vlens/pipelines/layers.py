"""experiment=layers: Table 1 for every Transformer layer of each view from the one extraction pass,
beside the CNN encoder's output, and the linear CKA between the views layer by layer, as curves over
the layer index."""

from __future__ import annotations

import logging

import pandas as pd

from w2vlens.analysis.compare import linear_cka
from w2vlens.analysis.metrics import clustering_scores
from w2vlens.choices import SCORES
from w2vlens.config import LayersConfig
from w2vlens.figures import layer_curves
from w2vlens.pipelines.inputs import Inputs
from w2vlens.pipelines.view import KMeansFactory
from w2vlens.result import Result

log = logging.getLogger("w2vlens")


def run_layers(inputs: Inputs, kmeans: KMeansFactory, settings: LayersConfig, seed: int) -> Result:
    """Every layer of each Transformer view in `inputs`, clustered with `kmeans` (k clusters) and
    scored against the pseudo-labels: curves `{view}_{score}` and `linear_cka` (of two views, on
    `settings.cka_points` frames) with step = layer (the MLflow UI draws them over the layers),
    `tables/layers.json` and one figure of them all. A CNN view is the baseline every layer starts
    from, scored once (metrics `cnn_{score}`, a level line in the figure). Headline: the fine-tuned
    view's last layer."""
    labels, k, pair = inputs.labels, inputs.k, inputs.pair
    stores = {name: inputs.store(name) for name, view in inputs.views.items() if view.kind != "cnn"}
    cnn = [inputs.store(name).array("cnn") for name, view in inputs.views.items() if view.kind == "cnn"]
    with Result() as result:  # a failure removes the files written so far
        baseline = None
        if cnn:
            baseline = clustering_scores(labels.pseudo, kmeans(n_clusters=k).fit(cnn[0]).labels_)
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
                row["linear_cka"] = linear_cka(*arrays.values(), max_points=settings.cka_points, seed=seed)
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
