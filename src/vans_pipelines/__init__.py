"""vans_pipelines: VANS (Video-as-Answer, arXiv 2511.16669) as a reproducible Kedro workflow."""

__version__ = "0.1.0"
