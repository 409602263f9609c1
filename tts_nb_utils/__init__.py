"""tts_nb_utils: the tested helpers behind the tts-nb notebooks.

Each notebook's reusable code lives in one module named after its concept; see README.md for the map.
"""

__version__ = "0.1.0"

#: The one place that names the GitHub repository (Colab badges and the notebooks' setup cells use it).
GITHUB_REPO = "tts-nb/tts-nb"
