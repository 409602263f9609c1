"""Bad input to the data commands: a clear error naming the value, never a traceback, and no input byte changed.
Names that are not UTF-8 or too long for the file system, IN and OUT that overlap, nan and out-of-range values,
and a killed run's leftovers."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import soundfile as sf

from tts_nb_utils.cli import main

SR = 16000


def _take(seconds=4.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0)).astype("float32")


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def takes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "ok.wav", _take(), SR)
    with open(os.fsencode(folder) + b"/bad\xff\xfename.wav", "wb") as f:  # a name that is not valid UTF-8
        sf.write(f, _take(), SR, format="WAV")
    sf.write(folder / ("x" * 250 + ".wav"), _take(), SR)  # clips and state files named after it are too long
    return folder


def test_prepare_goes_past_odd_names_and_writes_its_reports(takes, tmp_path, capsys):
    before = _digest(takes)
    out = tmp_path / "out"
    assert main(["prepare", str(takes), str(out), "-q", "--no-denoise"]) == 1  # one source failed: exit 1
    printed = capsys.readouterr().out
    assert "a file name would be too long for this file system" in printed
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    sources = {e["source"] for e in manifest}
    assert "ok.wav" in sources and any(s.startswith("bad") for s in sources)
    assert (out / "report.md").is_file() and _digest(takes) == before
    assert main(["validate", str(takes), "--csv", str(tmp_path / "rows.csv"), "-q"]) == 0
    rows = (tmp_path / "rows.csv").read_text()
    assert "bad\\udcff\\udcfename.wav" in rows and "unreadable" not in rows.split("bad", 1)[1].split("\n", 1)[0]


def test_a_rerun_cleans_a_killed_runs_leftovers_and_clips_from_other_settings(takes, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["prepare", str(takes), str(out), "-q", "--no-denoise", "--min-length", "1000"]) == 1
    first = set((out / "clips").iterdir())
    leftovers = [out / ".prepare" / ".ok.wav.abc.part.json", out / ".manifest.x1.part.jsonl",
                 out / ".durations.x2.part.png", out / "clips" / ".ok_1.x3.part.wav"]
    for p in leftovers:
        p.write_text("half")
    assert main(["prepare", str(takes), str(out), "-q", "--no-denoise", "--min-length", "3000"]) == 1
    assert not any(p.exists() for p in leftovers)
    listed = {out / json.loads(line)["path"] for line in (out / "manifest.jsonl").read_text().splitlines()}
    assert set((out / "clips").glob("*.wav")) == listed and first - listed, "stale clips must be removed"
    assert "removed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["validate", "{in}", "--silent-peak", "nan"], "--silent-peak: 'nan' is not a finite number"),
        (["validate", "{in}", "--clip-fraction", "0"], "--clip-fraction 0.0: give a fraction above 0"),
        (["validate", "{in}", "--sample-rate", "0"], "--sample-rate: '0' is not a sample rate in Hz from 1000 to 768000"),
        (["validate", "{in}", "--min-duration", "-1"], "--min-duration -1.0: give 0 or more seconds"),
        (["prepare", "{in}", "{out}", "--prop-decrease", "nan"], "--prop-decrease: 'nan' is not a number from 0 to 1"),
        (["prepare", "{in}", "{out}", "--level", "nan"], "--level: 'nan' is not a level in dBFS"),
        (["slice", "{in}", "{out}", "--alpha", "2"], "--alpha: '2' is not a number from 0 to 1"),
        (["denoise", "{in}/ok.wav", "{in}/ok.wav"], "is an input"),
        (["denoise", "{in}", "{in}/out"], "is inside the input folder"),
        (["prepare", "{in}", "{in}/out"], "is inside the input folder"),
    ],
)
def test_bad_values_and_overlapping_folders_are_usage_errors_and_touch_nothing(takes, tmp_path, capsys, args, message):
    before = _digest(takes)
    argv = [a.format(**{"in": str(takes), "out": str(tmp_path / "out")}) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert _digest(takes) == before and not (takes / "out").exists()
