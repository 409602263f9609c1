"""One-off probes you run on a model, a run or a folder when something looks wrong (no training loop needed):

- ``numerics``: the first module or gradient holding NaN/Inf, and fp16/bf16 headroom (notebook 02);
- ``params``: parameter snapshots and fingerprints, and how far each parameter moved (notebooks 03, 06);
- ``loss_curves``: read per-term loss curves back and classify them (notebook 03);
- ``stage``: inputs a pipeline stage left without output (notebook 06, ``tts-nb check-features``).
"""
