"""Audio basics: how a waveform becomes features a network can use (notebook 06).

- `features`     framing, Hamming window, STFT, mel filterbank, log-mel, MFCC, written by hand
- `language_id`  one clip format, leak-free splits, the espeak-ng control, a linear probe
"""
