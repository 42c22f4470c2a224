"""mmcourse: tested helpers behind the multi-modal deep learning notebooks.

One module per concern, so a student can find the one a notebook uses and change it:
runtime (seeds, device, profile, paths), training (the shared loop), text (vocabulary),
viz (figures, players), report (results files), data/ (offline datasets), and one module
per notebook topic.
"""
from mmcourse.runtime import Runtime, setup

__all__ = ["Runtime", "setup"]
__version__ = "0.1.0"
