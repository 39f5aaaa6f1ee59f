"""experiment=paper: the paper's whole analysis over the CNN, pre-trained and fine-tuned views,
every table through `w2vlens.tables`: Table 1 (clusters vs pseudo-labels), Table 2 (what each
projection loses), Table 3 (views compared), Figure 1, Tables 4-5 with their correlations,
Figures 2-3 and a Markdown summary beside the paper's numbers.

Tables 1 and 3 are computed for `paper.seeds` K-means seeds (their mean is the headline) with 95%
bootstrap intervals over utterances or speakers, and Table 1's comparisons are paired bootstrap
tests (`w2vlens.analysis.intervals`).

Metrics are the tables' headline numbers under a section per table (`table1/finetuned_kmeans_ami`,
`table2/cnn_umap_ami`, `figure3/probe_auroc`, ...); everything else is in the tables."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pytorch_lightning.loggers import Logger

from w2vlens import tables as paper_tables
from w2vlens.analysis.characters import is_character, majority_blank_clusters
from w2vlens.analysis.compare import view_comparison
from w2vlens.analysis.correlate import character_frequencies
from w2vlens.analysis.faithfulness import neighbourhood_scores, projection_scores
from w2vlens.analysis.probe import mistake_probe
from w2vlens.analysis.reduce import KNNGraph, shared_knn_graphs
from w2vlens.choices import SCORES
from w2vlens.config import FaithfulnessConfig, ListenConfig, PaperConfig
from w2vlens.corpora.corpus import Corpus, load_manifest
from w2vlens.embeddings.store import EmbeddingStore
from w2vlens.errors import W2VLensError
from w2vlens.figures import agreement_projection, confusion_figure, forest_plot, paper_scores, projection_panels
from w2vlens.labelling.frames import (
    FrameLabels,
    aligned_label_ids,
    annotator_errors,
    greedy_hypotheses,
    reference_column,
)
from w2vlens.labelling.names import BLANK_LABEL, SILENCE_LABEL
from w2vlens.pipelines.inputs import Inputs
from w2vlens.pipelines.view import KMeansFactory, add_cluster_audio, score_clusters, view_title
from w2vlens.result import Result
from w2vlens.summary import characters_summary, paper_summary, uncertainty_summary

log = logging.getLogger("w2vlens")
FORMATS = ("png", "pdf")
# Figure 2's deletion placements (paper.deletions_on_pauses): ours leaves pause frames out
PLACEMENTS = {False: "off pauses (ours)", True: "on pauses (the authors')"}
MIN_SPEAKERS = 30  # bootstrap_unit=auto resamples speakers from this many on


@dataclass
class PaperSettings:
    """experiment=paper's settings: `paper` (conf/analysis/paper.yaml says what each means), the run's
    K-means' name (`clustering`), the faithfulness and listening settings, and the `device` of the
    projections' exact neighbour search."""

    paper: PaperConfig
    clustering: str
    faithfulness: FaithfulnessConfig
    listen: ListenConfig
    device: str


@dataclass
class PaperView:
    """One view of the paper's analysis: its model's store and the array it clusters."""

    store: EmbeddingStore
    array: str


def run_paper(inputs: Inputs, kmeans: KMeansFactory, settings: PaperSettings, seed: int) -> Result:
    """The views in `inputs` (cnn, pretrained, finetuned; each clustered on the last layer it reads)
    clustered with `kmeans` (k clusters, named `settings.clustering`) and, for
    `paper.spherical_views`, spherical K-means too; `paper.projections` for Table 2. Tables 1-3 are
    drawn as one figure (`figures/tables1_3`); with `listen` enabled the fine-tuned view's clusters
    get their audio montages and `clusters.html`. Headline: the fine-tuned view's Table 1 scores."""
    paper, faithfulness, clustering = settings.paper, settings.faithfulness, settings.clustering
    pair, labels, k = inputs.pair, inputs.labels, inputs.k
    views = {name: PaperView(inputs.store(name), arrays[-1][0]) for name, arrays in inputs.arrays.items()}
    projections = {name: chosen["projection"] for name, chosen in paper.projections.items()}
    protocol = projection_protocol(projections)
    with Result() as result:  # a failure removes the files written so far
        finetuned = views["finetuned"].store
        vocabulary = finetuned.vocabulary
        embeddings: dict[str, np.ndarray] = {}
        clusters: dict[str, np.ndarray] = {}  # the first seed's: Tables 2 and 4, the figures
        seeded: dict[tuple[str, str], np.ndarray] = {}  # (view, clustering) -> seeds x frames
        frames = finetuned.frames()
        units, unit = bootstrap_units(frames, paper.bootstrap_unit)
        result.tags["bootstrap_unit"] = unit
        table1 = []
        for name, view in views.items():
            embeddings[name] = view.store.array(view.array)
            variants = [(clustering, {})] + ([("spherical", {"spherical": True})] if name in paper.spherical_views
                                             else [])
            for variant, override in variants:
                fitted = kmeans(n_clusters=k, **override).fit(embeddings[name])
                clusters.setdefault(name, fitted.labels_)
                score_clusters(result, f"tables/clusters_{name}_{variant}.json",
                               f"figures/contingency_{name}_{variant}", fitted.labels_, labels, vocabulary,
                               f"{pair} {view_title(name, view.array)} ({variant}): clusters vs pseudo-labels")
                seeded[name, variant] = np.stack([fitted.labels_] + [
                    kmeans(n_clusters=k, seed=seed + extra, **override).fit(embeddings[name]).labels_
                    for extra in range(1, paper.seeds)])
                scores = uncertain_scores(labels.pseudo, seeded[name, variant], units, paper.bootstrap, seed,
                                          f"{name} {variant} vs pseudo-labels")
                result.metrics |= {f"table1/{name}_{variant}_{metric}": scores[metric] for metric in SCORES}
                table1.append({"view": name, "clustering": variant, **scores})

        table2 = []
        coords: dict[tuple[str, str], np.ndarray] = {}
        for name in views:  # one kNN graph per view, shared by the projections that take one
            graphs = shared_knn_graphs(embeddings[name], list(projections.values()), settings.device, seed)
            if any(graphs):  # how much of the true neighbourhood the (worst) graph holds: 1 when exact
                result.metrics[f"table2/{name}_knn_recall"] = min(graph.recall for graph in graphs if graph)
            for (projection_name, projection), graph in zip(projections.items(), graphs, strict=True):
                coords[name, projection_name] = projection.fit_transform(embeddings[name], labels=labels.classes,
                                                                         knn=graph)
                lost = projection_scores(
                    paper_tables.table2(clusters[name], coords[name, projection_name], seed, kmeans),
                    neighbourhood_scores(embeddings[name], coords[name, projection_name], faithfulness.neighbours,
                                         faithfulness.sample, seed))
                result.metrics[f"table2/{name}_{projection_name}_ami"] = lost["projection_ami"]
                table2.append({"view": name, "projection": projection_name, **lost, **knn_columns(graph)})
                log.info("%s %s: %s", name, projection_name, ", ".join(f"{m}={v:.3f}" for m, v in lost.items()))

        table3 = view_comparison(embeddings, clusters, paper.cka_points, seed)
        table3 = table3[["earlier", "later", "linear_cka"]].join(pd.DataFrame([  # Table 3 over the seeds
            uncertain_scores(seeded[later, clustering], seeded[earlier, clustering], units, paper.bootstrap, seed,
                             f"{earlier} vs {later}") for earlier, later in zip(table3["earlier"], table3["later"],
                                                                                 strict=True)]))
        for row in table3.itertuples():
            result.metrics |= {f"table3/{row.earlier}_vs_{row.later}_{metric}": getattr(row, metric)
                               for metric in ("ami", "linear_cka")}

        shown = paper.figure_projection
        add_figure1(result, pair, {name: coords[name, shown] for name in views}, shown, labels, clusters,
                    frames, paper, seed)
        tables = {"table1": pd.DataFrame(table1), "table2": pd.DataFrame(table2), "table3": table3}
        for table_name, table in tables.items():
            result.tables[f"tables/{table_name}.json"] = table
        tests = paired_tests(result, labels.pseudo, seeded, clustering, units, paper.bootstrap, seed)
        result.tables["tables/table1_seeds.json"] = pd.DataFrame(
            [{"view": view, "clustering": variant, "seed": seed + number,
              **{m: s for m, s in paper_tables.table1(labels.pseudo, labelled).items() if m in SCORES}}
             for (view, variant), rows in seeded.items() for number, labelled in enumerate(rows)])
        forest = tables["table1"].set_index(tables["table1"]["view"] + " " + tables["table1"]["clustering"])
        result.add_figure("figures/table1_intervals", forest_plot(
            forest, SCORES, f"{pair}: Table 1, mean over {paper.seeds} K-means seed(s), "
            f"95% bootstrap interval over {unit}s"), FORMATS)
        result.add_figure("figures/tables1_3", paper_scores(*tables.values(), f"{pair}: Tables 1-3 (k={k})"), FORMATS)
        if settings.listen.enabled:
            add_cluster_audio(result, "", clusters["finetuned"], labels.classes, finetuned,
                              f"{pair} {view_title('finetuned', views['finetuned'].array)} ({clustering})",
                              settings.listen, inputs.served_at, seed)
        result.tags["table2_protocol"] = "; ".join(f"{name}: {text}" for name, text in protocol.items())
        utterances = finetuned.utterances()
        report = characters(result, paper, clusters, labels, utterances, vocabulary,
                            finetuning_texts(paper.finetuning_transcripts, inputs.corpus)) | {"k": k}
        report |= annotators(result, paper, embeddings["finetuned"], clusters["finetuned"],
                             finetuned.array("logits"), coords["finetuned", shown], labels, utterances, vocabulary,
                             inputs.training_logger() if inputs.training_logger else None, seed)
        report["differences"] = differences(pair, finetuned, views["finetuned"].array, k, len(utterances), protocol,
                                            report["table5_rule"], paper)
        bands = None
        if paper.seeds > 1 and "pretrained" in seeded_views(seeded, clustering):
            bands = paper_tables.band_changes(list(seeded["pretrained", clustering]), character_label_ids(
                paper, labels, vocabulary), vocabulary, BLANK_LABEL, [tuple(b) for b in paper.accuracy_bands])
            result.tables["tables/table4_band_seeds.json"] = bands.reset_index()
            result.metrics["table4/band_changes"] = int(bands["changes"].sum())
        design = f"{paper.seeds} K-means seed(s), " + (
            f"{paper.bootstrap} resamples of the {len(np.unique(units))} {unit}s with replacement"
            if paper.bootstrap else "no bootstrap")
        summary = paper_summary(f"w2vlens: pair {pair} on {inputs.corpus.name}", *tables.values(), inputs.silence,
                                protocol)
        summary += uncertainty_summary(tables["table1"], table3, tests, design, bands, paper.seeds)
        summary += characters_summary(report)
        result.texts["summary.md"] = summary
        log.info("summary:\n%s", summary)
        finetuned_row = tables["table1"].query("view == 'finetuned'").iloc[0]
        result.headline = {metric: float(finetuned_row[metric]) for metric in SCORES}
        return result


def projection_protocol(projections: dict[str, object]) -> dict[str, str]:
    """How each projection of Table 2 is fitted, in words, for the summary: every frame (the paper's
    protocol) or a sample with the rest placed by `transform`, and the settings that differ."""
    protocol = {}
    for name, projection in projections.items():
        fitted = ("every frame" if projection.max_points is None
                  else f"a stratified sample of {projection.max_points:,} frames, the rest placed with transform")
        details = [f"fitted on {fitted}"]
        if projection.pca_components is not None:
            details.append(f"after PCA to {projection.pca_components} dims")
        for key in ("perplexity", "n_iter", "early_exaggeration_iter", "n_neighbors", "min_dist", "metric",
                    "n_epochs"):
            if hasattr(projection, key):
                details.append(f"{key}={getattr(projection, key)}")
        protocol[name] = ", ".join(details)
    return protocol


def finetuning_texts(source: str | None, corpus: Corpus) -> list[str] | None:
    """Transcripts of the fine-tuning data for the character frequencies: `auto` is what the
    corpus says its model was fine-tuned on (the demo's train split), else a manifest's texts."""
    if source is None:
        return None
    if source == "auto":
        if corpus.finetuning_texts is None:
            log.warning("paper.finetuning_transcripts=auto: no fine-tuning transcripts known for this data; "
                        "set it to a manifest of them for the frequency correlations")
            return None
        return corpus.finetuning_texts()
    return [utt.text for utt in load_manifest(source).utterances if utt.text]


def knn_columns(graph: KNNGraph | None) -> dict[str, object]:
    """Table 2's columns on a projection's kNN graph: `knn_search` (exact, approximate, or own: the
    method's own search or none) and `knn_recall` (recall@k against the exact graph; NaN for own)."""
    if graph is None:
        return {"knn_search": "own", "knn_recall": float("nan")}
    return {"knn_search": graph.search, "knn_recall": graph.recall}


def add_figure1(result: Result, pair: str, panels: dict[str, np.ndarray], shown: str, labels: FrameLabels,
                clusters: dict[str, np.ndarray], frames: pd.DataFrame, settings: PaperConfig, seed: int) -> None:
    """Figure 1 (the views side by side in projection `shown`) by label, by cluster and by each of
    `settings.color_by`."""
    title = f"{pair}: {', '.join(panels)} ({shown})"
    hide = {name: {BLANK_LABEL, SILENCE_LABEL} for name in settings.hide_blank_in}
    result.add_figure(f"figures/figure1_{shown}",
                      projection_panels(panels, labels.classes, title=f"{title}, by label", hide=hide, seed=seed),
                      FORMATS)
    result.add_figure(f"figures/figure1_{shown}_by_cluster",
                      projection_panels(panels, clusters, title=f"{title}, by cluster", seed=seed), FORMATS)
    for column in settings.color_by:
        if column not in frames.columns:
            log.warning("figure 1: no metadata column %r to colour by (columns: %s)", column, list(frames.columns))
            continue
        result.add_figure(f"figures/figure1_{shown}_by_{column}",
                          projection_panels(panels, frames[column].to_numpy(), title=f"{title}, by {column}",
                                            seed=seed, name_centroids=False), FORMATS)  # medians: all central


def differences(pair: str, store: EmbeddingStore, layer: str, k: int, n_utterances: int, protocol: dict[str, str],
                reference_rule: str, settings: PaperConfig) -> list[str]:
    """The summary's list of what still differs from the paper's set-up, and why."""
    every_frame = all(text.startswith("fitted on every frame") for text in protocol.values())
    return [
        f"Model: pair {pair}, {store.num_layers} Transformer layers, the last clustered ({layer}) of "
        f"{store.array(layer).shape[1]} dims; the paper's is wav2vec2 Large (24 layers of 1024 dims, VoxPopuli "
        "pre-training, 100 h of colloquial Finnish fine-tuning). Absolute scores follow the model, not the method.",
        f"Data: {n_utterances} utterances, {store.n_frames:,} frames; the paper's is the Lahjoita puhetta "
        "multi-annotator test set (4 annotator groups).",
        f"k = {k}: the CTC outputs plus one ({len(store.vocabulary)} + 1, times cluster.k_scale); the paper's "
        "vocabulary gave 36.",
        "Table 2: " + ("every frame projected, the authors' settings (scikit-learn t-SNE defaults, UMAP with the "
                       "cosine metric), as the paper." if every_frame else
                       "a faster protocol (experiment=paper_fast): see the protocol above; experiment=paper projects "
                       "every frame as the paper did."),
        "Table 4: the authors' script binned cluster ids at the vocabulary ids, so for k = vocabulary + 1 its last "
        "two clusters shared a bin and the last was never counted; we count every cluster. Its two other bugs "
        "(absent characters in cluster 0, the shifted cluster decoding) are fixed as described under Table 4. "
        "The 83.4% row decodes as its script does otherwise (the word delimiter spells nothing, so `a|a` is one "
        "a), scored against the references without spaces; ours with spaces is an extra.",
        f"Table 5: {reference_rule}; the paper used its best transcriber, T2. Its groups and the correlations "
        f"leave out letters with fewer than {settings.min_char_frames} frames (paper.min_char_frames): over "
        "every letter, letters with a handful of frames decide Pearson's r (on the authors' released labels B "
        "has 3 frames and F 16, and pre vs fine gives -0.11 where the paper prints 0.35); the paper's Table 5 "
        "leaves F out.",
        "Correlations: frequency is correlated with the fine-tuned model's per-letter CER, as the paper's text "
        "says (\"the final CER\"); Spearman r, p-values and n sit beside each Pearson r.",
        ("Figure 2: deletions sit on every blank frame between the predicted characters around them, pause frames "
         "included, as the authors' released categories (paper.deletions_on_pauses=true)."
         if settings.deletions_on_pauses else
         "Figure 2: deletions sit on the blank frames around them but not on pause frames "
         "(paper.deletions_on_pauses=false); the authors' released categories put them on pause frames too "
         "(the distance table gives both)."),
        "Figure 2: the authors' released categories come from a pointer over the predicted characters that "
        "loses step at a deletion with no blank run between its neighbours, after which most frames of wrongly "
        "recognised characters get 0 (correct); we carry each alignment's counts to the characters' own frame "
        "spans, which has no such drift.",
        f"Figure 3: the classifier is an MLP ({settings.probe.hidden} hidden units, {settings.probe.depth} "
        "layer(s)) on an utterance-level train/val/test split stratified by category; the paper calls it a "
        "simple classifier and gives no split.",
    ]


def characters(result: Result, settings: PaperConfig, clusters: dict[str, np.ndarray], labels: FrameLabels,
               utterances: pd.DataFrame, vocabulary: list[str], finetuning_texts: list[str] | None
               ) -> dict[str, object]:
    """Table 4 (pre-trained clusters vs characters), Table 5 (fine-tuned per-character accuracy
    against the chosen reference) and the correlations between them and character frequency in
    `finetuning_texts`, all through `w2vlens.tables`."""
    label_ids = character_label_ids(settings, labels, vocabulary)
    table4 = paper_tables.table4(clusters["pretrained"], label_ids, vocabulary, blank=BLANK_LABEL,
                                 bands=[tuple(band) for band in settings.accuracy_bands])
    accuracy4 = pd.DataFrame({"frames": table4.frames, "modal_cluster": table4.modal_cluster,
                              "accuracy": table4.accuracy})
    result.tables["tables/table4_accuracy.json"] = accuracy4.rename_axis("character").reset_index()
    groups4 = ([{"category": "no frames", "characters": ", ".join(table4.absent)},
                {"category": "merged with blank", "characters": ", ".join(table4.merged_with_blank)},
                {"category": "often confused", "characters": "; ".join(", ".join(g) for g in table4.groups)}]
               + [{"category": name, "characters": ", ".join(members)} for name, members in table4.bands.items()])
    result.tables["tables/table4_groups.json"] = pd.DataFrame(groups4)
    result.tables["tables/table4_cluster_majority.json"] = table4.cluster_majority.reset_index()
    offsets, texts = utterances["offset"].tolist(), utterances["text"].tolist()
    cluster_cer = table4.cer(offsets, texts)
    spaced_cer = table4.cer(offsets, texts, spaces=True)
    result.tables["tables/table4_cluster_cer.json"] = pd.DataFrame([
        {"decoding": "paper", "cer": cluster_cer,
         "rule": "the authors' tokenizer decoding: the word delimiter gives nothing, repeats merged after it; "
                 "references without spaces"},
        {"decoding": "ours_spaced", "cer": spaced_cer,
         "rule": "the word delimiter is a space, repeats merged after it; references with their spaces"}])
    majority = majority_blank_clusters(clusters["pretrained"], label_ids, vocabulary.index(BLANK_LABEL))
    result.metrics |= {"table4/pretrained_cluster_cer": cluster_cer, "table4/majority_blank_clusters": majority}
    report: dict[str, object] = {"table4": table4, "cluster_cer": cluster_cer, "cluster_cer_spaced": spaced_cer,
                                 "majority_blank_clusters": majority}
    reference, rule = reference_column(utterances, settings.reference)
    letters = [token for token in vocabulary if is_character(token, BLANK_LABEL)]
    frames = table4.frames.reindex(letters, fill_value=0)
    frequent = paper_tables.frequent_characters(frames, settings.min_char_frames)
    table5 = paper_tables.table5(greedy_hypotheses(labels.pseudo, vocabulary, utterances),
                                 utterances[reference].fillna("").tolist(), list(settings.percentiles), letters,
                                 grouped=frequent)
    counts5 = table5.counts.join(frames.rename("frames"))
    result.tables["tables/table5_accuracy.json"] = counts5.reset_index()
    ungrouped = [{"interval": f"fewer than {settings.min_char_frames} frames (not grouped)",
                  "characters": ", ".join(table5.ungrouped)}] if table5.ungrouped else []
    result.tables["tables/table5_groups.json"] = pd.concat([table5.groups, pd.DataFrame(ungrouped)],
                                                           ignore_index=True).astype(str)
    result.metrics["table5/finetuned_cer"] = table5.cer
    result.tags["table5_reference"] = reference
    report |= {"table5": table5, "table5_reference": reference, "table5_rule": rule,
               "min_char_frames": settings.min_char_frames,
               "rare_characters": sorted(set(letters) - set(frequent))}
    frequencies = character_frequencies(finetuning_texts) if finetuning_texts else None
    try:
        correlations = paper_tables.correlations(table4.accuracy, table5.accuracy, frequencies, frequent)
    except W2VLensError as error:
        log.warning("correlations skipped: %s", error)
    else:
        result.tables["tables/correlations.json"] = pd.DataFrame(
            {"statistic": list(correlations), "value": list(correlations.values())})
        result.metrics |= {f"correlations/{name}": value for name, value in correlations.items()
                           if not name.endswith(("_p", "_n"))}
        report["correlations"] = correlations
    return report


def annotators(result: Result, settings: PaperConfig, embeddings: np.ndarray, clusters: np.ndarray,
               logits: np.ndarray, coords: np.ndarray, labels: FrameLabels, utterances: pd.DataFrame,
               vocabulary: list[str], probe_logger: Logger | None, seed: int) -> dict[str, object]:
    """Figure 2 (how many annotators call each predicted character a mistake, and how far each
    category lies from its cluster's centroid) and Figure 3 (the mistake classifier as the paper
    trained it, the class-balanced one, and error detection against the model's own confidence)."""
    errors = annotator_errors(labels, vocabulary, utterances, settings.deletions_on_pauses)
    if errors is None:
        log.warning("Figures 2-3 skipped: the corpus has no annotator_* columns")
        return {}
    other = annotator_errors(labels, vocabulary, utterances, not settings.deletions_on_pauses)
    counts = pd.Series(errors.categories).value_counts()
    result.tables["tables/figure2_categories.json"] = counts.rename_axis("category").rename("frames").reset_index()
    result.add_figure("figures/figure2", agreement_projection(
        coords, errors.categories, title="Figure 2: annotators calling a frame a mistake", seed=seed), FORMATS)
    blank_frames = labels.pseudo == vocabulary.index(BLANK_LABEL)
    placements = {settings.deletions_on_pauses: errors, not settings.deletions_on_pauses: other}
    by_placement = {on_pauses: paper_tables.category_distances(embeddings, clusters, placed.categories, blank_frames)
                    for on_pauses, placed in placements.items()}
    distances = by_placement[settings.deletions_on_pauses]
    result.tables["tables/figure2_distances.json"] = distances.reset_index()
    result.tables["tables/figure2_distances_by_placement.json"] = pd.concat(
        {PLACEMENTS[on_pauses]: table for on_pauses, table in by_placement.items()}, names=["deletions"]
    ).reset_index()
    probe = mistake_probe(embeddings, logits, errors, utterances, settings.probe, seed, probe_logger)
    result.metrics |= {f"figure3/{name}": value for name, value in probe.auroc.items()}
    for prefix, trained in (("figure3", probe.plain), ("figure3_balanced", probe.balanced)):
        for name, scores in {"probe": trained.probe, **trained.baselines}.items():
            result.tables[f"tables/{prefix}_{name}_report.json"] = scores.report.reset_index()
        result.tables[f"tables/{prefix}_balanced_accuracy.json"] = pd.DataFrame(
            {"classifier": list(trained.balanced_accuracies()), "balanced_accuracy": list(
                trained.balanced_accuracies().values())})
    result.metrics["figure3/probe_balanced_accuracy"] = probe.plain.probe.balanced_accuracy
    result.metrics["figure3/majority_balanced_accuracy"] = probe.plain.baselines["majority"].balanced_accuracy
    result.metrics["figure3/balanced_probe_balanced_accuracy"] = probe.balanced.probe.balanced_accuracy
    result.add_figure("figures/figure3", confusion_figure(
        probe.plain.probe.confusion, "Figure 3: confusion matrix of the mistake classifier (no class weights)"),
        FORMATS)
    result.add_figure("figures/figure3_balanced", confusion_figure(
        probe.balanced.probe.confusion, "Mistake classifier with balanced class weights (our extra)"), FORMATS)
    return {"probe": probe, "distances": distances, "distances_by_placement": by_placement,
            "deletions_on_pauses": settings.deletions_on_pauses}


def bootstrap_units(frames: pd.DataFrame, unit: str) -> tuple[np.ndarray, str]:
    """Each frame's bootstrap unit and the unit's name: its utterance, or its speaker (`speaker`
    column; an utterance without one is its own unit). `auto` takes speakers when the corpus names
    at least MIN_SPEAKERS of them: with fewer, a resample of speakers is too coarse to be trusted
    (the percentile interval of a handful of clusters is too narrow), and utterances are taken."""
    utterances = frames["utterance"].astype(str).to_numpy()
    speakers = frames["speaker"] if "speaker" in frames.columns else None
    if unit == "speaker" and speakers is None:
        raise W2VLensError("paper.bootstrap_unit=speaker: the corpus has no speaker column; use utterance or auto")
    if unit == "speaker" or (unit == "auto" and speakers is not None and speakers.nunique() >= MIN_SPEAKERS):
        labelled = ("speaker:" + speakers.astype(str)).where(speakers.notna(),
                                                             "utterance:" + frames["utterance"].astype(str))
        return labelled.to_numpy(dtype=str), "speaker"
    return utterances, "utterance"


def uncertain_scores(reference: np.ndarray, compared: np.ndarray, units: np.ndarray, resamples: int, seed: int,
                     title: str) -> dict[str, float]:
    """AMI, homogeneity and completeness of `compared` (seeds x frames) against `reference` (frames,
    or seeds x frames): the mean over seeds under the metric's name, and `<metric>_std`, `_min`,
    `_max` and the bootstrap interval `_low`, `_high` (NaN without resamples)."""
    table = paper_tables.table1_intervals(reference, compared, units, resamples, seed)
    scores = {metric: float(table.loc[metric, "mean"]) for metric in SCORES}
    scores |= {f"{metric}_{column}": float(table.loc[metric, column]) for metric in SCORES
               for column in ("std", "min", "max", "low", "high")}
    log.info("%s: %s", title, ", ".join(
        f"{metric}={scores[metric]:.3f} ± {scores[metric + '_std']:.3f} [{scores[metric + '_low']:.3f}, "
        f"{scores[metric + '_high']:.3f}]" for metric in SCORES))
    return scores


def seeded_views(seeded: dict[tuple[str, str], np.ndarray], clustering: str) -> list[str]:
    return [view for view, variant in seeded if variant == clustering]


def paired_tests(result: Result, labels: np.ndarray, seeded: dict[tuple[str, str], np.ndarray], clustering: str,
                 units: np.ndarray, resamples: int, seed: int) -> pd.DataFrame:
    """Table 1's comparisons as paired bootstrap tests of AMI against the pseudo-labels: fine-tuned
    minus pre-trained (the run's clustering), and spherical minus the run's K-means on the fine-tuned view;
    metrics `table1/<name>_ami` and `_ami_p`, rows with the interval in `tables/table1_tests.json`."""
    pairs = {("finetuned_minus_pretrained", "fine-tuned − pre-trained"):
             (("finetuned", clustering), ("pretrained", clustering)),
             ("finetuned_spherical_minus_kmeans", "fine-tuned spherical − K-means"):
             (("finetuned", "spherical"), ("finetuned", clustering))}
    rows = []
    for (name, words), (first, second) in pairs.items():
        if not resamples or first not in seeded or second not in seeded or first == second:
            continue
        test = paper_tables.paired_bootstrap((labels, seeded[first]), (labels, seeded[second]), units, "ami",
                                             resamples, seed)
        result.metrics |= {f"table1/{name}_ami": test["difference"], f"table1/{name}_ami_p": test["p_value"]}
        log.info("%s AMI %.3f [%.3f, %.3f], p = %.4f (paired bootstrap)", words, test["difference"], test["low"],
                 test["high"], test["p_value"])
        rows.append({"comparison": words, "metric": "ami", **test})
    tests = pd.DataFrame(rows, columns=["comparison", "metric", "difference", "low", "high", "p_value", "resamples"])
    if len(tests):
        result.tables["tables/table1_tests.json"] = tests
    return tests


def character_label_ids(settings: PaperConfig, labels: FrameLabels, vocabulary: list[str]) -> np.ndarray:
    """Table 4's per-frame labels: the pseudo-labels, or the forced alignment's (paper.character_labels)."""
    return (aligned_label_ids(labels.aligned, vocabulary) if settings.character_labels == "aligned"
            else labels.pseudo)
