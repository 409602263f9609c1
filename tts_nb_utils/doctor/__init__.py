"""``tts-nb doctor``: one preflight over a user's own project (notebook 08, ``08_doctor_preflight.ipynb``).

``kinds`` recognises each path by its contents (an audio folder, a GPT-SoVITS experiment, a DiffSinger config
or experiment, a Coqui run, an Applio model folder, a Dia training config); one ``check_*`` module per kind runs
the project's existing tools on it; ``report`` turns the findings into one Markdown and JSON report. Nothing
here re-implements a check: each module is a thin adapter from a tool's result to :class:`report.Finding` rows.
"""
