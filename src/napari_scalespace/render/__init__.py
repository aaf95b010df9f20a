"""Rendering learned scale spaces: views, tiles, lazy pyramids, OME-Zarr export."""
