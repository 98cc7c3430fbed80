"""Stage: materialize the problem splits (train pool, demos, held-out test)."""

from __future__ import annotations

import random
from pathlib import Path

from searchlearn.problems.base import Problem, read_problems, split_ids_disjoint, write_problems
from searchlearn.problems.sources import load_splits
from searchlearn.stages.common import produce, section
from searchlearn.stages.stage import Stage, path_of


def problems_stage(cfg) -> Stage:
    """prepare-problems: its slice is `problems:` and the demo count; a JSONL source's
    files enter its key by content, so refilling a file in place is seen."""
    problems = section(cfg.problems)
    files = (problems["train_path"], problems["test_path"]) if problems["source"] == "gsm8k_jsonl" else ()
    return Stage("prepare-problems", "problems", prepare_problems,
                 {"problems_cfg": problems, "num_demos": cfg.init.num_demos}, files=files)


def eval_file_stage(path: str, fmt: str = "gsm8k") -> Stage:
    """prepare-eval-problems for a JSONL file (keyed by its content): GSM8K-format, or
    the project's own (`problems`, which keeps the oracle's reference equations)."""
    path = str(Path(path).resolve())
    return Stage("prepare-eval-problems", "eval-problems", eval_problems, {"path": path, "fmt": fmt},
                 files=(path,))


def eval_pool_stage(problems: dict) -> Stage:
    """prepare-eval-problems for the search pool of a prepare-problems output."""
    return Stage("prepare-eval-problems", "eval-problems", eval_problems,
                 {"path": path_of(problems, "pool.jsonl"), "fmt": "problems"})


def prepare_problems(problems_cfg: dict, num_demos: int, out_dir: str | Path) -> dict:
    """Write demos.jsonl (worked solutions for the initial SFT), pool.jsonl (answers
    only, searched in the rounds) and test.jsonl (held out)."""

    def build(tmp: Path) -> dict:
        train, test = load_splits(problems_cfg)
        if not split_ids_disjoint(train, test):
            raise ValueError("train and test problems overlap; check the problem source")
        with_solutions = [p for p in train if p.solution]
        demos = with_solutions[:num_demos]
        demo_ids = {p.id for p in demos}
        # Search problems come with answers but no worked solutions, as in RL data.
        pool = [Problem(p.id, p.question, p.answer, None, p.meta) for p in train if p.id not in demo_ids]
        write_problems(tmp / "demos.jsonl", demos)
        write_problems(tmp / "pool.jsonl", pool)
        write_problems(tmp / "test.jsonl", test)
        return {"demos": len(demos), "pool": len(pool), "test": len(test)}

    return produce(out_dir, build)


def eval_problems(path: str, fmt: str, out_dir: str | Path) -> dict:
    """A problem file as the `test.jsonl` the evaluate stage reads. fmt: `problems` (the
    project's JSONL, e.g. a split of prepare-problems) or `gsm8k` ({"question", "answer"})."""
    from searchlearn.problems.gsm8k import load_jsonl

    def build(tmp: Path) -> dict:
        problems = load_jsonl(path, split="test") if fmt == "gsm8k" else read_problems(path)
        write_problems(tmp / "test.jsonl", problems)
        return {"test": len(problems)}

    return produce(out_dir, build)


def round_problems(data_dir: str | Path, count: int, seed: int) -> list[Problem]:
    """A seeded sample of the search pool for one round."""
    pool = read_problems(Path(data_dir) / "pool.jsonl")
    rng = random.Random(seed)
    return rng.sample(pool, min(count, len(pool)))


def test_problems(data_dir: str | Path, limit: int = 0) -> list[Problem]:
    problems = read_problems(Path(data_dir) / "test.jsonl")
    return problems[:limit] if limit else problems
