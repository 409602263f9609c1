"""Dataset preparation for TTS and voice cloning (notebook 01): validate, denoise, slice, normalise, prepare.

One module per step: :mod:`.validate` (issue codes per file), :mod:`.denoise` (noisereduce spectral gating),
:mod:`.slicer` (the audio-slicer algorithm GPT-SoVITS uses), :mod:`.normalize` (GPT-SoVITS's level mix, safe
for silent clips), :mod:`.prepare` (the whole pipeline into a clip folder with manifest and report), :mod:`.presets` (the clips
GPT-SoVITS's or audio-slicer's own scripts write, with a ``.list``) and
:mod:`tts_nb_utils.cli.dataprep` (``tts-nb validate|denoise|slice|prepare``).
"""
