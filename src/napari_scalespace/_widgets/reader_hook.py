"""The npe2 entry points that add run layers: the reader and the pretrained sample.

Both build the layer data with the Qt-free :mod:`napari_scalespace.reader` and go through
:func:`run_layers`: progressive levels (refreshed as tiles arrive) unless napari slices
asynchronously, then plain lazy levels (see :func:`._progressive.napari_async`); with
progressive levels the current viewer is watched (:func:`._progressive.watch_viewer`) so the
layer napari creates from the data gets its refresher, whichever way it was added.
"""

from __future__ import annotations

from .. import reader


def get_reader(path):
    """Decides without importing torch or Qt (napari calls this for every folder opened)."""
    fn = reader.get_reader(path)
    if fn is not reader.read_run:
        return fn
    return read_run


def run_layers(path, name: str | None = None, **kwargs) -> list:
    """The layer data of run ``path`` for napari, its refresher arranged."""
    import napari

    from ._llvm_guard import block_triton_if_unsafe
    from ._progressive import use_progressive, watch_viewer

    block_triton_if_unsafe()
    progressive = use_progressive()
    levels, layer_kwargs, kind = reader.scale_space_layer(path, progressive=progressive,
                                                          **kwargs)
    if name is not None:
        layer_kwargs["name"] = name
    if progressive:
        watch_viewer(napari.current_viewer())
    return [(levels, layer_kwargs, kind)]


def read_run(path) -> list:
    return run_layers(path)


def pretrained_he() -> list:
    """Sample: the learned scale space of the shipped ``tiny`` run trained on the H&E crop."""
    from ..data.samples import sample_run
    from ..sample_data import PRETRAINED_NAME

    return run_layers(sample_run(), name=PRETRAINED_NAME, device="cpu")
