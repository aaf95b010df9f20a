"""napari-scalespace: learn a continuous, zoomable scale space from ordinary images.

A multiscale alias-free GAN is trained on an image and rendered at any zoom and position,
shown in napari as a multiscale layer. The core (:mod:`.geometry`, :mod:`.ops`) needs only
numpy and torch; Qt and napari are imported only by the GUI parts of the plugin.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-scalespace")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
