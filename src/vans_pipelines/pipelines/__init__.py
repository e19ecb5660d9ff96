"""One folder per Kedro pipeline: thin ``pipeline.py``, pure ``nodes.py``."""
