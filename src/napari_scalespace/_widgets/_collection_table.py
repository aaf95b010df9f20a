"""The Train widget's collection section: image layers at different pixel sizes.

Ticking two or more image layers makes a collection. Each ticked layer's pixel size is read
from its ``scale`` (x axis) and ``units`` (napari's default unit, "pixel", reads as unitless)
and shown in an editable table, with the zoom range each image gets and, when the images leave
zooms without data, the reason (:meth:`.Collection.check`), before anything trains.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..data.collection import Collection
from ..data.pixel_size import PixelSize, parse_pixel_size
from ..data.sources import open_source
from ._run_image import layer_image

__all__ = ["CollectionTable", "layer_pixel_size"]

COLUMNS = ["layer", "pixel size", "unit", "zooms"]


def layer_pixel_size(layer) -> PixelSize:
    """A napari layer's pixel size: ``scale`` and ``units`` of its x axis."""
    units = getattr(layer, "units", None)
    unit = str(units[-1]) if units is not None else None
    return PixelSize(float(layer.scale[-1]), unit)


class CollectionTable(QWidget):
    """Tick image layers; edit their pixel sizes; see their zoom ranges and problems."""

    def __init__(self, layers_fn, resolution_fn, octaves_fn, on_change=None) -> None:
        """``layers_fn()``: the image layers to offer; ``resolution_fn()``, ``octaves_fn()``:
        the view size and octaves with data (0 = all the collection spans) the coverage is
        checked for; ``on_change(active)`` after every change."""
        super().__init__()
        self._layers_fn, self._resolution_fn, self._octaves_fn = (layers_fn, resolution_fn,
                                                                  octaves_fn)
        self._on_change = on_change
        self.layer_list = QListWidget()
        self.layer_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.layer_list.setMaximumHeight(80)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setMaximumHeight(175)
        self.message = QLabel("tick two or more image layers to train on them as one "
                              "collection (unregistered images at different pixel sizes)")
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("collection (several magnifications):"))
        layout.addWidget(self.layer_list)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        self._sizes: dict[str, tuple[str, str]] = {}  # layer name -> (value, unit) as edited
        self._filling = False
        self.layer_list.itemChanged.connect(lambda _item: self.refresh_table())
        self.table.itemChanged.connect(self._edited)
        self.reset_layers()

    # -- layers -----------------------------------------------------------------------------------
    def reset_layers(self) -> None:
        """Re-list the viewer's image layers, keeping ticks by name."""
        ticked = set(self.ticked_names())
        self.layer_list.blockSignals(True)
        self.layer_list.clear()
        for layer in self._layers_fn():
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if layer.name in ticked
                               else Qt.CheckState.Unchecked)
            self.layer_list.addItem(item)
        self.layer_list.blockSignals(False)
        self.refresh_table()

    def ticked_names(self) -> list[str]:
        return [self.layer_list.item(i).text() for i in range(self.layer_list.count())
                if self.layer_list.item(i).checkState() == Qt.CheckState.Checked]

    def set_ticked(self, names: list[str]) -> None:
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names
                               else Qt.CheckState.Unchecked)

    def _layers(self) -> list:
        names = self.ticked_names()
        return [layer for layer in self._layers_fn() if layer.name in names]

    # -- the table --------------------------------------------------------------------------------
    def refresh_table(self) -> None:
        layers = self._layers()
        self._filling = True
        self.table.setRowCount(len(layers))
        for row, layer in enumerate(layers):
            if layer.name not in self._sizes:
                size = layer_pixel_size(layer)
                self._sizes[layer.name] = (f"{size.value:g}", size.unit or "")
            value, unit = self._sizes[layer.name]
            for col, text in enumerate([layer.name, value, unit, ""]):
                item = QTableWidgetItem(text)
                if col in (0, 3):
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, col, item)
        self._filling = False
        self.validate()

    def _edited(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() not in (1, 2):
            return
        name = self.table.item(item.row(), 0).text()
        value = self.table.item(item.row(), 1).text()
        unit = self.table.item(item.row(), 2).text()
        self._sizes[name] = (value, unit)
        self.validate()

    def set_pixel_size(self, name: str, value: str, unit: str) -> None:
        """Edit one row as a user would (tests, scripts)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == name:
                self.table.item(row, 2).setText(unit)
                self.table.item(row, 1).setText(value)
                return
        raise ValueError(f"{name} is not ticked")

    def pixel_sizes(self) -> list[PixelSize]:
        """The ticked layers' pixel sizes as shown (ValueError naming a bad row)."""
        out = []
        for layer in self._layers():
            value, unit = self._sizes[layer.name]
            try:
                out.append(parse_pixel_size(f"{value} {unit}".strip()))
            except ValueError as e:
                raise ValueError(f"{layer.name}: {e}") from None
        return out

    @property
    def active(self) -> bool:
        """Whether the ticked layers make a collection (two or more)."""
        return len(self.ticked_names()) >= 2

    def entries(self) -> list[tuple]:
        """``(data, name, PixelSize, path or None)`` per ticked layer, for training."""
        sizes = self.pixel_sizes()
        return [(layer_image(layer), layer.name, size, getattr(layer.source, "path", None))
                for layer, size in zip(self._layers(), sizes, strict=True)]

    def validate(self) -> bool:
        """Show each image's zoom range, or what is wrong; True when it can train."""
        if self._on_change is not None:
            self._on_change(self.active)
        self.table.setVisible(self.active)  # room for the loss plot until it is needed
        if not self.active:
            self.message.setText("tick two or more image layers to train on them as one "
                                 "collection (unregistered images at different pixel sizes)")
            return False
        r, octaves = self._resolution_fn(), self._octaves_fn()
        try:
            layers = self._layers()
            sources = [open_source(layer.data, name=layer.name) for layer in layers]
            collection = Collection(sources, self.pixel_sizes())
        except ValueError as e:
            self.message.setText(f"error: {e}")
            return False
        self._filling = True
        for row, (lo, hi) in enumerate(collection.zoom_ranges(r)):
            self.table.item(row, 3).setText(f"{lo:.2f} - {hi:.2f}")
        self._filling = False
        try:
            collection.check(octaves if octaves > 0 else collection.max_octaves(r), r)
        except ValueError as e:
            self.message.setText(f"error: {e}")
            return False
        overview = collection.names[collection.reference]
        self.message.setText(f"zoom 0 = {overview} (largest field of view); data up to zoom "
                             f"{collection.span(r):.2f} at {r} px")
        return True
