"""Audio: files (load, save), signal helpers (levels, frame RMS, clip checks, a test signal) and mel spectrograms.

The lowest layer beside ``io`` and ``errors``: it imports nothing else from the package. ``mel`` is the only
part that needs torch and is imported on its own (``from tts_nb_utils.audio.mel import mel_spectrogram``);
``decode`` (GPT-SoVITS's ffmpeg decode and its NumPy reproduction) and ``loudness`` (BS.1770) are imported on
their own too, as they need scipy.signal / pyloudnorm.
"""

from .files import AudioReadError, load_audio, save_audio
from .signal import EPS, SILENT_PEAK_DBFS, clip_problems, frame_rms, peak_dbfs, rms_dbfs, speechlike, to_db

__all__ = [
    "EPS",
    "SILENT_PEAK_DBFS",
    "AudioReadError",
    "clip_problems",
    "frame_rms",
    "load_audio",
    "peak_dbfs",
    "rms_dbfs",
    "save_audio",
    "speechlike",
    "to_db",
]
