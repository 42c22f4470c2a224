"""mmcourse: tested helpers behind the multi-modal deep learning notebooks.

The package follows the lecture's map. Each notebook's task lives under its kind:
matching/ (01, 02, 07), translating/ (03, 04), referencing/ (05, 10), and audio/ holds 06's
signal processing and spoken-language identification. data/ builds the offline datasets.
The modules at the top are shared by every notebook, one concern each: runtime (seeds,
device, profile, paths), training (the shared loop), encoders, retrieval, text (vocabulary),
pretrained (local weights), viz (figures, players), report (results files), files (atomic
writes), course and bench (running and timing the notebooks).
"""
import os

# OpenMP threads that spin while waiting make PyTorch many times slower beside other busy
# processes (README, "Measured speed"). This only takes effect if torch is not imported yet;
# `make` and the course's Jupyter kernel set it before Python starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mmcourse.runtime import Runtime, setup  # noqa: E402

__all__ = ["Runtime", "setup"]
__version__ = "0.1.0"
