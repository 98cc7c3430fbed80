from searchlearn.generation.base import Completion, GenerationStats, Generator, SamplingParams

__all__ = ["Completion", "GenerationStats", "Generator", "SamplingParams"]
