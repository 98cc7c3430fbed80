"""searchlearn: search + learning for reasoning language models.

The core package is plain Python (torch/transformers/TRL/vLLM/MLflow); it never
imports Prefect. Orchestration lives in the top-level `tasks/` and `flows/`.
"""

from searchlearn.memory import limit_onednn_cache

__version__ = "0.1.0"

limit_onednn_cache()  # before any torch op makes a oneDNN primitive (searchlearn.memory)
