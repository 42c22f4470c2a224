"""Notebook 06's exercises as measured changes (`python -m mmcourse.exercises 06`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant, beyond_spread, within_spread

HELPERS = '''
def _validation_accuracy(domain):
    data = (human if domain == "human" else synthetic)["validation"]
    return probes[domain, "MFCC"].score(data[0], data[2])


def _window_lobes(bins_out=None):
    # the window's own spectrum (section 3), in dB below its peak, on a fine grid of FFT bins
    spectrum = db_spectrum(af.hamming_window(N), fine)
    at = torch.fft.rfftfreq(fine, 1 / N)
    if bins_out is not None:
        return spectrum[(at >= bins_out) & (at < bins_out + 1)].max()
    first_null = int((spectrum.diff() > 0).nonzero()[0])   # where the main lobe ends
    return spectrum[first_null:].max()
'''
HUMAN, ESPEAK = "recordings set accuracy, pooled MFCC (validation)", "espeak control accuracy, pooled MFCC (validation)"
MEASURES = {
    HUMAN: "_validation_accuracy('human')",
    ESPEAK: "_validation_accuracy('espeak')",
    "highest side lobe of af.hamming_window (dB)": "_window_lobes()",
    "side lobes 15 bins out (dB)": "_window_lobes(15)",
    "side lobes 31 bins out (dB)": "_window_lobes(31)",
    "STFT max error vs torch.stft (rel.)": "stft_error",
    "log-mel max error vs torchaudio (rel.)": "logmel_error",
    "MFCC max error vs torchaudio (rel.)": "mfcc_error",
}
ACCURACY = (HUMAN, ESPEAK)
FEATURES = "mmcourse/audio/features.py"
POOLED = "    return pooled_mfcc(wave, sample_rate), waveform_stats(wave, sample_rate)\n"

VARIANTS = [
    Variant(1, "Hann window", (Change(FEATURES, "return 0.54 - 0.46 * torch.cos(2 * math.pi * k / N)",
                                      "return 0.5 - 0.5 * torch.cos(2 * math.pi * k / N)"),),
            ("highest side lobe of af.hamming_window (dB)", "side lobes 15 bins out (dB)",
             "side lobes 31 bins out (dB)", "STFT max error vs torch.stft (rel.)"), "stft_error = "),
    Variant(2, "Slaney mel scale and norm", (Change(FEATURES,
            "                        sample_rate, dtype=power.dtype, device=power.device)   # [K, n_mels]",
            "                        sample_rate, mel_scale=\"slaney\", norm=\"slaney\", dtype=power.dtype,\n"
            "                        device=power.device)"),),
            ACCURACY + ("log-mel max error vs torchaudio (rel.)",)),
    Variant(3, "deltas pooled too", (Change(FEATURES,
            "    return torch.cat([c.mean(dim=-1), c.std(dim=-1)], dim=-1)\n",
            "    d = c.diff(dim=-1)\n"
            "    return torch.cat([c.mean(dim=-1), c.std(dim=-1), d.mean(-1), d.std(-1)], dim=-1)\n"),), ACCURACY),
    Variant(4, "n_mfcc=5", (Change("mmcourse/audio/language_id.py", POOLED,
            "    return pooled_mfcc(wave, sample_rate, n_mfcc=5), waveform_stats(wave, sample_rate)\n"),), ACCURACY),
    Variant(4, "n_mfcc=40", (Change("mmcourse/audio/language_id.py", POOLED,
            "    return pooled_mfcc(wave, sample_rate, n_mfcc=40), waveform_stats(wave, sample_rate)\n"),), ACCURACY),
    Variant(4, "win_ms=100", (Change("mmcourse/audio/language_id.py", POOLED,
            "    return pooled_mfcc(wave, sample_rate, win_ms=100), waveform_stats(wave, sample_rate)\n"),), ACCURACY),
    Variant(5, "power law instead of dB", (Change(FEATURES,
            '    return amplitude_to_db(mel, "power", top_db=top_db)\n',
            '    return mel.clamp(min=0) ** 0.3\n'),),
            ("log-mel max error vs torchaudio (rel.)", "MFCC max error vs torchaudio (rel.)"), "mfcc_error = "),
    Variant(6, "one espeak-ng voice per language", (Change("mmcourse/audio/language_id.py",
            "        wave, sr = synthesize(row[\"text\"], voice=row[\"lang\"], variant=str(rng.choice(VARIANTS)),\n"
            "                              pitch=int(rng.integers(*PITCH)), speed=int(rng.integers(*SPEED)))\n",
            "        wave, sr = synthesize(row[\"text\"], voice=row[\"lang\"],\n"
            "                              variant=dict(zip(LANGS, [\"m1\", \"f2\", \"m3\", \"f4\", \"klatt\", \"croak\"]))[row[\"lang\"]])\n"),),
            ACCURACY),
]
LOBE, LOBE_15 = "highest side lobe of af.hamming_window (dB)", "side lobes 15 bins out (dB)"
PARITY = 1e-4  # what the notebook's parity checks allow (section 9)


CLAIMS = [
    ExerciseClaim("the Hann window's highest side lobe is higher than Hamming's", 1,
                  f"Hann window: {LOBE}", ">", f"unchanged: {LOBE}"),
    ExerciseClaim("15 bins out, the Hann window's side lobes are lower than Hamming's", 1,
                  f"Hann window: {LOBE_15}", "<", f"unchanged: {LOBE_15}"),
    ExerciseClaim("with a Hann window the STFT no longer matches torch.stft", 1,
                  "Hann window: STFT max error vs torch.stft (rel.)", ">", PARITY),
    ExerciseClaim("with Slaney's filters the log-mel no longer matches torchaudio's", 2,
                  "Slaney mel scale and norm: log-mel max error vs torchaudio (rel.)", ">", PARITY),
    beyond_spread("with Slaney's filters the espeak control's accuracy rises by more than the seeds differ", 2,
                  "Slaney mel scale and norm", ESPEAK, ">"),
    beyond_spread("with deltas the espeak control's accuracy rises by more than the seeds differ", 3,
                  "deltas pooled too", ESPEAK, ">"),
    beyond_spread("with deltas the human sets' accuracy falls by more than the seeds differ", 3,
                  "deltas pooled too", HUMAN, "<"),
    beyond_spread("with 5 coefficients the human sets' accuracy falls by more than the seeds differ", 4, "n_mfcc=5", HUMAN, "<"),
    beyond_spread("with 5 coefficients the espeak control's accuracy falls by more than the seeds differ", 4,
                  "n_mfcc=5", ESPEAK, "<"),
    within_spread("with 40 coefficients the human sets' accuracy moves by less than the seeds differ", 4, "n_mfcc=40", HUMAN),
    within_spread("with 40 coefficients the espeak control's accuracy moves by less than the seeds differ", 4,
                  "n_mfcc=40", ESPEAK),
    within_spread("with 100 ms windows the human sets' accuracy moves by less than the seeds differ", 4, "win_ms=100", HUMAN),
    ExerciseClaim("with a power law the log-mel no longer matches torchaudio's", 5,
                  "power law instead of dB: log-mel max error vs torchaudio (rel.)", ">", PARITY),
    ExerciseClaim("with a power law the MFCC no longer matches torchaudio's", 5,
                  "power law instead of dB: MFCC max error vs torchaudio (rel.)", ">", PARITY),
    beyond_spread("with one voice per language the espeak control's accuracy rises by more than the seeds differ", 6,
                  "one espeak-ng voice per language", ESPEAK, ">"),
    ExerciseClaim("with one voice per language espeak-ng is told apart as well as the volunteers' recordings", 6,
                  "one espeak-ng voice per language: " + ESPEAK, ">", "unchanged: " + HUMAN, margin=-0.05),
]
