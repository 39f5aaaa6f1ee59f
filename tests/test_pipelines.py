"""The load-extract-label stage and each pipeline called directly, without the app or MLflow, on the
tiny pair's small stores: what each returns in its `Result`."""

from functools import partial
from pathlib import Path

import pytest
from helpers import compose_app, write_corpus
from hydra.utils import instantiate
from omegaconf import OmegaConf

from w2vlens.analysis.cluster import KMeans
from w2vlens.analysis.reduce import PCAProjection
from w2vlens.choices import SCORES
from w2vlens.config import AtlasConfig, FaithfulnessConfig, LayersConfig, ListenConfig
from w2vlens.corpora.corpus import load_manifest
from w2vlens.embeddings.views import View, needed_arrays
from w2vlens.errors import W2VLensError
from w2vlens.pipelines.inputs import Inputs, Pair, load_pair, prepare_inputs
from w2vlens.pipelines.layers import run_layers
from w2vlens.pipelines.paper import run_paper
from w2vlens.pipelines.view import ViewSettings, run_view

K = 5
kmeans = partial(KMeans, max_iter=10, seed=0)


@pytest.fixture(scope="module")
def prepared(tiny_pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Inputs, Pair]:
    """The stage's inputs for the CNN and every layer of both models (every pipeline's arrays)."""
    work = tmp_path_factory.mktemp("pipelines")
    corpus = load_manifest(write_corpus(work / "corpus"))
    pair = load_pair("tiny", str(tiny_pair[1]), str(tiny_pair[0]), {"pretrained", "finetuned"}, "cpu", "float32")
    views = [View.parse("cnn", "pretrained", "cnn"), View.parse("pretrained", "pretrained", "transformer", "all"),
             View.parse("finetuned", "finetuned", "transformer", "all")]
    extraction = OmegaConf.to_object(compose_app([]).extract)
    prepared, stage = prepare_inputs(pair, corpus, views, needed_arrays(views, pair.checkpoints), extraction,
                                     work / "cache", 10, K)
    assert {"extract_seconds", "cache_hit_finetuned", "cache_hit_pretrained", "frames", "utterances", "k",
            "alignment_skipped"} <= set(stage.metrics)
    assert stage.metrics["frames"] == prepared.finetuned.n_frames == len(prepared.labels.pseudo)
    assert stage.metrics["utterances"] == 6 and stage.metrics["k"] == K
    assert prepared.arrays["cnn"] == [("cnn", None)]
    assert [layer for _, layer in prepared.arrays["finetuned"]] == [0, 1, 2]
    return prepared, pair


def only(prepared: tuple[Inputs, Pair], *names: str, layers: object = None) -> Inputs:
    """The prepared inputs with only the views `names` (reading `layers`, when given)."""
    inputs, pair = prepared
    views = {name: inputs.views[name] for name in names}
    if layers is not None:
        views = {name: View.parse(name, view.side, view.kind, layers) for name, view in views.items()}
    arrays = {name: view.arrays(pair.checkpoints[view.side]) for name, view in views.items()}
    return Inputs(inputs.pair, inputs.corpus, inputs.stores, views, arrays, inputs.labels, inputs.silence, inputs.k)


def test_view_pipeline_scores_each_layer_and_what_its_projection_loses(prepared: tuple[Inputs, Pair]) -> None:
    settings = ViewSettings("kmeans", PCAProjection(), "pca", FaithfulnessConfig(5, 100),
                            ListenConfig(False, 1, 0.1, 0.1), AtlasConfig(False, False))
    result = run_view(only(prepared, "finetuned", layers=[1, -1]), kmeans, settings, seed=0)
    assert set(result.headline) >= set(SCORES)
    assert result.metrics["layer_02/ami"] == result.headline["ami"]
    assert {"layer_01/projection_ami", "layer_02/trustworthiness", "layer_02/inertia"} <= set(result.metrics)
    assert set(result.tables) == {"layer_01/tables/clusters.json", "layer_02/tables/clusters.json"}
    assert {"layer_01/contingency.png", "layer_02/projection_by_label.pdf"} <= set(result.files())
    result.cleanup()


def test_view_pipeline_reads_one_view(prepared: tuple[Inputs, Pair]) -> None:
    settings = ViewSettings("kmeans", None, None, FaithfulnessConfig(5, 100), ListenConfig(False, 1, 0.1, 0.1),
                            AtlasConfig(False, False))
    with pytest.raises(W2VLensError, match="the view analysis reads one view, got 2: cnn, finetuned"):
        run_view(only(prepared, "cnn", "finetuned"), kmeans, settings, seed=0)


def test_layers_pipeline_draws_curves_over_the_layers_beside_the_cnn(prepared: tuple[Inputs, Pair]) -> None:
    result = run_layers(only(prepared, "cnn", "pretrained", "finetuned"), kmeans, LayersConfig(None, 100), seed=0)
    assert sorted(result.curves["finetuned_ami"]) == sorted(result.curves["linear_cka"]) == [0, 1, 2]
    assert {"cnn_ami", "cnn_homogeneity", "cnn_completeness"} == set(result.metrics)
    assert list(result.tables["tables/layers.json"].columns[:2]) == ["layer", "pretrained_ami"]
    assert set(result.headline) == set(SCORES)
    assert {"figures/layers.png", "figures/layers.pdf"} <= set(result.files())
    result.cleanup()


def test_paper_pipeline_returns_its_tables_metrics_and_summary(prepared: tuple[Inputs, Pair]) -> None:
    cfg = compose_app(["experiment=paper", "~paper.projections.tsne", "~paper.projections.umap",
                       "paper.figure_projection=pca", "paper.seeds=2", "paper.bootstrap=20", "paper.probe.max_epochs=1",
                       "listen.enabled=false", "faithfulness.sample=100", "extract.device=cpu"])
    settings = instantiate(cfg.analysis.settings, _convert_="object")
    result = run_paper(only(prepared, "cnn", "pretrained", "finetuned", layers=-1), kmeans, settings, seed=0)
    assert set(result.headline) == set(SCORES)
    assert result.metrics["table1/finetuned_kmeans_ami"] == result.headline["ami"]
    assert {"table2/cnn_pca_ami", "table3/pretrained_vs_finetuned_linear_cka", "table4/pretrained_cluster_cer",
            "table5/finetuned_cer", "figure3/probe_auroc"} <= set(result.metrics)
    assert {"tables/table1.json", "tables/table2.json", "tables/table4_accuracy.json",
            "tables/figure2_distances.json"} <= set(result.tables)
    assert result.tags["table2_protocol"] == "pca: fitted on every frame"
    assert "| finetuned | kmeans |" in result.texts["summary.md"]
    assert {"figures/figure1_pca.png", "figures/tables1_3.pdf"} <= set(result.files())
    result.cleanup()
