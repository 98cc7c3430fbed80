"""The policy as an MLflow pyfunc model: input a DataFrame with a `question`
column, output the greedy solution and parsed answer."""

from __future__ import annotations

import mlflow.pyfunc


class PolicyModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.model_dir = context.artifacts["checkpoint"]
        self._generator = None

    def predict(self, context, model_input, params=None):
        from searchlearn.answers import extract_answer
        from searchlearn.formatting import build_prompt
        from searchlearn.generation.base import SamplingParams
        from searchlearn.generation.hf import HFGenerator

        if self._generator is None:
            self._generator = HFGenerator(self.model_dir)
        questions = list(model_input["question"])
        max_new = int((params or {}).get("max_new_tokens", 192))
        outs = self._generator.generate([build_prompt(q) for q in questions],
                                        SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new))
        return [{"solution": o[0].text, "answer": extract_answer(o[0].text)} for o in outs]
