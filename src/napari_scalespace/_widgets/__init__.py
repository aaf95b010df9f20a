"""napari dock widgets: the only package that imports Qt and napari."""
