"""The Markdown summary of `experiment=paper`: each of our numbers beside the paper's."""

from __future__ import annotations

import pandas as pd

from w2vlens.choices import SCORES

# Grósz et al., Tables 1-3 (AMI, homogeneity, completeness).
PAPER_TABLE1 = {
    ("pretrained", "kmeans"): (0.15, 0.25, 0.10),
    ("finetuned", "kmeans"): (0.70, 0.94, 0.56),
    ("finetuned", "spherical"): (0.69, 0.93, 0.55),
}
PAPER_TABLE2 = {
    ("pretrained", "pca"): (0.45, 0.44, 0.45),
    ("pretrained", "tsne"): (0.45, 0.46, 0.44),
    ("pretrained", "umap"): (0.49, 0.50, 0.49),
    ("finetuned", "pca"): (0.63, 0.68, 0.58),
    ("finetuned", "tsne"): (0.62, 0.76, 0.52),
    ("finetuned", "umap"): (0.69, 0.83, 0.59),
}
PAPER_TABLE3 = {
    ("cnn", "pretrained"): (0.43, 0.44, 0.43),
    ("cnn", "finetuned"): (0.12, 0.15, 0.10),
    ("pretrained", "finetuned"): (0.23, 0.22, 0.23),
}
PAPER_TABLE4 = {
    "merged with blank": "C, Q, W, X, Z, Å",
    "often confused": "[E, J], [F, T], [M, N]",
    "bands": ["A, C, D, H, J, L, O, T, Y", "E, I, M, N, Ö, R, Ä", "B, G, K, P, S, U, V"],
}
PAPER_TABLE5 = ["44 – 94%: B, C, D, G, H, N, Å, Ö", "94 – 96%: E, I, J, L, M, O, Y", "96 – 98%: A, K, P, R, S, T, U, V"]
PAPER_CORRELATIONS = {"pre_vs_fine_pearson_r": 0.35, "frequency_vs_fine_cer_pearson_r": 0.38, "multiple_r": 0.52}
PAPER_CLUSTER_CER = 0.834


def _cell(ours: float, paper: tuple[float, ...] | None, index: int) -> str:
    return f"{ours:.2f} ({paper[index]:.2f})" if paper else f"{ours:.2f} (–)"


def _table(frame: pd.DataFrame, keys: tuple[str, str], columns: tuple[str, ...], paper: dict) -> list[str]:
    header = [keys[0], keys[1], *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in frame.itertuples(index=False):
        row = row._asdict()
        reference = paper.get((row[keys[0]], row[keys[1]]))
        cells = [_cell(row[column], reference, index) for index, column in enumerate(columns)]
        lines.append("| " + " | ".join([str(row[keys[0]]), str(row[keys[1]]), *cells]) + " |")
    return lines


def paper_summary(title: str, table1: pd.DataFrame, table2: pd.DataFrame, table3: pd.DataFrame,
                  silence: dict[str, float] | None, protocol: dict[str, str] | None = None) -> str:
    """Tables 1-3 as Markdown, each cell `ours (paper)`, the Table 2 protocol that ran (projection
    name -> description), plus the silence-split scores."""
    lines = [f"# {title}", "", "Each cell: our value (the paper's value, Grósz et al.).", "",
             "## Table 1: K-means clusters vs the fine-tuned model's pseudo-labels", ""]
    lines += _table(table1, ("view", "clustering"), SCORES, PAPER_TABLE1)
    lines += ["", "## Table 2: K-means on the 2-D coordinates vs K-means on the embeddings", ""]
    if protocol:
        lines += ["Protocol that ran:", ""] + [f"- {name}: {text}" for name, text in protocol.items()] + [""]
    lines += _table(table2, ("view", "projection"), tuple(f"projection_{s}" for s in SCORES), PAPER_TABLE2)
    lines += ["", "Neighbourhood scores (no counterpart in the paper):", ""]
    lines += ["| view | projection | trustworthiness | continuity | knn_preservation |", "|" + " --- |" * 5]
    lines += [f"| {r.view} | {r.projection} | {r.trustworthiness:.2f} | {r.continuity:.2f} | {r.knn_preservation:.2f} |"
              for r in table2.itertuples()]
    lines += ["", "## Table 3: clusterings compared between views, and linear CKA of the embeddings", "",
              "The later view's clusters are the reference, as the authors' `f(later, earlier)`: homogeneity, "
              "each cluster of the earlier view holds frames of one later cluster; completeness, each later "
              "cluster stays in one earlier cluster.", ""]
    lines += _table(table3, ("earlier", "later"), SCORES, PAPER_TABLE3)
    lines += ["", "| earlier | later | linear CKA |", "| --- | --- | --- |"]
    lines += [f"| {r.earlier} | {r.later} | {r.linear_cka:.2f} |" for r in table3.itertuples()]
    if silence is not None:
        lines += ["", "## Silence split against the known pauses", "",
                  f"precision {silence['precision']:.2f}, recall {silence['recall']:.2f}, F1 {silence['f1']:.2f}"]
    return "\n".join(lines) + "\n"


def _names(characters: list[str]) -> str:
    return ", ".join(characters) if characters else "–"


def _placements(by_placement: dict[bool, pd.DataFrame] | None) -> list[str]:
    """The blank frames deletions sit on, and their distance, with pause frames left out (ours) and
    included (the authors'): the paper's "deletions lie near the blank cluster's centre" rests on the latter."""
    if not by_placement or not all("blank_frames" in table for table in by_placement.values()):
        return []
    ours, theirs = by_placement[False], by_placement[True]
    lines = ["", "Blank frames carrying a deletion, by placement: the paper's remark that deletions lie near the "
             "centre of the blank cluster rests on the authors' placement (in their released categories nearly "
             "all blank frames with a deletion are pause frames).", "",
             "| category | blank frames, off pauses (ours) | distance | blank frames, on pauses (the authors') "
             "| distance |", "|" + " --- |" * 5]
    for category in ours.index.union(theirs.index, sort=False):
        cells = []
        for table in (ours, theirs):
            frames = int(table["blank_frames"].get(category, 0))
            distance = table["blank_distance"].get(category, float("nan"))
            cells += [f"{frames:,}", "–" if pd.isna(distance) else f"{distance:.3f}"]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    return lines


def characters_summary(report: dict) -> str:
    """Tables 4-5, the correlations, Figures 2-3 and the remaining differences as Markdown, beside the paper's."""
    table4 = report["table4"]
    bands = list(table4.bands.items())
    blank_cluster = ("the blank has no frames" if table4.blank_cluster is None
                     else f"the blank's, cluster {table4.blank_cluster}")
    lines = ["", "## Table 4: characters in the pre-trained clusters", "",
             "Character-centred, as the authors' `eval_pre_clusters_asr.py`: a character's modal cluster is the "
             "cluster most of its frames fall in, its accuracy the share of its frames there.", "",
             "| category | ours | paper |", "| --- | --- | --- |",
             f"| no frames at all | {_names(table4.absent)} | {PAPER_TABLE4['merged with blank']} (their row "
             "'merged with blank') |",
             f"| merged with blank (modal cluster = {blank_cluster}) | "
             f"{_names(table4.merged_with_blank)} | – |",
             f"| often confused (same modal cluster) | "
             f"{', '.join('[' + ', '.join(group) + ']' for group in table4.groups) or '–'} | "
             f"{PAPER_TABLE4['often confused']} |"]
    for index, (name, members) in enumerate(bands):
        paper = PAPER_TABLE4["bands"][index] if len(bands) == len(PAPER_TABLE4["bands"]) else "–"
        lines.append(f"| {name} | {_names(members)} | {paper} |")
    lines += ["", "The paper's 'merged with blank' row is exactly its characters without frames: the authors' "
              "histogram of an absent character is empty and `argmax` of it is cluster 0. We list absent "
              "characters on their own and call a character merged with blank only when most of its frames "
              "share the blank's modal cluster.", "",
              f"Character recognition from the clusters alone (each cluster read as its most frequent non-blank "
              f"label): CER {report['cluster_cer']:.1%} (paper: {PAPER_CLUSTER_CER:.1%}). As the authors' "
              "script, each frame's label is decoded on its own by the tokenizer, so the word delimiter and "
              "<unk> spell nothing, repeats are merged after that (`a|a` reads `a`), and the text, which has no "
              "spaces, is scored against the references with their spaces removed (the scoring is not among the "
              "released scripts; this reading gives 83.4% on the authors' released clusters). The script took "
              "`argmax(distr[1:])` without adding 1 back, naming every cluster after the label before its own; "
              "we decode without that shift. Ours, the word delimiter read as a space before the merge and "
              f"scored against the references with their spaces: CER {report['cluster_cer_spaced']:.1%} "
              "(`tables/table4_cluster_cer.json`).", "",
              f"Extra, the cluster-majority view: {report['majority_blank_clusters']} of {report['k']} pre-trained "
              "clusters have the blank as their majority label (`tables/table4_cluster_majority.json`).", "",
              f"## Table 5: fine-tuned per-character accuracy against {report['table5_reference']}", "",
              f"Reference: {report['table5_reference']}, chosen by {report['table5_rule']} (the paper: its best "
              f"transcriber, T2). Fine-tuned greedy CER: {report['table5'].cer:.1%}. Letters with fewer than "
              f"{report['min_char_frames']} frames (`paper.min_char_frames`) are not grouped: "
              f"{_names(report['table5'].ungrouped)}.", "",
              "| interval | characters | paper |", "| --- | --- | --- |"]
    for index, row in enumerate(report["table5"].groups.itertuples()):
        lines.append(f"| {row.interval} | {row.characters} | {PAPER_TABLE5[index] if index < 3 else '–'} |")
    correlations = report.get("correlations")
    if correlations:
        rows = [("pre-trained vs fine-tuned accuracy", "pre_vs_fine"),
                ("frequency in the fine-tuning data vs fine-tuned CER", "frequency_vs_fine_cer")]
        lines += ["", "## Correlations between per-letter scores", "",
                  f"Over the letters with at least {report['min_char_frames']} frames (`paper.min_char_frames`; "
                  f"left out: {_names(report['rare_characters'])}): with few frames a letter's accuracy is noise, "
                  "and Pearson's r lets one such letter decide its value. The paper's frequency correlation is "
                  "with the fine-tuned model's CER, so a frequent letter recognised better gives a negative r.", "",
                  "| correlation | Pearson r (p) | Spearman r (p) | n | paper (Pearson) |", "|" + " --- |" * 5]
        for title, name in rows:
            if f"{name}_pearson_r" in correlations:
                lines.append(f"| {title} | {correlations[f'{name}_pearson_r']:.2f} "
                             f"({correlations[f'{name}_pearson_p']:.2g}) | {correlations[f'{name}_spearman_r']:.2f} "
                             f"({correlations[f'{name}_spearman_p']:.2g}) | {int(correlations[f'{name}_n'])} | "
                             f"{PAPER_CORRELATIONS[f'{name}_pearson_r']:.2f} |")
        if "multiple_r" in correlations:
            lines.append(f"| both predictors, multiple R (F-test p) | {correlations['multiple_r']:.2f} "
                         f"({correlations['multiple_r_p']:.2g}) | – | {int(correlations['multiple_n'])} | "
                         f"{PAPER_CORRELATIONS['multiple_r']:.2f} |")
        else:
            lines += ["", "No fine-tuning transcripts given (`paper.finetuning_transcripts`): the frequency "
                      "correlations are left out."]
    distances = report.get("distances")
    if distances is not None:
        placement = ("pause frames included, as the authors' released categories (`paper.deletions_on_pauses`)"
                     if report.get("deletions_on_pauses") else
                     "pause frames (the silence split) left out (`paper.deletions_on_pauses`)")
        lines += ["", "## Figure 2: annotators marking a predicted character as a mistake", "",
                  f"A deletion sits on the blank frames between the two predicted characters around it, {placement}. "
                  "Distance: each frame's distance to its own fine-tuned "
                  "K-means centroid divided by its cluster's mean distance (above 1: towards the edge); "
                  "character frames and the blank frames deletions sit on apart.", "",
                  "| category | frames | distance | character frames | distance | blank frames | distance |",
                  "|" + " --- |" * 7]
        for category, row in distances.iterrows():
            cells = [f"{int(row['frames']):,}", f"{row['distance']:.3f}"]
            for part in ("character_", "blank_"):
                if f"{part}frames" in row:
                    cells += [f"{int(row[f'{part}frames']):,}",
                              "–" if pd.isna(row[f"{part}distance"]) else f"{row[f'{part}distance']:.3f}"]
            lines.append(f"| {category} | " + " | ".join(cells) + " |")
        lines += _placements(report.get("distances_by_placement"))
    probe = report.get("probe")
    if probe:
        lines += ["", "## Figure 3: the mistake classifier (test split)", "",
                  "The paper's classifier, trained without class weights (`figures/figure3`): rows are the true "
                  "category, cells the share of the row (test frames).", ""]
        confusion = probe.plain.probe.confusion
        support = confusion.sum(axis=1)
        lines += ["| true \\ predicted | " + " | ".join(confusion.columns) + " | test frames |",
                  "|" + " --- |" * (len(confusion.columns) + 2)]
        for name, row in confusion.iterrows():
            total = support[name]
            cells = [f"{value / total:.0%}" if total else "–" for value in row]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {int(total):,} |")
        small = [str(name) for name, total in support.items() if total < report.get("min_support", 10)]
        if small:
            lines += ["", f"Too few test frames to score (under {report.get('min_support', 10)}): {', '.join(small)}. "
                      "The utterance-level split is stratified by category, so a category in two or more "
                      "utterances reaches the test split, but a rare one brings few frames."]
        lines += ["", "| classifier | balanced accuracy |", "| --- | --- |",
                  f"| probe, no class weights (the paper's) | {probe.plain.probe.balanced_accuracy:.3f} |",
                  f"| probe, balanced class weights (ours, `figures/figure3_balanced`) | "
                  f"{probe.balanced.probe.balanced_accuracy:.3f} |"]
        lines += [f"| {name} baseline (balanced weights) | {scores.balanced_accuracy:.3f} |"
                  for name, scores in probe.balanced.baselines.items()]
        lines += ["", f"Error detection AUROC: probe {probe.auroc['probe_auroc']:.3f}, balanced probe "
                  f"{probe.auroc['probe_balanced_auroc']:.3f}, model confidence (max CTC posterior) "
                  f"{probe.auroc['confidence_auroc']:.3f}."]
    differences = report.get("differences")
    if differences:
        lines += ["", "## What still differs from the paper, and why", ""] + [f"- {line}" for line in differences]
    return "\n".join(lines) + "\n"


def with_uncertainty(row: dict | pd.Series, metric: str, seeds: int = 2) -> str:
    """`0.70 ± 0.01 [0.68, 0.72]`: the mean over K-means seeds, their standard deviation (left out
    for one seed) and the bootstrap interval (each part left out when absent or NaN)."""
    text = f"{row[metric]:.2f}"
    if seeds > 1 and f"{metric}_std" in row and not pd.isna(row[f"{metric}_std"]):
        text += f" ± {row[f'{metric}_std']:.2f}"
    if f"{metric}_low" in row and not pd.isna(row[f"{metric}_low"]):
        text += f" [{row[f'{metric}_low']:.2f}, {row[f'{metric}_high']:.2f}]"
    return text


def p_value_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def uncertainty_summary(table1: pd.DataFrame, table3: pd.DataFrame, tests: pd.DataFrame, design: str,
                        band_changes: pd.DataFrame | None = None, seeds: int = 2) -> str:
    """Tables 1 and 3 with their uncertainty (`with_uncertainty`), the paired tests as sentences to
    paste (`tests`: rows with `comparison`, `metric`, `difference`, `low`, `high`, `p_value`), and
    how many characters change Table 4 band across seeds. `design` says what was resampled and how
    many seeds ran, in words; with one seed (`seeds`) the cells have no ±."""
    lines = ["", "## Uncertainty: K-means seeds and bootstrap intervals", "",
             "Tables 1 and 3 above give the mean over the K-means seeds; here each cell is that mean ± the "
             f"seeds' standard deviation [95% bootstrap interval]; {design}.",
             "", "| table | entry | " + " | ".join(SCORES) + " |", "|" + " --- |" * (2 + len(SCORES))]
    for row in table1.to_dict("records"):
        lines.append(f"| 1 | {row['view']} {row['clustering']} | "
                     + " | ".join(with_uncertainty(row, metric, seeds) for metric in SCORES) + " |")
    for row in table3.to_dict("records"):
        lines.append(f"| 3 | {row['earlier']} vs {row['later']} | "
                     + " | ".join(with_uncertainty(row, metric, seeds) for metric in SCORES) + " |")
    if len(tests):
        lines += ["", "The paper's comparisons as paired bootstrap tests (both clusterings scored under the same "
                  "resamples; p two-sided):", ""]
        lines += [f"- {row.comparison} {row.metric.upper() if row.metric == 'ami' else row.metric} "
                  f"{row.difference:.2f} [{row.low:.2f}, {row.high:.2f}], {p_value_text(row.p_value)}."
                  for row in tests.itertuples()]
    if band_changes is not None:
        moved = sorted(band_changes.index[band_changes["changes"]])
        seeds = sum(column.startswith("seed_") for column in band_changes.columns)
        lines += ["", f"Table 4: {len(moved)} of {len(band_changes)} characters change accuracy band across the "
                  f"{seeds} K-means seeds of the pre-trained view" + (f" ({', '.join(moved)})." if moved else ".")]
    return "\n".join(lines) + "\n"
