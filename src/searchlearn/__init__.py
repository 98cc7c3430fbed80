"""searchlearn: search + learning for reasoning language models.

The core package is plain Python (torch/transformers/TRL/vLLM/MLflow); it never
imports Prefect. Orchestration lives in the top-level `tasks/` and `flows/`.
"""

__version__ = "0.1.0"
