"""The Hydra app end to end on tiny checkpoints: what a user runs and what lands in MLflow."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import REPO_ROOT, compose_app, overrides_for, runs, save_tiny_pair
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from w2vlens.app import run
from w2vlens.config import register_resolvers
from w2vlens.errors import W2VLensError


def test_default_config_is_the_demo() -> None:
    cfg = compose_app([])
    assert cfg.data._target_ == "w2vlens.corpora.corpus.demo_corpus" and cfg.pair.name == "demo"
    assert cfg.model.name == "finetuned" and cfg.model.layer == -1 and cfg.cluster.k == "auto"
    assert Path(cfg.pair.finetuned).name == "finetuned"


def test_run_logs_scores_config_table_and_figure(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                 tmp_path: Path) -> None:
    scores = run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path)))
    assert {"ami", "homogeneity", "completeness", "nmi", "ari", "v_measure"} <= set(scores)
    logged = runs(tmp_path)
    assert len(logged) == 1
    record = logged.iloc[0]
    assert record["metrics.ami"] == pytest.approx(scores["ami"])
    assert record["metrics.k"] == 33  # 32 CTC outputs + 1
    assert record["params.cluster.estimator.spherical"] == "False"
    assert record["tags.view"] == "finetuned" and record["tags.pair"] == "custom"
    client = MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(record.run_id, "tables")}
    assert artifacts == {"tables/clusters.json"}
    # named by role, at the top level: the only place MLflow's compare view looks for common files
    assert "contingency.png" in {a.path for a in client.list_artifacts(record.run_id) if not a.is_dir}
    assert record["tags.layer"] == "2"  # layer=-1 is the last of the tiny model's 2 layers
    assert "tags.reduce" not in record or record["tags.reduce"] is None  # no projection, no tag
    assert [m.step for m in client.get_metric_history(record.run_id, "ami")] == [0]  # one value, no curve
    assert record["metrics.extract_seconds"] > 0


def test_runs_differing_in_clustering_are_named_and_titled_apart(tiny_pair: tuple[Path, Path],
                                                                  corpus_manifest: Path, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    from PIL import Image

    caplog.set_level("INFO", logger="w2vlens")
    for cluster in ("kmeans", "spherical"):
        run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path) + [f"cluster={cluster}",
                                                                              "listen.enabled=false"]))
    logged = runs(tmp_path).set_index("tags.mlflow.runName")
    assert sorted(logged.index) == ["finetuned layer 2 kmeans k=33", "finetuned layer 2 spherical k=33"]
    client = MlflowClient()
    for name, record in logged.iterrows():
        figure = Path(client.download_artifacts(record.run_id, "contingency.png", str(tmp_path / record.run_id)))
        with Image.open(figure) as image:
            assert min(image.info["dpi"]) >= 199.9  # print quality, as the PNG itself says
        assert record["tags.cluster"] == name.split()[3]
    titles = [line.getMessage().split(":")[0] for line in caplog.records if "clusters vs pseudo" in line.getMessage()]
    assert titles == ["custom finetuned layer_02 (kmeans)", "custom finetuned layer_02 (spherical)"]  # figures' too


def test_a_run_ends_with_its_id_and_ui_address(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                               tmp_path: Path) -> None:
    command = [sys.executable, "-m", "run", *overrides_for(tiny_pair, corpus_manifest, tmp_path),
               "listen.enabled=false", f"hydra.run.dir={tmp_path / 'out'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    record = runs(tmp_path).iloc[0]
    last = result.stdout.strip().splitlines()[-1]  # the log's last line
    assert record.run_id in last
    assert f"http://127.0.0.1:5000/#/experiments/{record.experiment_id}/runs/{record.run_id}" in last
    assert "Warning" not in result.stdout + result.stderr  # no Python warnings a user cannot act on


def test_layer_tag_names_the_layer_actually_clustered(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                      tmp_path: Path) -> None:
    run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path) + ["model.layer=1"]))
    assert runs(tmp_path).iloc[0]["tags.layer"] == "1"


@pytest.mark.parametrize("model", ["pretrained", "cnn"])
def test_pretrained_and_cnn_views(tiny_pair: tuple[Path, Path], corpus_manifest: Path, tmp_path: Path,
                                  model: str) -> None:
    scores = run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path) + [f"model={model}"]))
    assert 0.0 <= scores["homogeneity"] <= 1.0
    assert runs(tmp_path).iloc[0]["tags.view"] == model


def test_several_layers_are_logged_under_a_section_each(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                         tmp_path: Path) -> None:
    scores = run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path) + ["layer=[0,-1]"]))
    record = runs(tmp_path).iloc[0]
    assert record["metrics.layer_02/ami"] == pytest.approx(scores["ami"])  # the last layer is the headline
    assert 0 <= record["metrics.layer_00/ami"] <= 1
    artifacts = {a.path for a in MlflowClient().list_artifacts(record.run_id, "layer_00") if not a.is_dir}
    assert "layer_00/contingency.png" in artifacts


def _break_first_audio(manifest: Path, how: str) -> None:
    table = pd.read_csv(manifest, sep="\t")
    if how == "missing":
        table.loc[0, "audio"] = "wav/nowhere.wav"
    elif how == "empty":
        sf.write(manifest.parent / "wav" / "u0.wav", np.zeros(0, np.float32), 16000)
    elif how == "unreadable":
        (manifest.parent / "wav" / "u0.wav").write_bytes(b"garbage")
    elif how == "vocabulary":
        table.loc[2, "text"] = "tuuli ü 7"
    table.to_csv(manifest, sep="\t", index=False)


@pytest.mark.parametrize(("how", "message"), [
    ("missing", "audio file not found: .*nowhere.wav"),
    ("empty", r"u0\.wav: audio file is empty"),
    ("unreadable", r"u0\.wav: unreadable audio"),
    ("vocabulary", r"u2\.wav: transcript of 'u2' has characters outside the model's vocabulary: '7' 'ü'"),
])
def test_bad_data_is_named_and_leaves_no_cache(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                               tmp_path: Path, how: str, message: str) -> None:
    _break_first_audio(corpus_manifest, how)
    with pytest.raises(W2VLensError, match=message):
        run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path)))
    stores = tmp_path / "cache" / "stores"
    assert not stores.exists() or list(stores.iterdir()) == []


def test_bad_checkpoints_are_named(tiny_pair: tuple[Path, Path], corpus_manifest: Path, tmp_path: Path) -> None:
    base = overrides_for(tiny_pair, corpus_manifest, tmp_path)
    with pytest.raises(W2VLensError, match=r"/no/such/model: checkpoint folder does not exist"):
        run(compose_app(base + ["pair.finetuned=/no/such/model", "data.path=/no/such/manifest.tsv"]))
    with pytest.raises(W2VLensError, match=r"pretrained: not a CTC model"):
        run(compose_app(base + [f"pair.finetuned={tiny_pair[0]}"]))
    assert not (tmp_path / "cache" / "stores").exists()


def test_too_many_clusters_is_a_one_line_error(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                               tmp_path: Path) -> None:
    command = [sys.executable, "-m", "run", *overrides_for(tiny_pair, corpus_manifest, tmp_path),
               "cluster.k=100000", f"hydra.run.dir={tmp_path / 'out'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: k=100000 is larger than the number of frames (399)")
    assert "Traceback" not in result.stderr
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "cache" / "stores").iterdir())


def test_shard_jobs_only_extract_and_the_analysis_reuses_their_store(tiny_pair: tuple[Path, Path],
                                                                     corpus_manifest: Path, tmp_path: Path) -> None:
    base = overrides_for(tiny_pair, corpus_manifest, tmp_path) + ["extract.num_shards=2"]
    for shard in (0, 1):
        assert run(compose_app(base + [f"extract.shard={shard}"])) == {}
    assert runs(tmp_path).empty  # extraction jobs log no analysis runs
    run(compose_app(base + ["model=pretrained"]))
    record = runs(tmp_path).iloc[0]
    assert record["metrics.cache_hit_finetuned"] == 1 and record["metrics.cache_hit_pretrained"] == 1


def test_sweep_makes_children_of_one_parent_and_reuses_the_cache(tmp_path: Path, corpus_manifest: Path) -> None:
    pair = save_tiny_pair(tmp_path / "pair")
    command = [sys.executable, "-m", "run", "-m", *overrides_for(pair, corpus_manifest, tmp_path),
               "model=pretrained,finetuned", "cluster=kmeans,spherical", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    for _ in range(2):
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
    logged = runs(tmp_path)
    parents = logged[logged["tags.sweep"] == "true"]
    assert len(parents) == 2
    for parent_id in parents.run_id:
        children = logged[logged["tags.mlflow.parentRunId"] == parent_id]
        assert sorted(children["tags.mlflow.runName"]) == [
            "job 0: pretrained layer 2 kmeans k=33", "job 1: pretrained layer 2 spherical k=33",
            "job 2: finetuned layer 2 kmeans k=33", "job 3: finetuned layer 2 spherical k=33"]
    latest = parents.sort_values("start_time").run_id.iloc[-1]
    assert {a.path for a in MlflowClient().list_artifacts(latest, "figures")} == {"figures/children.png"}
    second = logged[logged["tags.mlflow.parentRunId"] == latest]
    assert (second["metrics.cache_hit_finetuned"] == 1).all()
    assert (second.dropna(subset=["metrics.cache_hit_pretrained"])["metrics.cache_hit_pretrained"] == 1).all()
    assert "cache hit" in result.stdout + result.stderr


def test_a_failing_sweep_job_fails_the_parent_and_spares_the_others(tiny_pair: tuple[Path, Path],
                                                                      corpus_manifest: Path, tmp_path: Path) -> None:
    """One job of three fails (k larger than the frames) while joblib runs two at a time: the
    others finish and are logged, the parent ends FAILED naming it, the exit code says so."""
    command = [sys.executable, "-m", "run", "-m", *overrides_for(tiny_pair, corpus_manifest, tmp_path),
               "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "cluster.k=5,99999,7",
               "cluster.estimator.max_iter=10", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 1 of 3 sweep jobs failed: job 1: finetuned layer 2 kmeans k=99999: k=99999 is larger than the "
        "number of frames (399)")
    logged = runs(tmp_path)
    parent = logged[logged["tags.sweep"] == "true"].iloc[0]
    assert parent["status"] == "FAILED"
    assert parent["tags.failed_jobs"] == (
        "job 1: finetuned layer 2 kmeans k=99999: k=99999 is larger than the number of frames (399)")
    children = logged[logged["tags.mlflow.parentRunId"] == parent.run_id].set_index("tags.mlflow.runName")
    assert children["status"].sort_index().to_dict() == {
        "job 0: finetuned layer 2 kmeans k=5": "FINISHED", "job 2: finetuned layer 2 kmeans k=7": "FINISHED",
        "job 1: finetuned layer 2 kmeans k=99999": "FAILED"}
    assert children["metrics.ami"].notna().sum() == 2
    assert (logged["status"] != "RUNNING").all()


def test_a_sweep_that_stops_early_leaves_no_run_running(tmp_path: Path) -> None:
    """A sweep value of the wrong type stops the sweep after its parent run opened: Hydra's message,
    exit code 1, and the parent marked FAILED rather than left RUNNING."""
    command = [sys.executable, "-m", "run", "-m", "seed=1,abc", f"tracking.dir={tmp_path / 'mlruns'}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "full_key: seed" in result.stderr
    parent = runs(tmp_path).iloc[0]
    assert parent["tags.sweep"] == "true" and parent["status"] == "FAILED"
    assert parent["tags.error"] == "the sweep stopped before all its jobs ended"


def test_projection_runs_log_the_same_faithfulness_metrics(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                           tmp_path: Path) -> None:
    base = overrides_for(tiny_pair, corpus_manifest, tmp_path)
    for projection in ("pca", "tsne"):
        run(compose_app(base + [f"reduce={projection}", "reduce.projection.max_points=200"]))
    logged = runs(tmp_path)
    expected = {"metrics.projection_ami", "metrics.projection_homogeneity", "metrics.projection_completeness",
                "metrics.trustworthiness", "metrics.continuity", "metrics.knn_preservation"}
    assert expected <= set(logged.columns)
    assert logged[sorted(expected)].notna().all().all()
    assert sorted(logged["tags.reduce"]) == ["pca", "tsne"]
    figures = {a.path for a in MlflowClient().list_artifacts(logged.run_id.iloc[0])}
    assert {"projection_by_label.png", "projection_by_label.pdf"} <= figures


def test_a_failing_run_leaves_no_scratch_files(tiny_pair: tuple[Path, Path], corpus_manifest: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The contingency figure is written before the projection fails: it must not stay behind in
    the temporary folder, run after failed run."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))

    def failing_projection(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("projection failed")

    monkeypatch.setattr("w2vlens.analysis.reduce.PCAProjection.fit_transform", failing_projection)
    with pytest.raises(RuntimeError, match="projection failed"):
        run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path) + ["reduce=pca"]))
    assert not list(scratch.glob("w2vlens-result-*"))
    assert runs(tmp_path).iloc[0]["status"] == "FAILED"


def test_paper_experiment_logs_tables_figures_and_summary(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                          tmp_path: Path) -> None:
    overrides = overrides_for(tiny_pair, corpus_manifest, tmp_path) + [
        "experiment=paper", "paper.projections.umap.projection.n_epochs=50", "paper.color_by=[speaker,age]",
        "paper.projections.tsne.projection.neighbours=approximate"]
    scores = run(compose_app(overrides))
    assert set(scores) == {"ami", "homogeneity", "completeness"}
    record = runs(tmp_path).iloc[0]
    client = MlflowClient()
    artifacts = {a.path for folder in ("tables", "figures") for a in client.list_artifacts(record.run_id, folder)}
    assert {"tables/table1.json", "tables/table2.json", "tables/table3.json"} <= artifacts
    assert {"figures/figure1_umap.png", "figures/figure1_umap.pdf", "figures/figure1_umap_by_cluster.png",
            "figures/figure1_umap_by_speaker.png"} <= artifacts
    assert "figures/figure1_umap_by_age.png" not in artifacts  # no such metadata column: skipped with a warning
    assert {"figures/tables1_3.png", "figures/tables1_3.pdf"} <= artifacts
    assert "clusters.html" in {a.path for a in client.list_artifacts(record.run_id)}  # the fine-tuned clusters
    assert {"tables/table4_accuracy.json", "tables/table4_groups.json", "tables/table5_accuracy.json",
            "tables/table5_groups.json", "tables/figure3_probe_report.json", "tables/figure3_majority_report.json",
            "tables/figure3_logreg_report.json", "figures/figure2.png", "figures/figure3.png"} <= artifacts
    assert record["tags.table5_reference"] == "annotator_1"
    assert record["tags.layer"] == "cnn=cnn pretrained=2 finetuned=2"
    assert record["tags.table2_protocol"].startswith("pca: fitted on every frame")
    assert {"tables/table4_cluster_majority.json", "tables/figure2_distances.json", "figures/figure3_balanced.png",
            "tables/figure3_balanced_probe_report.json"} <= artifacts
    assert 0 <= record["metrics.figure3/probe_auroc"] <= 1
    assert 0 <= record["metrics.figure3/confidence_auroc"] <= 1
    assert 0 <= record["metrics.figure3/probe_balanced_accuracy"] <= 1
    assert {"tables/figure3_balanced_accuracy.json", "tables/figure2_categories.json",
            "tables/table4_cluster_cer.json", "tables/figure2_distances_by_placement.json"} <= artifacts
    metrics = [column.removeprefix("metrics.") for column in record.index
               if column.startswith("metrics.") and pd.notna(record[column])]
    assert len(metrics) <= 60  # the headline numbers; per-item results are tables
    assert all(name.count("/") <= 1 for name in metrics)  # `/` only after a section such as table1/
    summary = Path(client.download_artifacts(record.run_id, "summary.md", str(tmp_path))).read_text()
    assert "| finetuned | kmeans |" in summary and "(0.70)" in summary  # ours beside the paper's
    assert "## Table 4" in summary and "## Figure 3" in summary and "## Figure 2" in summary
    assert "What still differs from the paper" in summary and "every frame projected" in summary
    assert "chosen by paper.reference=best: the annotator with the lowest CER" in summary  # which, and why
    assert "on pauses (the authors')" in summary  # Figure 2's distances under both deletion placements
    for view in ("cnn", "pretrained", "finetuned"):
        for projection in ("pca", "tsne", "umap"):
            assert 0 <= record[f"metrics.table2/{view}_{projection}_ami"] <= 1
        assert record[f"metrics.table2/{view}_knn_recall"] >= 0.95  # t-SNE's approximate graph
    table2 = pd.read_json(client.download_artifacts(record.run_id, "tables/table2.json", str(tmp_path)),
                          orient="split")
    assert set(table2.query("projection == 'tsne'").knn_search) == {"approximate"}
    assert set(table2.query("projection == 'pca'").knn_search) == {"own"}
    assert record["metrics.table3/pretrained_vs_finetuned_linear_cka"] >= 0
    assert record["metrics.table1/finetuned_kmeans_ami"] == pytest.approx(scores["ami"])
    assert record["tags.mlflow.runName"] == "paper kmeans+spherical k=33"
    # issue 20: five K-means seeds, 1000 resamples of the utterances (2 speakers: too few to resample)
    assert {"tables/table1_seeds.json", "tables/table1_tests.json", "tables/table4_band_seeds.json",
            "figures/table1_intervals.png", "figures/table1_intervals.pdf"} <= artifacts
    assert record["tags.bootstrap_unit"] == "utterance"
    table1, seeds = (pd.read_json(client.download_artifacts(record.run_id, f"tables/{name}.json", str(tmp_path)),
                                  orient="split") for name in ("table1", "table1_seeds"))
    assert len(seeds) == 5 * len(table1)
    means = seeds.groupby(["view", "clustering"], sort=False)["ami"].mean().to_numpy()
    assert table1["ami"].to_numpy() == pytest.approx(means)
    assert (table1["ami_min"] <= table1["ami"]).all() and (table1["ami_low"] < table1["ami_high"]).all()
    assert 0 <= record["metrics.table1/finetuned_minus_pretrained_ami_p"] <= 1
    assert "## Uncertainty: K-means seeds and bootstrap intervals" in summary and " ± " in summary
    assert "- fine-tuned − pre-trained AMI " in summary and "characters change accuracy band" in summary


def test_layer_experiment_logs_curves_for_both_models(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                      tmp_path: Path) -> None:
    run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path) + ["experiment=layers"]))
    record = runs(tmp_path).iloc[0]
    client = MlflowClient()
    for metric in ("pretrained_ami", "finetuned_ami", "finetuned_completeness", "linear_cka"):
        assert sorted(m.step for m in client.get_metric_history(record.run_id, metric)) == [0, 1, 2]
    artifacts = {a.path for folder in ("tables", "figures") for a in client.list_artifacts(record.run_id, folder)}
    assert {"tables/layers.json", "figures/layers.png", "figures/layers.pdf"} <= artifacts
    assert record["tags.view"] == "layers"
    assert 0 <= record["metrics.cnn_ami"] <= 1  # the CNN baseline the layers are drawn against


@pytest.mark.parametrize(("preset", "params"), [
    ("sweep_views", {"model": "cnn,pretrained,finetuned", "cluster": "kmeans,spherical"}),
    ("sweep_k", {"model": "pretrained,finetuned", "cluster.k_scale": "0.5,1,2"}),
    ("sweep_projections", {"model": "cnn,pretrained,finetuned", "reduce": "pca,tsne,umap"}),
])
def test_sweep_presets_and_launchers_compose(preset: str, params: dict[str, str]) -> None:
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        for launcher, target in (("joblib", "JoblibLauncher"), ("slurm", "SlurmLauncher")):
            cfg = compose("config", overrides=[f"experiment={preset}", f"hydra/launcher={launcher}"],
                          return_hydra_config=True)
            assert dict(cfg.hydra.sweeper.params) == params
            assert cfg.hydra.launcher._target_.endswith(target)
    assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.array_parallelism == 16


def test_k_scale_multiplies_the_papers_k() -> None:
    from w2vlens.analysis.cluster import resolve_k

    vocabulary = ["blank"] + list("abcdefghijklmnopqrstuvwxyzåäö|")
    assert [resolve_k("auto", vocabulary, scale) for scale in (0.5, 1, 2)] == [16, 32, 64]
    assert resolve_k(40, vocabulary, 2) == 40
