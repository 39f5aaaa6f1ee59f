"""What a pipeline returns: metrics, tables, figures and files, for `tracking.log_result` to log.

Pipelines never touch MLflow; a Result is plain data, so a pipeline can be run and inspected
without a tracking server. Figures are written to the result's scratch folder as they are added
(and closed), so a run with many large scatter plots does not hold them all in memory.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pandas as pd
from matplotlib.figure import Figure

FIGURE_DPI = 200  # the least resolution a run's figures are saved at (print quality)


@dataclass
class Result:
    """`metrics` are logged once, without a step; `curves` (name -> value per step) only where a
    curve is meant, e.g. a score per layer. `tables` and `texts` map artifact paths (`tables/x.json`,
    `summary.md`) to content; `tags` are set on the run. `headline` is what the job returns (the
    sweep's objective). Files (figures, audio, frame tables) live under `folder`, laid out as the
    run's artifacts."""

    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    headline: dict[str, float] = field(default_factory=dict)
    _folder: Path | None = field(default=None, repr=False)

    @property
    def folder(self) -> Path:
        """The scratch folder of the result's files (created on first use; `cleanup` removes it)."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="w2vlens-result-"))
        return self._folder

    def file(self, artifact_path: str) -> Path:
        """Where to write the file that becomes artifact `artifact_path` (its folder exists)."""
        path = self.folder / artifact_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def __enter__(self) -> Result:
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, trace: TracebackType | None) -> None:
        """A pipeline that fails inside `with Result() as result:` leaves no scratch files behind."""
        if kind is not None:
            self.cleanup()

    def add_figure(self, artifact_path: str, figure: Figure, formats: tuple[str, ...] = ("png",)) -> None:
        """Saves `figure` as `artifact_path` + each extension (e.g. png and pdf) at `FIGURE_DPI` at
        least, whatever resolution the figure was drawn at, then closes it."""
        import matplotlib.pyplot as plt

        for extension in formats:
            figure.savefig(self.file(f"{artifact_path}.{extension}"), dpi=max(figure.dpi, FIGURE_DPI))
        plt.close(figure)

    def add_curve(self, name: str, step: int, value: float) -> None:
        self.curves.setdefault(name, {})[step] = float(value)

    def files(self) -> list[str]:
        """The artifact paths of the files written so far."""
        if self._folder is None:
            return []
        return sorted(str(p.relative_to(self._folder)) for p in self._folder.rglob("*") if p.is_file())

    def cleanup(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
