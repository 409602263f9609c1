"""Atomic outputs: a failed write leaves nothing behind; a finished one has ordinary permissions."""

from __future__ import annotations

import os

import pytest

from tts_nb_utils.io import atomic_path, atomic_write_json, atomic_write_text


def test_failed_write_leaves_no_file_and_no_temp(tmp_path):
    dest = tmp_path / "out.wav"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_old_file(tmp_path):
    dest = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("new")
            raise RuntimeError
    assert dest.read_text() == "old"


def test_temp_keeps_suffix_for_format_inference(tmp_path):
    with atomic_path(tmp_path / "clip.flac") as tmp:
        assert tmp.suffix == ".flac" and tmp.name.startswith(".") and ".part" in tmp.name
        tmp.write_bytes(b"x")
    assert (tmp_path / "clip.flac").read_bytes() == b"x"


def test_json_and_permissions(tmp_path):
    p = atomic_write_json(tmp_path / "sub" / "r.json", {"a": 1})
    assert p.read_text().strip() == '{\n  "a": 1\n}'
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)
