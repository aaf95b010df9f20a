"""The npe2 reader entry point: the Qt-free readers of :mod:`napari_scalespace.reader`; a run
gets progressive levels (refreshed as tiles arrive) unless napari slices asynchronously, then
plain lazy levels (see :func:`._progressive.napari_async`)."""

from __future__ import annotations

from .. import reader
from ._progressive import attach_when_added, use_progressive


def get_reader(path):
    fn = reader.get_reader(path)
    if fn is not reader.read_run:
        return fn
    return read_run


def read_run(path) -> list:
    import napari

    from ._llvm_guard import block_triton_if_unsafe

    block_triton_if_unsafe()
    progressive = use_progressive()
    layers = [reader.scale_space_layer(path, progressive=progressive)]
    viewer = napari.current_viewer()
    if viewer is not None and progressive:
        attach_when_added(viewer, layers[0][0][0])
    return layers
