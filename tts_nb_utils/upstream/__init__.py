"""Readers of upstream projects' own artefacts, in their exact formats (no upstream code is vendored):

- ``diffsinger``: DiffSinger YAML configs with their ``base_config`` chain, and the variance-config checker
  (notebook 03, ``tts-nb check-config``);
- ``gpt_sovits``: GPT-SoVITS ``s2_train.py`` loss lines and ``train.log`` (notebook 02, ``tts-nb sovits-log``);
- ``coqui``: the Coqui trainer's ``trainer_0_log.txt`` (notebook 04).
"""
