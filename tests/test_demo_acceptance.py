"""The paper's headline on the embedded demo, end to end with the committed pair (slow: it builds
the demo corpus and extracts both models; run with `pytest -m slow`)."""

from pathlib import Path

import pandas as pd
import pytest
from helpers import compose_app, runs
from mlflow.tracking import MlflowClient

from w2vlens.app import run

pytestmark = pytest.mark.slow

# The demo's Table 1 AMI (test split, k = 33, seed 0) as the paper pipeline first printed it (since issue 20
# the first of paper.seeds K-means seeds).
TABLE1_AMI = {"cnn_kmeans": 0.2233, "pretrained_kmeans": 0.2064, "finetuned_kmeans": 0.5685,
              "finetuned_spherical": 0.6086}


@pytest.fixture(scope="module")
def demo_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


def demo_overrides(work: Path) -> list[str]:
    return [f"cache_dir={work / 'cache'}", f"tracking.dir={work / 'mlruns'}"]


def test_finetuning_creates_the_character_clusters(demo_work: Path) -> None:
    finetuned = run(compose_app(demo_overrides(demo_work) + ["model=finetuned"]))
    pretrained = run(compose_app(demo_overrides(demo_work) + ["model=pretrained"]))
    assert finetuned["ami"] >= 0.5
    assert finetuned["ami"] >= pretrained["ami"] + 0.2


def test_paper_experiment_on_the_demo(demo_work: Path) -> None:
    run(compose_app(demo_overrides(demo_work) + ["experiment=paper"]))
    record = runs(demo_work).sort_values("start_time").iloc[-1]
    assert record["metrics.silence_f1"] >= 0.8
    assert record["metrics.table5/finetuned_cer"] <= 0.15
    # Table 1: fine-tuning makes the last layer group by character, the paper's headline
    assert record["metrics.table1/finetuned_kmeans_ami"] >= record["metrics.table1/pretrained_kmeans_ami"] + 0.2
    # and the demo's numbers stay what the README and earlier releases printed: a change of defaults
    # (seeding, storage dtype, backend) that moves them by more than 0.002 is a change of results.
    # Since issue 20 the metric is the mean over paper.seeds K-means seeds; the first seed's is kept.
    path = MlflowClient().download_artifacts(record["run_id"], "tables/table1_seeds.json", str(demo_work))
    seeds = pd.read_json(path, orient="split")
    first = seeds[seeds["seed"] == seeds["seed"].min()].set_index(["view", "clustering"])["ami"]
    for run_name, ami in TABLE1_AMI.items():
        assert first[tuple(run_name.split("_"))] == pytest.approx(ami, abs=0.002), run_name
        mean = seeds[seeds["view"] + "_" + seeds["clustering"] == run_name]["ami"].mean()
        assert record[f"metrics.table1/{run_name}_ami"] == pytest.approx(mean), run_name
    # the paper's comparison as a test: fine-tuning's gain survives other seeds and utterances
    assert record["metrics.table1/finetuned_minus_pretrained_ami"] >= 0.2
    assert record["metrics.table1/finetuned_minus_pretrained_ami_p"] < 0.01
    # Figure 3: the paper's plain classifier calls (almost) every mistake correct, so it barely
    # beats the majority class; the class-balanced one (our extra) does beat it
    majority = record["metrics.figure3/majority_balanced_accuracy"]
    assert record["metrics.figure3/probe_balanced_accuracy"] >= majority
    assert record["metrics.figure3/balanced_probe_balanced_accuracy"] > majority + 0.05


def test_an_approximate_neighbour_graph_keeps_table2(demo_work: Path) -> None:
    """experiment=paper again with the approximate (HNSW) kNN graph forced where the demo's size
    searches exactly by default: every Table 2 AMI within 0.01 of the exact graph's (the run of
    the test above), and the recall it logs at least 0.95. A second whole run, as Table 2 needs
    Table 1's clusters: about 10 more minutes on 2 cores."""
    if not (demo_work / "mlruns").exists() or not runs(demo_work)["tags.mlflow.runName"].str.startswith("paper").any():
        run(compose_app(demo_overrides(demo_work) + ["experiment=paper"]))  # this test alone: the exact run first
    earlier = runs(demo_work).sort_values("start_time")
    exact = earlier[earlier["tags.mlflow.runName"].str.startswith("paper")].iloc[-1]
    run(compose_app(demo_overrides(demo_work) + [  # Table 2 uses the first seed's clusters: one seed will do
        "experiment=paper", "paper.seeds=1", "paper.bootstrap=0",
        "paper.projections.tsne.projection.neighbours=approximate",
        "paper.projections.umap.projection.neighbours=approximate"]))
    approximate = runs(demo_work).sort_values("start_time").iloc[-1]
    assert approximate.run_id != exact.run_id
    amis = [column for column in exact.index if column.startswith("metrics.table2/") and column.endswith("_ami")]
    assert len(amis) == 9
    for column in amis:
        # openTSNE is not bit-reproducible (two fits of the same data and graph differ by 6e-7 after
        # 400 iterations), and on the demo two exact-graph runs moved t-SNE's AMI by up to 0.008:
        # t-SNE gets that noise on top of the 0.01 the graph may cost
        tolerance = 0.015 if "_tsne_" in column else 0.01
        assert approximate[column] == pytest.approx(exact[column], abs=tolerance), column
    for view in ("cnn", "pretrained", "finetuned"):
        assert exact[f"metrics.table2/{view}_knn_recall"] == 1.0
        assert approximate[f"metrics.table2/{view}_knn_recall"] >= 0.95
