"""A small live plot of the training losses (matplotlib on a Qt canvas)."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure


class LossPlot(FigureCanvasQTAgg):
    """Losses against steps; ``add(step, losses)`` appends, ``redraw()`` refreshes."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(4, 2.4), tight_layout=True)
        super().__init__(self.figure)
        self.ax = self.figure.add_subplot(111)
        self.series: dict[str, tuple[list[int], list[float]]] = {}

    def add(self, step: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            xs, ys = self.series.setdefault(name, ([], []))
            xs.append(step)
            ys.append(value)

    def redraw(self) -> None:
        self.ax.clear()
        for name, (xs, ys) in sorted(self.series.items()):
            self.ax.plot(xs, ys, label=name, linewidth=1)
        self.ax.set_xlabel("step")
        self.ax.set_ylabel("loss")
        if self.series:
            self.ax.legend(fontsize=7, loc="upper right")
        self.draw_idle()

    @property
    def points(self) -> int:
        return sum(len(xs) for xs, _ in self.series.values())
