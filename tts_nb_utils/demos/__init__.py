"""Notebook miniatures: small, deliberately simple (sometimes deliberately broken) stand-ins for upstream
pipelines, named by the notebook that uses them. Tools never import this package; a user importing a tool
for their own project never meets a demo.

- ``nb02_tiny_vits``: a VITS-like generator and GPT-SoVITS-style training runner (notebook 02), with
  ``nb02_resume`` (upstream's checkpoint files and resume rules) and ``nb02_calibrate`` (per-run gains);
- ``nb03_variance_task``: a DiffSinger-shaped variance task for Lightning (notebook 03);
- ``nb04_toy_model``: a Coqui ``TrainerModel`` and runner for the real Coqui trainer (notebook 04);
- ``nb06_rvc``: Applio's pipeline in miniature, with the buggy and fixed extraction scripts and a local
  model hub on 127.0.0.1, and wget 3.2's file handling (notebooks 06 and 07).
"""
