"""A small live plot of one run's training losses (matplotlib on a Qt canvas)."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

MIN_HEIGHT = 200  # px: the axes, their labels and a legend stay readable in a squeezed dock


class LossPlot(FigureCanvasQTAgg):
    """Losses against steps of one run: ``start_run(title)`` clears it, ``add(step, losses)``
    appends, ``redraw()`` refreshes."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(4, 2.4), tight_layout=True)
        super().__init__(self.figure)
        self.setMinimumHeight(MIN_HEIGHT)
        self.ax = self.figure.add_subplot(111)
        self.series: dict[str, tuple[list[int], list[float]]] = {}
        self.title = ""

    def start_run(self, title: str) -> None:
        """A new run: the curves of the previous one are dropped (steps restart, and joining
        two runs' losses into one line would draw a curve no run had)."""
        self.series = {}
        self.title = title
        self.redraw()

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
        if self.title:
            self.ax.set_title(self.title, fontsize=8)
        if self.series:
            self.ax.legend(fontsize=7, loc="upper right")
        self.draw_idle()

    @property
    def points(self) -> int:
        return sum(len(xs) for xs, _ in self.series.values())
