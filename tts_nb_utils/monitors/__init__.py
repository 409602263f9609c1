"""Training monitors: one interface (``base.Monitor``), four checks, thin adapters.

- ``nan_guard.NanGuard``: skip non-finite steps, recover (notebook 02);
- ``loss_terms.LossTermGuard``: a loss that cannot train, named by its config switch (notebook 03);
- ``lr_watch.LRWatch``: the LR really used against the plan (notebook 04);
- ``sanity.SanityMonitor``: a run that only looks like it trains (notebook 06).

Each works in a plain loop; ``lightning.MonitorCallback`` and ``coqui.CoquiMonitors`` plug any of them into
Lightning or the Coqui trainer. Importing this package loads neither framework.
"""

from .base import Monitor, MonitorError, MonitorSet, MonitorWarning, Problem
from .loss_terms import LossGuardError, LossTermGuard, check_losses, guarded_total
from .lr_watch import LRWatch, LRWatchError, LRWatchWarning
from .nan_guard import NanGuard, NonFiniteTrainingError
from .sanity import SanityError, SanityMonitor, SanityWarning

__all__ = [
    "LRWatch",
    "LRWatchError",
    "LRWatchWarning",
    "LossGuardError",
    "LossTermGuard",
    "Monitor",
    "MonitorError",
    "MonitorSet",
    "MonitorWarning",
    "NanGuard",
    "NonFiniteTrainingError",
    "Problem",
    "SanityError",
    "SanityMonitor",
    "SanityWarning",
    "check_losses",
    "guarded_total",
]
