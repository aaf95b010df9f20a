"""What the three dock widgets share about their size: the form scrolls, so that the three docks,
stacked in napari's right dock area, fit a 1280 x 800 screen.

A dock's minimum height is its contents' minimum height unless they sit in a scroll area;
napari stacks the docks' minimum heights and grows the window past the screen when they add up
to more than it has. Inside a :class:`QScrollArea` a dock asks for little height and scrolls
when squeezed; it still asks for its contents' full width, so nothing is cut off at the sides."""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


class _VerticalScroll(QScrollArea):
    """Scrolls up and down only: as wide as its contents need, plus the scroll bar."""

    def _width(self) -> int:
        content = self.widget()
        return (content.minimumSizeHint().width() + 2 * self.frameWidth()
                + self.verticalScrollBar().sizeHint().width())

    def minimumSizeHint(self) -> QSize:
        return QSize(self._width(), super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(self._width(), super().sizeHint().height())


class ScrollableDock(QWidget):
    """A dock widget whose contents (``self.body``, a vertical layout of ``self.content``)
    scroll vertically."""

    def __init__(self) -> None:
        super().__init__()
        self.content = QWidget()
        self.body = QVBoxLayout(self.content)
        self.scroll = _VerticalScroll()
        self.scroll.setWidget(self.content)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll)
