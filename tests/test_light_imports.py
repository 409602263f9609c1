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
