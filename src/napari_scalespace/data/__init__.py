"""Real data for training: image sources, area-resampled patches, the octave schedule and the
patch dataset. Qt- and napari-free.

- :mod:`.sources`: :func:`open_source` -> :class:`ImageSource` (lazy, float32 reads in [0, 1])
- :mod:`.patches`: :func:`cut_patch` / :func:`cut_patches` (exact area resampling, [-1, 1])
- :mod:`.integral`: :class:`IntegralImage` (summed-area table: the same patches in O(R^2))
- :mod:`.sampler`: :class:`OctaveSchedule`, :class:`OctaveSampler` (progressive octaves)
- :mod:`.dataset`: :class:`PatchDataset` -> :class:`Batch`
- :mod:`.samples`: :data:`SAMPLES`, :func:`sample_path` (bundled example images)
"""

from .dataset import Batch, PatchDataset, max_octaves
from .integral import IntegralImage
from .patches import cut_patch, cut_patches
from .sampler import OctaveSampler, OctaveSchedule
from .samples import SAMPLES, sample_path
from .sources import ImageSource, open_source

__all__ = [
    "SAMPLES",
    "Batch",
    "ImageSource",
    "IntegralImage",
    "OctaveSampler",
    "OctaveSchedule",
    "PatchDataset",
    "cut_patch",
    "cut_patches",
    "max_octaves",
    "open_source",
    "sample_path",
]
