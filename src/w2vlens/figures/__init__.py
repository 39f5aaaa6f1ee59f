"""Every figure w2vlens draws, as matplotlib Figures for the caller to save: `projections`
(2-D maps coloured by label, cluster or metadata; Figure 1), `errors` (Figures 2-3: annotator
agreement on the map, the mistake classifier's confusion) and `scores` (contingency heatmaps,
Tables 1-3 as bars, Table 1's intervals as a forest plot, scores by layer, a sweep's runs side by
side). The backend is the entry point's choice (`w2vlens.runtime`)."""

from w2vlens.figures.errors import agreement_projection, confusion_figure
from w2vlens.figures.projections import projection_panels
from w2vlens.figures.scores import contingency_heatmap, forest_plot, layer_curves, paper_scores, sweep_comparison

__all__ = ["agreement_projection", "confusion_figure", "contingency_heatmap", "forest_plot", "layer_curves",
           "paper_scores", "projection_panels", "sweep_comparison"]
