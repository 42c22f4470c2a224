"""Referencing (reasoning): one modality consults the other while it produces its output.

The lecture's third kind of multi-modal method. One module per notebook:

- `vqa`           notebook 05, visual question answering: image and question fused, then answered
- `localization`  notebook 10, sound source localisation: the sound looks for its place in the picture
- `separation`    notebook 11, audio-visual speech separation: each face pulls its voice out of a mixture
"""
