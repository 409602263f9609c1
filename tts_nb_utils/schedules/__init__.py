"""Learning-rate schedules (notebook 04; ``build`` also serves the Dia training loop of notebook 05):

- ``trace``: step a real torch or Coqui scheduler on a dummy optimizer and see the LR each step uses,
  milestone warnings, converters between step and epoch milestones, plots;
- ``plan``: ``tts-nb lr-plan``'s report, stepped as the Coqui trainer would (accumulation, trainer version);
- ``build``: warm-up then decay from torch's own schedulers.

Watching the LR during training is ``monitors.lr_watch``; the Coqui trainer's log is read by ``upstream.coqui``.
"""
