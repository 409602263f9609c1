"""Property-based tests (hypothesis): the validator, the config loader and the log reader never crash on odd
input; they return a row, a clear error or a skipped line, and they keep their own invariants."""

from __future__ import annotations

import math

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tts_nb_utils.dataprep.validate import CODES, ValidationConfig, check_signal, validate_file
from tts_nb_utils.upstream.diffsinger import ConfigError, load_config
from tts_nb_utils.upstream.gpt_sovits import (
    SovitsLogError,
    decode_sovits_log,
    format_sovits_log,
    scan_sovits_log,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(
    samples=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=3000),
    sr=st.sampled_from([8000, 16000, 22050, 44100]),
)
def test_check_signal_never_raises_and_only_uses_known_codes(samples, sr):
    issues, metrics = check_signal(np.asarray(samples, dtype=np.float32).reshape(-1, 1), sr, ValidationConfig())
    assert set(issues) <= set(CODES)
    assert metrics.peak_dbfs is None or not math.isnan(metrics.peak_dbfs)


@FAST
@given(data=st.binary(max_size=400))
def test_validate_file_turns_any_bytes_into_a_row(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("v") / "x.wav"
    path.write_bytes(data)
    row = validate_file(path)
    assert row.path.endswith("x.wav") and set(row.issues) <= set(CODES)
    assert row.issues == ["unreadable"] or row.error is None


@FAST
@given(
    y=st.lists(st.floats(-1, 1, width=32), min_size=1, max_size=2000),
    sr=st.sampled_from([16000, 22050]),
)
def test_validate_file_agrees_with_check_signal(tmp_path_factory, y, sr):
    path = tmp_path_factory.mktemp("w") / "y.wav"
    x = np.asarray(y, dtype=np.float32)
    sf.write(path, x, sr, subtype="FLOAT")
    issues, _ = check_signal(x.reshape(-1, 1), sr, ValidationConfig())
    assert validate_file(path).issues == issues


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(min_size=1, max_size=6), inner, max_size=3), max_leaves=12)


@FAST
@given(text=st.text(max_size=300))
def test_config_loader_loads_or_says_why(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("c") / "config.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        loaded = load_config(path)
    except ConfigError as e:
        assert str(path.name) in str(e) or "base_config" in str(e)
    else:
        assert isinstance(loaded.data, dict) and loaded.chain[-1] == path.resolve()


@FAST
@given(mapping=st.dictionaries(st.text(alphabet="abcdefghij_", min_size=1, max_size=8), yaml_values, max_size=6))
def test_config_loader_round_trips_mappings(tmp_path_factory, mapping):
    import yaml

    path = tmp_path_factory.mktemp("m") / "config.yaml"
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")  # "{}" for an empty mapping: a valid config
    assert load_config(path).data == mapping


@FAST
@given(line=st.text(max_size=200))
def test_log_decoder_decodes_or_raises_its_own_error(line):
    try:
        entry = decode_sovits_log(line)
    except SovitsLogError:
        return
    assert entry.global_step >= 0 and entry.lr > 0


@FAST
@given(
    losses=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=6, max_size=6),
    step=st.integers(0, 10**7),
    epoch=st.integers(0, 5000),
)
def test_log_lines_round_trip_and_the_scan_counts_nan(tmp_path_factory, losses, step, epoch):
    lr = 1e-4 * 0.999875**epoch
    text = format_sovits_log(losses, step, lr, epoch=epoch)
    log = tmp_path_factory.mktemp("l") / "train.log"
    log.write_text(text + "\n" + "garbage line\n")
    scan = scan_sovits_log(log)
    assert len(scan.entries) == 1 and scan.problems == []
    entry = scan.entries[0]
    assert entry.global_step == step and entry.logged_epoch == epoch
    assert entry.finite == all(math.isfinite(v) for v in losses)
    assert scan.nonfinite_count == (0 if entry.finite else 1)
