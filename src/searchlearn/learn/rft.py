"""Rejection-sampling fine-tuning (RFT / STaR / ReST-EM's improvement step).

Keep the search's verified-correct solutions, cut each at its answer line, drop
duplicates, cap how many one problem contributes (so easy problems do not drown
out hard ones), and SFT the policy on what is left.
"""

from __future__ import annotations

from typing import Iterable

from searchlearn.answers import is_correct
from searchlearn.formatting import build_prompt, join_steps, split_steps
from searchlearn.learn.base import LearnInputs
from searchlearn.problems.base import iter_jsonl
from searchlearn.search.base import SearchResult


def select_rft_examples(
    results: Iterable[SearchResult], max_per_problem: int, dedupe: bool = True
) -> list[dict]:
    """Training rows {prompt, completion, problem_id} from verified search candidates.

    Order follows the results, then the candidates within each, so the same search
    output always gives the same dataset. A candidate is kept only if it was marked
    correct *and* its trace, cut after the first answer line, still verifies: the
    verifier reads the last answer, so a wrong answer followed by a right one must
    not become a training target.
    """
    out: list[dict] = []
    taken: dict[str, list[str]] = {}  # problem id -> normalised traces kept so far
    for result in results:
        prompt = build_prompt(result.question)
        kept = taken.setdefault(result.problem_id, [])
        for cand in result.candidates:
            if len(kept) >= max_per_problem:
                break
            if cand.correct is not True:
                continue
            trace = join_steps(split_steps(cand.text))
            if not is_correct(trace, result.reference):
                continue
            key = " ".join(trace.split())
            if dedupe and key in kept:
                continue
            kept.append(key)
            out.append({"prompt": prompt, "completion": trace, "problem_id": result.problem_id})
    return out


def read_search_results(path: str) -> list[SearchResult]:
    return [SearchResult.from_dict(row) for _, row in iter_jsonl(path)]


class RejectionSamplingFT:
    """Learner "rft": SFT on the round's verified traces.

    Starts from `inputs.policy_dir`; the flow resolves `rft.init_from` (previous
    round's policy, or the initial one for ReST-EM) when it fills that in. Metrics:
    rft.examples, rft.problems_covered, and train_sft's `train.*` metrics.
    """

    name = "rft"

    def learn(self, inputs: LearnInputs, cfg: dict) -> dict:
        from searchlearn.learn.sft import train_sft

        rft = cfg["rft"]
        examples = select_rft_examples(
            [r for path in inputs.search_paths() for r in read_search_results(path)], rft["max_per_problem"],
            rft["dedupe"]
        )
        train_metrics = train_sft(inputs.policy_dir, examples, rft["train"], inputs.out_dir, seed=inputs.seed)
        return {
            "rft.examples": len(examples),
            "rft.problems_covered": len({e["problem_id"] for e in examples}),
            **train_metrics,
        }
