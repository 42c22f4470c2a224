"""mmcourse: tested helpers behind the multi-modal deep learning notebooks.

One module per concern, so a student can find the one a notebook uses and change it:
runtime (seeds, device, profile, paths), training (the shared loop), text (vocabulary),
viz (figures, players), report (results files), data/ (offline datasets), and one module
per notebook topic.
"""
import os

# OpenMP threads that spin while waiting make PyTorch many times slower beside other busy
# processes (README, "Measured speed"). This only takes effect if torch is not imported yet;
# `make` and the course's Jupyter kernel set it before Python starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mmcourse.runtime import Runtime, setup  # noqa: E402

__all__ = ["Runtime", "setup"]
__version__ = "0.1.0"
