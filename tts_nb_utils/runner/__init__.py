"""Running the notebooks: the papermill runner behind ``tts-nb run`` / ``make run`` and the notebook tests,
``interact`` for the notebooks' "Try it yourself" cells, and where the repository, notebooks and demo data are.
Tools never import this package.
"""
