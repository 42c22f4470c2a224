"""Offline datasets: Tux Paint stamps, composed scenes, easy-VQA, espeak-ng speech, splits.

Each loader builds its `datasets.Dataset` once, caches it atomically under `.cache/` and
reloads it in milliseconds afterwards.
"""
from mmcourse.data.audio_io import load_audio
from mmcourse.data.cache import cached_dataset
from mmcourse.data.easyvqa import load_easy_vqa
from mmcourse.data.splits import split_by_group
from mmcourse.data.tuxpaint import load_spoken_descriptions, load_stamps

__all__ = ["cached_dataset", "load_audio", "load_easy_vqa", "load_spoken_descriptions",
           "load_stamps", "split_by_group"]
