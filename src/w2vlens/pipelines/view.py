"""One view: cluster each requested layer, score it against the pseudo-labels and, with a
projection, measure what the 2-D map loses, draw it and export its frame table and audio."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

from w2vlens import tables as paper_tables
from w2vlens.analysis.faithfulness import projection_faithfulness
from w2vlens.analysis.metrics import cluster_summary, contingency
from w2vlens.atlas import ATLAS_DIR, export_viewer, frame_table
from w2vlens.config import AtlasConfig, FaithfulnessConfig, ListenConfig
from w2vlens.embeddings.store import EmbeddingStore
from w2vlens.errors import W2VLensError
from w2vlens.figures import contingency_heatmap, projection_panels
from w2vlens.labelling.frames import FrameLabels, annotator_errors
from w2vlens.listen import cluster_montages, clusters_page, utterance_reader, write_montages
from w2vlens.pipelines.inputs import Inputs
from w2vlens.result import Result

log = logging.getLogger("w2vlens")
KMeansFactory = Callable[..., object]  # n_clusters=k (and overrides) -> an unfitted sklearn-style K-means


@dataclass
class ViewSettings:
    """The view pipeline's settings: the clustering's name (`kmeans`, `spherical`: titles and logs),
    the projection to 2-D (a w2vlens.analysis.reduce projection) and its name, or None, and the
    faithfulness, listening and atlas settings."""

    clustering: str
    projection: object | None
    projection_name: str | None
    faithfulness: FaithfulnessConfig
    listen: ListenConfig
    atlas: AtlasConfig


def view_title(view: str, array_name: str) -> str:
    """`finetuned layer_04` in titles, but `cnn` alone where the array is the view (not `cnn cnn`)."""
    return view if array_name == view else f"{view} {array_name}"


def score_clusters(result: Result, table_path: str, figure_path: str, clusters: np.ndarray, labels: FrameLabels,
                   vocabulary: list[str], title: str) -> dict[str, float]:
    """Table 1 for one clustering: its scores against the pseudo-labels, and the cluster table and
    contingency heatmap added to `result` as artifacts `table_path` and `figure_path` + `.png`."""
    scores = paper_tables.table1(labels.pseudo, clusters)
    log.info("%s: %s", title, ", ".join(f"{m}={v:.3f}" for m, v in scores.items()))
    table = contingency(clusters, labels.pseudo, vocabulary)
    result.tables[table_path] = cluster_summary(table)
    result.add_figure(figure_path, contingency_heatmap(table, title))
    return scores


def run_view(inputs: Inputs, kmeans: KMeansFactory, settings: ViewSettings, seed: int) -> Result:
    """Clusters each array (layer) of the one view in `inputs` with `kmeans` (k clusters) and
    scores it against the fine-tuned model's pseudo-labels; with a projection also projects it to
    2-D, measures what the projection loses and draws it. Metrics and artifacts are named by role
    (`ami`, `contingency.png`), and the figures lie at the run's top level, the only place MLflow's
    compare view looks for common artifacts, so that runs of other views show them side by side;
    with several layers each one's go under a `layer_NN/` section. Headline: the last array's scores."""
    if len(inputs.views) != 1:
        raise W2VLensError(f"the view analysis reads one view, got {len(inputs.views)}: {', '.join(inputs.views)}")
    (view,) = inputs.views
    store, arrays, labels, k, pair = inputs.store(view), inputs.arrays[view], inputs.labels, inputs.k, inputs.pair
    vocabulary = inputs.finetuned.vocabulary  # a pre-trained store has none
    clustering, listen, projected = settings.clustering, settings.listen, settings.projection_name
    with Result() as result:  # a failure removes the files written so far
        for array_name, _ in arrays:
            prefix = "" if len(arrays) == 1 else f"{array_name}/"
            embeddings = store.array(array_name)
            fitted = kmeans(n_clusters=k).fit(embeddings)
            shown = f"{view_title(view, array_name)} ({clustering})"
            scores = score_clusters(result, f"{prefix}tables/clusters.json", f"{prefix}contingency", fitted.labels_,
                                    labels, vocabulary, f"{pair} {shown}: clusters vs pseudo-labels")
            scores_and_inertia = scores | {"inertia": fitted.inertia_}
            result.metrics |= {f"{prefix}{metric}": value for metric, value in scores_and_inertia.items()}
            result.headline = scores
            if listen.enabled:
                add_cluster_audio(result, prefix, fitted.labels_, labels.classes, store, f"{pair} {shown}", listen,
                                  inputs.served_at + quote(prefix), seed)
            if settings.projection is not None:
                coords = settings.projection.fit_transform(embeddings, labels=labels.classes)
                lost = projection_faithfulness(embeddings, coords, fitted.labels_, settings.faithfulness.neighbours,
                                               settings.faithfulness.sample, seed, kmeans)
                result.metrics |= {f"{prefix}{metric}": value for metric, value in lost.items()}
                log.info("%s %s: %s", shown, projected, ", ".join(f"{m}={v:.3f}" for m, v in lost.items()))
                title = f"{pair} {shown}, {projected}"
                for colour_name, colours in (("label", labels.classes), ("cluster", fitted.labels_)):
                    figure = projection_panels({view: coords}, colours, title=f"{title}: by {colour_name}", seed=seed)
                    result.add_figure(f"{prefix}projection_by_{colour_name}", figure, ("png", "pdf"))
                if settings.atlas.enabled:
                    add_atlas(result, coords, fitted.labels_, labels, vocabulary, store,
                              f"{projected}_{array_name}", settings.atlas.viewer)
        return result


def add_cluster_audio(result: Result, prefix: str, clusters: np.ndarray, classes: np.ndarray, store: EmbeddingStore,
                      title: str, listen: ListenConfig, served_at: str, seed: int) -> None:
    """A montage per cluster (`audio/cluster_NN.wav`) and `clusters.html` with a player each."""
    utterances = store.utterances()
    montages = cluster_montages(clusters, utterances["offset"].to_numpy(), utterance_reader(utterances),
                                store.meta["frame_seconds"], seed, listen.frames, listen.context_seconds,
                                listen.gap_seconds)
    folder = result.file(f"{prefix}clusters.html").parent
    paths = write_montages(montages, folder)
    page = clusters_page(clusters, classes, paths, f"{title}: listen to the clusters", listen.frames,
                         listen.context_seconds, served_at)
    (folder / "clusters.html").write_text(page, encoding="utf-8")


def add_atlas(result: Result, coords: np.ndarray, clusters: np.ndarray, labels: FrameLabels, vocabulary: list[str],
              store: EmbeddingStore, name: str, viewer: bool) -> None:
    """The projection's frame table as `atlas/<name>.parquet` (and, with `viewer`, Embedding
    Atlas's standalone viewer of it as `atlas/<name>.zip`)."""
    utterances = store.utterances()
    errors = annotator_errors(labels, vocabulary, utterances)
    texts = dict(zip(utterances["id"], utterances["text"], strict=True))
    table = frame_table(coords, labels.classes, clusters, store.frames(), texts,
                        errors.categories if errors is not None else None)
    table.to_parquet(result.file(f"{ATLAS_DIR}/{name}.parquet"), index=False)
    if viewer:
        export_viewer(table, result.file(f"{ATLAS_DIR}/{name}.zip"))
