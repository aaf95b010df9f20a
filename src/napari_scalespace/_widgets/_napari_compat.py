"""Viewer attributes that moved in napari 0.9 (``viewer.camera`` -> ``viewer.scene.camera``,
``viewer.grid`` -> ``viewer.canvas.grid``), found without deprecation warnings on either side."""

from __future__ import annotations


def viewer_camera(viewer):
    try:
        return viewer.scene.camera
    except AttributeError:  # napari < 0.9
        return viewer.camera


def viewer_grid(viewer):
    try:
        return viewer.canvas.grid
    except AttributeError:  # napari < 0.9
        return viewer.grid
