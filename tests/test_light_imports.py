"""The data and config tools stay light: importing them (or asking ``tts-nb validate`` for help) loads no torch.

A user who checks recordings or a DiffSinger config before training should not wait for torch, Lightning or
the Coqui trainer to import. Each check runs in a fresh interpreter, so nothing imported by other tests counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "lightning", "trainer")

PROBE = """
import contextlib, io, json, sys
target = sys.argv[1]
if target == "tts-nb validate --help":
    from tts_nb_utils.cli import main
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(["validate", "--help"])
    origin = sys.modules["tts_nb_utils.cli.dataprep"].__file__
else:
    __import__(target)
    origin = sys.modules[target].__file__
print(json.dumps({"origin": origin, "loaded": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def _loaded_after(target: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", PROBE, target], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "target",
    [
        "tts_nb_utils.dataprep.validate",
        "tts_nb_utils.dataprep.presets",
        "tts_nb_utils.dataprep.prepare",
        "tts_nb_utils.upstream.diffsinger",
        "tts_nb_utils.upstream.diffsinger_check",
        "tts_nb_utils.upstream.gpt_sovits",
        "tts-nb validate --help",
    ],
)
def test_importing_loads_no_torch_lightning_or_trainer(target):
    result = _loaded_after(target)
    assert result["origin"].startswith(str(ROOT)), f"imported {result['origin']}, not this checkout"
    assert "tts_nb_utils" in result["loaded"]
    heavy = [name for name in HEAVY if name in result["loaded"]]
    assert not heavy, f"{target} imports {', '.join(heavy)}"


def test_validation_loads_no_scipy():
    """The loudness filter runs in NumPy: ``tts-nb validate --jobs`` workers do not each import scipy.signal."""
    assert "scipy" not in _loaded_after("tts_nb_utils.dataprep.validate")["loaded"]


CLI_PROBE = """
import contextlib, io, json, sys
from tts_nb_utils.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _cli_modules(*argv: str) -> tuple[int, list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", CLI_PROBE, *argv], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["code"], result["modules"]


@pytest.mark.parametrize("command", ["validate", "slice", "doctor", "lr-plan", "check-config", "sovits-log"])
def test_a_command_loads_only_its_own_command_module(command):
    from tts_nb_utils.cli import COMMAND_MODULES

    code, modules = _cli_modules(command, "--help")
    (own,) = [m for m, commands in COMMAND_MODULES.items() if command in commands]
    assert code == 0 and own in modules
    assert not [m for m in COMMAND_MODULES if m != own and m in modules]


def test_top_level_help_lists_every_command_and_loads_no_torch():
    code, modules = _cli_modules("--help")
    assert code == 0 and "torch" not in modules


def test_doctor_on_an_audio_folder_and_a_diffsinger_config_loads_no_torch(tmp_path):
    import numpy as np
    import soundfile as sf

    (tmp_path / "wavs").mkdir()
    sf.write(str(tmp_path / "wavs" / "a.wav"), (0.1 * np.sin(np.arange(32000) / 7)).astype(np.float32), 32000)
    (tmp_path / "acoustic.yaml").write_text("task_cls: training.acoustic_task.AcousticTask\nuse_energy_embed: true\n")
    code, modules = _cli_modules("doctor", str(tmp_path / "wavs"), str(tmp_path / "acoustic.yaml"))
    assert code in (0, 1) and {"tts_nb_utils.doctor.check_audio", "tts_nb_utils.doctor.check_diffsinger"} <= set(modules)
    assert "torch" not in modules and "tts_nb_utils.doctor.check_coqui" not in modules
