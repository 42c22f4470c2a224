"""Translating: turn one modality into the form of another and use it there.

The lecture's second kind of multi-modal method. One module per notebook:

- `captioning`     notebook 03, image captioning: Show and Tell, Show, Attend and Tell
- `text_to_image`  notebook 04, text-to-image: a matching-aware conditional GAN
"""
