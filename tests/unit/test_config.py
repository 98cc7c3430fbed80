"""Config: merge order, and every bad input fails early with a message naming it."""

import pytest

from searchlearn.config import ConfigError, available_experiments, flatten, load_config


def test_variants_exist_and_load():
    names = available_experiments()
    assert {"quickstart", "tiny"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name


def test_merge_order_schema_base_experiment_overrides():
    cfg = load_config("tiny", ["search.n=7", "rounds=5"])
    assert cfg.search.n == 7 and cfg.rounds == 5  # CLI beats experiment
    assert cfg.policy.source == "tiny"  # experiment beats base
    assert cfg.tracking.experiment_name == "searchlearn"  # base
    assert cfg.search.top_p == 1.0  # schema default


def test_unknown_experiment_lists_variants():
    with pytest.raises(ConfigError, match=r"unknown experiment 'nope'.*quickstart.*tiny"):
        load_config("nope")


def test_typo_key_is_named():
    with pytest.raises(ConfigError, match=r"search\.nn"):
        load_config("tiny", ["search.nn=3"])


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"search\.n"):
        load_config("tiny", ["search.n=lots"])


def test_unknown_choice_lists_options():
    with pytest.raises(ConfigError, match=r"search\.algorithm='bogus'.*best_of_n"):
        load_config("tiny", ["search.algorithm=bogus"])
    with pytest.raises(ConfigError, match=r"learn\.algorithm"):
        load_config("tiny", ["learn.algorithm=ppo"])


def test_range_checks():
    with pytest.raises(ConfigError, match=r"search\.n must be > 0"):
        load_config("tiny", ["search.n=0"])
    with pytest.raises(ConfigError, match="max_steps"):
        load_config("tiny", ["problems.max_steps=9"])


def test_override_without_equals():
    with pytest.raises(ConfigError, match="key=value"):
        load_config("tiny", ["rounds"])


def test_bad_key_in_yaml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  algorithmm: best_of_n\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*search\.algorithmm"):
        load_config(str(bad))


def test_missing_data_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"problems\.train_path.*nowhere\.jsonl"):
        load_config("tiny", ["problems.source=gsm8k_jsonl", f"problems.train_path={tmp_path}/nowhere.jsonl",
                             f"problems.test_path={tmp_path}/nowhere.jsonl"])


def test_config_is_read_only_and_flattens():
    cfg = load_config("tiny")
    with pytest.raises(Exception):
        cfg.rounds = 9
    flat = flatten(cfg)
    assert flat["search.n"] == cfg.search.n
    assert all(not isinstance(v, dict) for v in flat.values())


def test_inherit_chains_variants(tmp_path):
    cfg = load_config("tiny_prm")
    assert cfg.name == "tiny_prm" and cfg.policy.source == "tiny"  # from tiny
    assert cfg.prm.enabled and cfg.search.algorithm == "beam_search"  # its own
    loop = tmp_path / "loop.yaml"
    loop.write_text("inherit: loop\n")
    with pytest.raises(ConfigError, match="unknown experiment 'loop'"):
        load_config(str(loop))


def test_tree_search_without_reward_model_is_rejected():
    with pytest.raises(ConfigError, match="prm.enabled=true"):
        load_config("tiny", ["search.algorithm=beam_search"])


def test_execution_settings_are_checked():
    with pytest.raises(ConfigError, match=r"execution\.task_runner='spark'.*ray"):
        load_config("tiny", ["execution.task_runner=spark"])
    with pytest.raises(ConfigError, match=r"execution\.shards must be > 0"):
        load_config("tiny", ["execution.shards=0"])
    with pytest.raises(ConfigError, match=r"execution\.block_size must be > 0"):
        load_config("tiny", ["execution.block_size=0"])
    assert load_config("tiny", ["execution.task_runner=ray", "execution.shards=4"]).execution.shards == 4


def test_missing_runner_package_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "prefect_dask" else real(name, *a))
    with pytest.raises(ConfigError, match="prefect-dask"):
        load_config("tiny", ["execution.task_runner=dask"])


def test_reward_model_kinds_label_sources_and_solve_rates_are_checked():
    cfg = load_config("tiny_prm", ["prm.kind=implicit", "prm.compare_kinds=[orm,verifier]", "prm.labels=oracle"])
    assert cfg.prm.kind == "implicit" and list(cfg.prm.compare_kinds) == ["orm", "verifier"]
    with pytest.raises(ConfigError, match=r"prm\.kind='value' is not one of: implicit, implicit_step, orm, prm, verifier"):
        load_config("tiny_prm", ["prm.kind=value"])
    with pytest.raises(ConfigError, match=r"prm\.compare_kinds: \['rm'\]"):
        load_config("tiny_prm", ["prm.compare_kinds=[orm,rm]"])
    with pytest.raises(ConfigError, match=r"prm\.labels='exact' is not one of: mc, oracle"):
        load_config("tiny_prm", ["prm.labels=exact"])
    with pytest.raises(ConfigError, match=r"prm\.step_check='python' is not one of: calculator, none"):
        load_config("tiny_prm", ["prm.step_check=python"])
    with pytest.raises(ConfigError, match=r"prm\.max_solve_rate must be in \[0, 1\]"):
        load_config("tiny_prm", ["prm.max_solve_rate=1.5"])
    with pytest.raises(ConfigError, match="min_solve_rate=0.8 is above"):
        load_config("tiny_prm", ["prm.min_solve_rate=0.8", "prm.max_solve_rate=0.5"])
    with pytest.raises(ConfigError, match=r"prm\.implicit\.beta must be > 0"):
        load_config("tiny_prm", ["prm.implicit.beta=0"])


def test_grpo_prm_shaping_needs_a_prm():
    with pytest.raises(ConfigError, match="learn.grpo.prm_weight"):
        load_config("tiny", ["learn.algorithm=grpo", "learn.grpo.prm_weight=0.5"])
    assert load_config("tiny_prm", ["learn.algorithm=grpo", "learn.grpo.prm_weight=0.5"]).learn.grpo.prm_weight == 0.5


def test_every_numeric_setting_has_a_range():
    from searchlearn.config.ranges import numeric_settings, rules_for

    for name in available_experiments():
        unchecked = {key for key, _ in numeric_settings(flatten(load_config(name))) if not rules_for(key)}
        assert not unchecked, f"{name}: add a rule to config/ranges.py for {sorted(unchecked)}"


def test_each_algorithm_says_whether_it_needs_a_reward_model():
    rollouts = ["search.algorithm=mcts", "search.mcts.evaluation=rollout"]
    with pytest.raises(ConfigError, match="prm.enabled=true"):  # rollouts valued by the scorer
        load_config("tiny", rollouts)
    assert load_config("tiny", [*rollouts, "search.mcts.use_verifier=true", "search.mcts.selection=majority"])
    with pytest.raises(ConfigError, match="prm.enabled=true"):
        load_config("tiny", ["search.selection=weighted"])


def test_a_budget_too_small_for_the_search_is_named():
    with pytest.raises(ConfigError, match=r"search\.n=2 is too small for beam_search"):
        load_config("tiny_prm", ["search.n=2", "search.beam_search.expansions=4"])
    with pytest.raises(ConfigError, match=r"search\.dvts: expansions must be >= 1|search\.dvts\.expansions"):
        load_config("tiny_prm", ["search.algorithm=dvts", "search.dvts.expansions=0"])
