"""Readers of upstream projects' own artefacts, in their exact formats (no upstream code is vendored):

- ``diffsinger`` (configs and their ``base_config`` chain), ``diffsinger_check`` (the task-aware checker),
  ``diffsinger_experiment`` (saved experiment config, ``--hparams``, ``train.meta``) and ``diffsinger_run``
  (all of them for one run): notebook 03, ``tts-nb check-config``;
- ``gpt_sovits``: GPT-SoVITS ``s2_train.py`` loss lines and ``train.log`` (notebook 02, ``tts-nb sovits-log``);
- ``coqui``: the Coqui trainer's ``trainer_0_log.txt`` (notebook 04).
- ``applio``: Applio's ``logs/<model>/`` in every layout from 3.2.1 to main (notebooks 06 and 07, the doctor,
  ``tts-nb check-features logs/<model>``).
"""
