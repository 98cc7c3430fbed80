"""Stage keys: each stage's code hash covers exactly the searchlearn modules it runs,
found from the source, so an edit recomputes what it touches and nothing else.

Edits are made to a copy of the source tree in tmp_path; keys computed against the
edited copy are compared with keys computed against the checkout (code hashes are
computed once per process and source root, so each test edits a fresh copy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from searchlearn.code_closure import SOURCE_ROOT, closure
from searchlearn.config import load_config
from searchlearn.stages.data import problems_stage
from searchlearn.stages.evaluate import eval_stage, rerank_stage, scaling_stage
from searchlearn.stages.learn import learn_stage
from searchlearn.stages.policy import base_model_stage, sft_stage
from searchlearn.stages.labels import label_shard_stage, merge_labels_stage
from searchlearn.stages.reward import reward_model_stage
from searchlearn.stages.search import merge_stage, shard_stage
from searchlearn.stages.stage import stage_key


def ref(name: str, **meta) -> dict:
    return {"path": f"/runs/x/artifacts/{name}", "sha": f"sha-of-{name}", **meta}


def all_stages() -> dict:
    """Every stage of the recipe, declared as the flows declare them (tiny_prm: PRM on,
    beam search; scaling on so its stage exists)."""
    cfg = load_config("tiny_prm", ["eval.scaling.enabled=true", "eval.scaling.num_problems=8"])
    problems, base, policy = ref("problems"), ref("base"), ref("policy")
    data, labels, prm = ref("search", **{"search.problems": 16}), ref("labels"), ref("prm", kind="prm")
    return {
        "prepare-problems": problems_stage(cfg),
        "init-base-model": base_model_stage(cfg, problems),
        "sft-on-demos": sft_stage(cfg, base, problems),
        "search-shard": shard_stage(cfg, policy, problems, prm, 1, 32, [0]),
        "search-for-data": merge_stage(cfg, [ref("shard")], problems, 1),
        "label-shard": label_shard_stage(cfg, policy, data, 1, 32, [0]),
        "label-steps": merge_labels_stage([ref("label-shard")], 1),
        "train-reward-model": reward_model_stage(cfg, policy, [labels], "prm", 1),
        "learn-policy": learn_stage(cfg, policy, policy, [data], None, 1),
        "evaluate-policy": eval_stage(cfg, policy, problems, 1),
        "evaluate-reranking": rerank_stage(cfg, policy, problems, {"prm": prm}, 1),
        "evaluate-scaling": scaling_stage(cfg, policy, problems, prm, 1),
    }


def short(modules) -> set[str]:
    return {m.removeprefix("searchlearn.") for m in modules}


# What each stage runs, by reading its code (the modules the issue found missing
# from the old hand-typed lists are among them).
RUNS = {
    "prepare-problems": {"stages.data", "stages.common", "problems.sources", "problems.arithmetic",
                         "problems.gsm8k", "problems.base", "formatting", "answers", "artifacts"},
    "init-base-model": {"stages.policy", "stages.common", "models.init", "models.tiny", "formatting",
                        "problems.base"},
    "sft-on-demos": {"stages.policy", "stages.common", "learn.sft", "learn.launch", "models.init", "formatting",
                     "problems.base"},
    "search-shard": {"stages.search", "stages.common", "stages.data", "search.best_of_n", "search.beam",
                     "search.selection", "problems.base", "formatting", "answers", "generation", "reward.prm",
                     "sharding"},
    "search-for-data": {"stages.search", "stages.common", "stages.data", "problems.base", "sharding"},
    "label-shard": {"stages.labels", "stages.common", "reward.labels", "reward.orm", "reward.oracle", "answers",
                    "formatting", "generation", "sharding", "problems.base"},
    "label-steps": {"stages.labels", "stages.common", "reward.labels", "reward.quality", "sharding"},
    "train-reward-model": {"stages.reward", "stages.labels", "stages.common", "reward.trainers", "reward.prm_train",
                           "reward.implicit_train", "reward.implicit", "reward.verifier", "reward.quality",
                           "reward.labels", "learn.launch", "learn.lm_head"},
    "learn-policy": {"stages.learn", "stages.common", "learn.rft", "learn.dpo", "learn.grpo", "learn.sft",
                     "answers", "formatting", "problems.base", "reward.prm"},
    "evaluate-policy": {"stages.evaluate", "stages.common", "stages.data", "evaluation", "search.selection",
                        "search.best_of_n", "problems.base", "answers", "formatting", "generation"},
    "evaluate-reranking": {"stages.evaluate", "evaluation", "search.selection", "reward.base", "reward.prm",
                           "reward.orm", "reward.verifier", "reward.implicit", "generation"},
    "evaluate-scaling": {"stages.evaluate", "search.scaling", "search.beam", "search.dvts", "search.mcts",
                         "search.best_of_n", "reward.prm", "generation"},
}
NEVER_RUN = {"tracking", "reporting", "mlflow_model", "preflight", "rundir", "config.load", "config.ranges",
             "generation.scripted"}


@pytest.fixture(scope="module")
def stages() -> dict:
    return all_stages()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_closure_holds_the_modules_the_stage_runs(stages, name):
    fn = stages[name].fn
    found = short(closure(fn.__module__, fn.__name__))
    assert RUNS[name] <= found, RUNS[name] - found
    assert not (NEVER_RUN & found), NEVER_RUN & found


def test_a_stage_does_not_run_modules_only_a_registry_imports(stages):
    """Importing `searchlearn.search` imports every algorithm, but only the stages that
    pick an algorithm by name run them."""
    def runs(name):
        return short(closure(stages[name].fn.__module__, stages[name].fn.__name__))

    assert "search.mcts" in runs("search-shard")  # any algorithm may be configured
    assert not {"search.mcts", "search.dvts", "search.beam"} & runs("evaluate-policy")
    assert not {"search.mcts", "learn.grpo", "learn.dpo"} & runs("sft-on-demos")
    assert not {"learn", "search", "generation"} & runs("prepare-problems")


@pytest.fixture
def source_copy(tmp_path) -> Path:
    root = tmp_path / "src"
    shutil.copytree(SOURCE_ROOT / "searchlearn", root / "searchlearn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def keys(stages: dict, root: Path = SOURCE_ROOT) -> dict[str, str]:
    return {name: stage_key(stage, root) for name, stage in stages.items()}


def edit(root: Path, module: str, old: str, new: str) -> None:
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    text = path.read_text()
    assert old in text, (module, old)
    path.write_text(text.replace(old, new, 1))


def changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_an_untouched_copy_gives_the_same_keys(stages, source_copy):
    assert keys(stages, source_copy) == keys(stages)


def test_editing_build_prompt_changes_every_stage_that_prompts(stages, source_copy):
    before = keys(stages)
    edit(source_copy, "searchlearn.formatting", 'Solution:\\n"', 'Answer:\\n"')
    assert {"sft-on-demos", "search-shard", "label-shard", "evaluate-policy", "learn-policy",
            "evaluate-reranking", "evaluate-scaling"} <= changed(before, keys(stages, source_copy))


def test_editing_modules_no_stage_runs_changes_no_key(stages, source_copy):
    before = keys(stages)
    edit(source_copy, "searchlearn.tracking", '"""MLflow tracking', '"""Edited. MLflow tracking')
    edit(source_copy, "searchlearn.reporting", "from __future__", "# edited\nfrom __future__")
    edit(source_copy, "searchlearn.config.load", "def validate(", "def _edited():\n    pass\n\n\ndef validate(")
    assert changed(before, keys(stages, source_copy)) == set()


def test_a_comment_in_a_module_a_stage_runs_recomputes_it(stages, source_copy):
    edit(source_copy, "searchlearn.search.selection", "from __future__", "# a comment\nfrom __future__")
    assert changed(keys(stages), keys(stages, source_copy)) == {
        "evaluate-policy", "evaluate-reranking", "evaluate-scaling", "search-shard"}


def test_training_code_of_a_reward_model_kind_recomputes_only_its_training(stages, source_copy):
    """The trainers' registry is apart from the scorers': stages that only score (search,
    evaluation) or only label do not depend on how a kind is trained."""
    edit(source_copy, "searchlearn.reward.implicit_train", "from __future__", "# a comment\nfrom __future__")
    assert changed(keys(stages), keys(stages, source_copy)) == {"train-reward-model"}


def test_editing_the_reward_training_job_does_not_relabel(stages, source_copy):
    """The training job (stages/reward.py) is apart from labelling (stages/labels.py):
    an edit to it re-trains the reward model and leaves the rollouts cached."""
    edit(source_copy, "searchlearn.stages.reward", "from __future__", "# a comment\nfrom __future__")
    assert changed(keys(stages), keys(stages, source_copy)) == {"train-reward-model"}


def test_editing_labelling_relabels_and_retrains(stages, source_copy):
    edit(source_copy, "searchlearn.stages.labels", "from __future__", "# a comment\nfrom __future__")
    assert changed(keys(stages), keys(stages, source_copy)) == {"label-shard", "label-steps", "train-reward-model"}


def test_another_search_algorithm_recomputes_only_the_stages_that_may_pick_it(stages, source_copy):
    edit(source_copy, "searchlearn.search.mcts", "from __future__", "# a comment\nfrom __future__")
    assert changed(keys(stages), keys(stages, source_copy)) == {"search-shard", "evaluate-scaling"}


def test_a_data_file_enters_prepare_problems_by_content(tmp_path):
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(4)]
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    test.write_text(json.dumps(rows[3]) + "\n")
    overrides = ["problems.source=gsm8k_jsonl", f"problems.train_path={train}", f"problems.test_path={test}"]
    first = problems_stage(load_config("tiny", overrides)).key
    train.write_text(train.read_text().replace("What is 0", "What is zero"))  # same path, new content
    second = problems_stage(load_config("tiny", overrides))
    assert first != second.key
    assert second.out_dir("/runs/x") == Path("/runs/x/artifacts/problems") / second.key[:16]


def test_upstream_artifacts_enter_by_content_hash_not_path(stages):
    cfg = load_config("tiny")
    a = sft_stage(cfg, ref("base"), ref("problems"))
    moved = sft_stage(cfg, {**ref("base"), "path": "/elsewhere/base"}, ref("problems"))
    retrained = sft_stage(cfg, {**ref("base"), "sha": "another"}, ref("problems"))
    assert a.key == moved.key != retrained.key
    assert a.out_dir("/runs/x").parent == Path("/runs/x/artifacts/policy-init")


def test_an_eval_file_in_the_projects_format_keeps_the_oracles_equations(tmp_path):
    """eval_file_stage(fmt="problems") (bench/prm_quickstart.py --test-seed's fresh
    held-out set) passes problems through whole, meta included, which the step oracle
    reads; the file enters the key by content, and the format is part of the key."""
    from searchlearn.problems.arithmetic import make_splits
    from searchlearn.problems.base import read_problems, write_problems
    from searchlearn.stages.data import eval_file_stage

    _, test = make_splits(0, 5, 1, 4, 100, seed=3)
    src = tmp_path / "fresh.jsonl"
    write_problems(src, test)
    stage = eval_file_stage(str(src), fmt="problems")
    got = read_problems(Path(stage.run(str(tmp_path / "run"))["path"]) / "test.jsonl")
    assert [(p.id, p.question, p.meta) for p in got] == [(p.id, p.question, p.meta) for p in test]
    assert all(p.meta["equations"] for p in got)
    assert stage.key != eval_file_stage(str(src)).key  # gsm8k format: another stage
    write_problems(src, test[:4])
    assert eval_file_stage(str(src), fmt="problems").key != stage.key


def test_a_search_that_reads_no_scores_does_not_depend_on_the_reward_model():
    """Best-of-N by majority vote never reads scores: its search stage is the same with
    or without last round's reward model (no scoring, no re-run when it changes);
    a weighted vote and beam search read them, so theirs are not."""
    problems, policy, prm = ref("problems"), ref("policy"), ref("prm", kind="implicit_step")

    def key(*overrides: str, scorer: dict | None) -> tuple:
        cfg = load_config("tiny_prm", list(overrides))
        stage = shard_stage(cfg, policy, problems, scorer, 2, 32, [0])
        return stage.key, stage.inputs["scorer_ref"]

    majority = ["search.algorithm=best_of_n", "search.selection=majority"]
    assert key(*majority, scorer=prm) == key(*majority, scorer=None)
    assert key(*majority, scorer=prm)[1] is None
    for guided in (["search.algorithm=best_of_n", "search.selection=weighted"], ["search.algorithm=beam_search"]):
        assert key(*guided, scorer=prm) != key(*guided, scorer=None)
        assert key(*guided, scorer=prm)[1] is not None


def test_a_step_check_keys_every_stage_that_scores_and_nothing_else():
    """prm.step_check changes what the reward model's values are wherever it scores
    (search, reranking, scaling, GRPO shaping), so those stages re-run; labelling and
    training read no scores and keep their keys. `none` keys as before the option."""
    problems, policy, prm = ref("problems"), ref("policy"), ref("prm", kind="implicit_step")

    def stages_with(*overrides: str) -> dict:
        cfg = load_config("tiny_prm", ["eval.scaling.enabled=true", *overrides])
        return {"search-shard": shard_stage(cfg, policy, problems, prm, 2, 32, [0]),
                "evaluate-reranking": rerank_stage(cfg, policy, problems, {"implicit_step": prm}, 2),
                "evaluate-scaling": scaling_stage(cfg, policy, problems, prm, 2),
                "learn-policy": learn_stage(cfg, policy, policy, [ref("search")], prm, 2),
                "label-shard": label_shard_stage(cfg, policy, ref("search", **{"search.problems": 16}), 2, 32, [0]),
                "train-reward-model": reward_model_stage(cfg, policy, [ref("labels")], "implicit_step", 2)}

    plain, checked = stages_with(), stages_with("prm.step_check=calculator")
    assert changed({k: s.key for k, s in plain.items()}, {k: s.key for k, s in checked.items()}) == {
        "search-shard", "evaluate-reranking", "evaluate-scaling", "learn-policy"}
    assert plain["search-shard"].inputs["scorer_ref"].sha == prm["sha"]  # none: the model's hash alone
    assert checked["search-shard"].inputs["scorer_ref"].value["step_check"] == "calculator"
