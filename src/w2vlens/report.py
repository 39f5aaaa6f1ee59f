"""The Markdown summary of `experiment=paper`: each of our numbers beside the paper's."""

from __future__ import annotations

import pandas as pd

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
    "often confused pairs": "[E, J], [F, T], [M, N]",
    "accuracy < 20%": "A, C, D, H, J, L, O, T, Y",
    "accuracy 20–30%": "E, I, M, N, Ö, R, Ä",
    "accuracy ≥ 30%": "B, G, K, P, S, U, V",
}
PAPER_TABLE5 = ["44 – 94%: B, C, D, G, H, N, Å, Ö", "94 – 96%: E, I, J, L, M, O, Y", "96 – 98%: A, K, P, R, S, T, U, V"]
PAPER_CORRELATIONS = {"pre_vs_fine_pearson_r": 0.35, "frequency_vs_fine_pearson_r": 0.38, "multiple_r": 0.52}
PAPER_CLUSTER_CER = 0.834
SCORES = ("ami", "homogeneity", "completeness")


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
                  silence: dict[str, float] | None) -> str:
    """Tables 1-3 as Markdown, each cell `ours (paper)`, plus the silence-split scores."""
    lines = [f"# {title}", "", "Each cell: our value (the paper's value, Grósz et al.).", "",
             "## Table 1: K-means clusters vs the fine-tuned model's pseudo-labels", ""]
    lines += _table(table1, ("view", "clustering"), SCORES, PAPER_TABLE1)
    lines += ["", "## Table 2: K-means on the 2-D coordinates vs K-means on the embeddings", ""]
    lines += _table(table2, ("view", "projection"), tuple(f"projection_{s}" for s in SCORES), PAPER_TABLE2)
    lines += ["", "Neighbourhood scores (no counterpart in the paper):", ""]
    lines += ["| view | projection | trustworthiness | continuity | knn_preservation |", "|" + " --- |" * 5]
    lines += [f"| {r.view} | {r.projection} | {r.trustworthiness:.2f} | {r.continuity:.2f} | {r.knn_preservation:.2f} |"
              for r in table2.itertuples()]
    lines += ["", "## Table 3: clusterings compared between views, and linear CKA of the embeddings", "",
              "Homogeneity: each cluster of the compared view holds frames of one reference cluster; "
              "completeness: each reference cluster stays in one compared cluster.", ""]
    lines += _table(table3, ("reference", "compared"), SCORES, PAPER_TABLE3)
    lines += ["", "| reference | compared | linear CKA |", "| --- | --- | --- |"]
    lines += [f"| {r.reference} | {r.compared} | {r.linear_cka:.2f} |" for r in table3.itertuples()]
    if silence is not None:
        lines += ["", "## Silence split against the known pauses", "",
                  f"precision {silence['precision']:.2f}, recall {silence['recall']:.2f}, F1 {silence['f1']:.2f}"]
    return "\n".join(lines) + "\n"


def characters_summary(report: dict) -> str:
    """Tables 4-5, the correlations and the mistake probe as Markdown, beside the paper's."""
    lines = ["", "## Table 4: characters in the pre-trained clusters", "",
             "| category | ours | paper |", "| --- | --- | --- |"]
    table4 = report["table4"]
    paper_rows = list(PAPER_TABLE4.values())
    for index, row in enumerate(table4.groups.itertuples()):
        lines.append(f"| {row.category} | {row.text} | {paper_rows[index] if index < len(paper_rows) else '–'} |")
    lines += ["", f"Character recognition from the clusters alone: CER {table4.recognition_cer:.1%} "
              f"(paper: {PAPER_CLUSTER_CER:.1%}).", "",
              f"## Table 5: fine-tuned per-character accuracy against {report['table5_reference']}", "",
              f"Fine-tuned greedy CER: {report['finetuned_cer']:.1%}.", "",
              "| interval | characters | paper |", "| --- | --- | --- |"]
    for index, row in enumerate(report["table5"].itertuples()):
        lines.append(f"| {row.interval} | {row.characters} | {PAPER_TABLE5[index] if index < 3 else '–'} |")
    correlations = report.get("correlations")
    if correlations:
        lines += ["", "## Correlations with fine-tuned per-character accuracy", "",
                  "| predictor | Pearson r | Spearman r | paper |", "| --- | --- | --- | --- |",
                  f"| pre-trained accuracy | {correlations['pre_vs_fine_pearson_r']:.2f} | "
                  f"{correlations['pre_vs_fine_spearman_r']:.2f} | 0.35 |",
                  f"| frequency in the fine-tuning data | {correlations['frequency_vs_fine_pearson_r']:.2f} | "
                  f"{correlations['frequency_vs_fine_spearman_r']:.2f} | 0.38 |",
                  f"| both (multiple R) | {correlations['multiple_r']:.2f} | – | 0.52 |"]
    probe = report.get("probe")
    if probe:
        result = probe.result
        lines += ["", "## Figure 3: the mistake probe (test split)", "",
                  "| classifier | balanced accuracy |", "| --- | --- |",
                  f"| probe (MLP) | {result.probe.balanced_accuracy:.3f} |"]
        lines += [f"| {name} baseline | {scores.balanced_accuracy:.3f} |" for name, scores in result.baselines.items()]
        lines += ["", f"Error detection AUROC: probe {probe.auroc['probe_auroc']:.3f}, "
                  f"model confidence (max CTC posterior) {probe.auroc['confidence_auroc']:.3f}."]
    return "\n".join(lines) + "\n"
