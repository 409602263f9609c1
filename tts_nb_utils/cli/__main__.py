"""``python -m tts_nb_utils.cli``: the ``tts-nb`` command (used with ``torchrun -m`` for ``dia-train``)."""

import sys

from . import main

sys.exit(main())
