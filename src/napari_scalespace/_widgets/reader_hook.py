"""The npe2 reader entry point: the Qt-free readers of :mod:`napari_scalespace.reader`, plus,
for a run's progressive layer, the hook that refreshes it as tiles arrive."""

from __future__ import annotations

from .. import reader
from ._progressive import attach_when_added


def get_reader(path):
    fn = reader.get_reader(path)
    if fn is not reader.read_run:
        return fn
    return read_run


def read_run(path) -> list:
    import napari

    from ._llvm_guard import block_triton_if_unsafe

    block_triton_if_unsafe()
    layers = reader.read_run(path)
    viewer = napari.current_viewer()
    if viewer is not None:
        attach_when_added(viewer, layers[0][0][0])
    return layers
