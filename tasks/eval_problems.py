from prefect import task

from searchlearn.problems.base import read_problems, write_problems
from searchlearn.problems.gsm8k import load_jsonl
from searchlearn.stages.common import produce
from tasks.cache import cached, output_dir

CODE = ("searchlearn.problems", "searchlearn.stages.common")


@task(name="prepare-eval-problems", **cached(*CODE))
def prepare_eval_problems(path: str, sha: str, fmt: str, run_dir: str) -> dict:
    """A problem file as the `test.jsonl` the evaluate stage reads. fmt: `problems` (the
    project's JSONL, e.g. a split of prepare-problems) or `gsm8k` ({"question", "answer"})."""
    out = output_dir(run_dir, "eval-problems", CODE, sha=sha, fmt=fmt)

    def build(tmp):
        problems = load_jsonl(path, split="test") if fmt == "gsm8k" else read_problems(path)
        write_problems(tmp / "test.jsonl", problems)
        return {"test": len(problems)}

    return produce(out, build)
