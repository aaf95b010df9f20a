"""Signal-processing ops of the alias-free generator, each with ``impl="ref" | "fast" | "auto"``.

``ref`` is the readable specification; ``fast`` is the CPU path; ``auto`` picks the best for the
tensor's device (see :mod:`.dispatch`).
"""

from .bias_act import bias_act
from .filtered_lrelu import filtered_lrelu
from .filters import lowpass_filter
from .upfirdn2d import upfirdn2d

__all__ = ["bias_act", "filtered_lrelu", "lowpass_filter", "upfirdn2d"]
