"""Matching: map two modalities into one space of the same dimension and compare them there.

The lecture's first kind of multi-modal method. One module per notebook:

- `tagging`   notebook 01, image tagging: a joint image-tag space, DeViSE zero-shot tags
- `recipes`   notebook 02, im2recipe: dish images and whole recipes in one space
- `soundnet`  notebook 07, SoundNet: a sound network distilled into a picture network's space
"""
