"""The champion registry and the ways evaluate-model finds a policy, on a real MLflow
SQLite store with a stand-in checkpoint (no training). The flows' config checks run
without Prefect (`.fn`): a bad experiment or override fails before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from searchlearn import registry, tracking
from searchlearn.config import ConfigError, load_config


def _checkpoint(path: Path, marker: str) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"marker": marker}))
    (path / "weights.bin").write_bytes(marker.encode() * 10)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A parent run with one round run, two logged policies, the second one champion."""
    run_dir = tmp_path_factory.mktemp("registry")
    cfg = load_config("tiny", [f"run_dir={run_dir}"])
    handle = tracking.start_parent_run(cfg, run_name="registry-test")
    stage = run_dir / "artifacts" / "policy-r1" / "abc"
    _checkpoint(stage / "model", "round-1")
    tracking.log_round(handle, tracking.start_round_run(handle, 1), 1, {"eval.greedy_acc": 0.5},
                       {"policy": {"path": str(stage), "sha": "x"}})
    name = registry.registered_model_name(cfg)
    versions = []
    for marker in ("first", "second"):
        uri = registry.log_final_model(handle, str(_checkpoint(run_dir / marker / "model", marker)))
        versions.append(registry.register_champion(handle, uri, name))
    tracking.finish(handle)
    return {"cfg": cfg, "handle": handle, "name": name, "versions": versions, "stage": stage, "run_dir": run_dir}


def test_registered_name_defaults_to_experiment_name_policy():
    assert registry.registered_model_name(load_config("tiny")) == "searchlearn-policy"
    assert registry.registered_model_name(load_config("tiny", ["tracking.registered_model=x"])) == "x"


def test_champion_alias_follows_the_latest_registration(store):
    client = tracking.mlflow_client(store["handle"]["uri"])
    assert store["versions"] == ["1", "2"]
    champion = client.get_model_version_by_alias(store["name"], registry.CHAMPION)
    assert str(champion.version) == "2" and champion.run_id == store["handle"]["run_id"]


def test_round_policy_reads_the_round_runs_reference(store):
    assert registry.round_policy(store["handle"], 1) == str(store["stage"])
    with pytest.raises(LookupError, match="round 7"):
        registry.round_policy(store["handle"], 7)


def test_resolve_policy_pins_aliases_and_follows_runs(store, tmp_path):
    uri, name = store["handle"]["uri"], store["name"]
    assert registry.resolve_policy(uri, f"models:/{name}@champion") == f"models:/{name}/2"
    assert registry.resolve_policy(uri, f"models:/{name}/1") == f"models:/{name}/1"
    assert registry.resolve_policy(uri, str(store["stage"])) == str(store["stage"])
    client = tracking.mlflow_client(uri)
    rounds = client.search_runs([store["handle"]["experiment_id"]], "tags.`searchlearn.round` = '1'")
    assert registry.resolve_policy(uri, rounds[0].info.run_id) == str(store["stage"])
    assert registry.resolve_policy(uri, store["handle"]["run_id"]).startswith("models:/m-")


def test_download_policy_returns_the_checkpoint_files(store, tmp_path):
    uri, name = store["handle"]["uri"], store["name"]
    out = registry.download_policy(uri, f"models:/{name}/2", tmp_path / "fetched" / "model")
    assert json.loads((out / "config.json").read_text()) == {"marker": "second"}
    assert not (tmp_path / "fetched" / "mlflow-model").exists()


def test_fetch_policy_gives_stage_references_for_every_kind_of_name(store):
    from tasks.registry import fetch_policy

    uri, run_dir = store["handle"]["uri"], str(store["run_dir"])
    stage = fetch_policy.fn(str(store["stage"]), uri, run_dir)
    assert stage["path"] == str(store["stage"])
    champion = fetch_policy.fn(f"models:/{store['name']}@champion", uri, run_dir)
    assert json.loads(Path(champion["path"], "model", "config.json").read_text()) == {"marker": "second"}
    assert fetch_policy.fn(f"models:/{store['name']}/2", uri, run_dir) == champion  # reused from disk
    bare = fetch_policy.fn(str(store["run_dir"] / "first" / "model"), uri, run_dir)
    assert json.loads(Path(bare["path"], "model", "config.json").read_text()) == {"marker": "first"}
    assert bare["sha"] != champion["sha"]


def test_a_rerun_with_the_same_best_checkpoint_reuses_the_logged_model_and_version(store):
    """A second parent run (e.g. a fully cached re-run) whose best checkpoint has the
    same content logs no second copy and registers no new version."""
    cfg, name = store["cfg"], store["name"]
    second = store["run_dir"] / "second" / "model"
    client = tracking.mlflow_client(store["handle"]["uri"])
    before = client.get_model_version_by_alias(name, registry.CHAMPION)
    rerun = tracking.start_parent_run(cfg, run_name="registry-rerun")
    uri = registry.log_final_model(rerun, str(second))
    assert uri == before.source  # the version registered from the first run's logged model
    assert registry.register_champion(rerun, uri, name) == str(before.version) == "2"
    assert len(client.search_model_versions(f"name = '{name}'")) == 2
    assert client.get_run(rerun["run_id"]).data.tags["searchlearn.final_model"] == uri
    # Back to the first checkpoint: its version takes the alias again, nothing new is made.
    first_uri = registry.log_final_model(rerun, str(store["run_dir"] / "first" / "model"))
    assert registry.register_champion(rerun, first_uri, name) == "1"
    assert str(client.get_model_version_by_alias(name, registry.CHAMPION).version) == "1"
    registry.register_champion(rerun, uri, name)  # leave "second" as champion for the other tests
    tracking.finish(rerun)


def test_best_round_prefers_accuracy_then_the_later_round():
    from searchlearn.champion import best_round as _best_round

    rows = [{"round": 0, "eval.greedy_acc": 0.2}, {"round": 1, "eval.greedy_acc": 0.5},
            {"round": 2, "eval.greedy_acc": 0.5}, {"round": 3, "eval.greedy_acc": 0.4}]
    assert _best_round(rows) == 2
    assert _best_round(rows[:2]) == 1


def test_flows_reject_an_unknown_experiment_before_any_work():
    from flows.evaluate_model import evaluate_model
    from flows.generate_data import generate_data

    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        evaluate_model.fn(model="x", experiment="nope")
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        generate_data.fn(experiment="nope")


def test_flows_reject_a_bad_override_or_missing_jsonl():
    from flows.evaluate_model import evaluate_model
    from flows.generate_data import generate_data

    with pytest.raises(ConfigError, match=r"search\.nn"):
        generate_data.fn(experiment="tiny", overrides=["search.nn=3"])
    with pytest.raises(ConfigError, match="jsonl: file not found"):
        evaluate_model.fn(model="x", experiment="tiny", jsonl="/no/such.jsonl")


def test_the_crowned_champion_carries_its_own_rounds_metrics_tags_and_description(tmp_path):
    """Round 1 wins here, so step 0's metrics (what MLflow links by default) would be wrong."""
    import mlflow

    from searchlearn.champion import best_round

    cfg = load_config("tiny", [f"run_dir={tmp_path}"])
    handle = tracking.start_parent_run(cfg, run_name="crown-test")
    history = [{"round": r, "eval.greedy_acc": acc, "eval.greedy_acc_se": 0.05, "eval.maj_at_2": acc / 2,
                "eval.maj_at_2_se": 0.04, "eval.pass_at_2": acc + 0.1, "eval.pass_at_2_se": 0.06, "eval.problems": 24}
               for r, acc in enumerate((0.125, 0.25, 0.2))]
    for row in history:
        tracking.log_round(handle, tracking.start_round_run(handle, row["round"]), row["round"], row, {})
    best = best_round(history)
    assert best == 1
    text = registry.crown_champion(handle, cfg, history, best, str(_checkpoint(tmp_path / "r1" / "model", "r1")),
                                   "crown-test")
    client = tracking.mlflow_client(handle["uri"])
    version = client.get_model_version_by_alias("searchlearn-policy", registry.CHAMPION)
    model = mlflow.get_logged_model(version.source.removeprefix("models:/"))
    assert {(m.key, m.step, m.value) for m in model.metrics} == {(k, 1, float(v)) for k, v in history[1].items()}
    assert model.tags["searchlearn.round"] == version.tags["searchlearn.round"] == "1"
    assert model.tags["searchlearn.greedy_acc"] == "0.250 ± 0.098"
    assert (version.tags["searchlearn.search_algorithm"], version.tags["searchlearn.learn_algorithm"]) == \
        ("best_of_n", "rft")
    assert version.tags["searchlearn.parent_run_id"] == handle["run_id"]
    assert version.description.startswith("**Round 1** policy of experiment `tiny`")
    assert "r0 0.125, r1 0.250, r2 0.200" in version.description
    assert f"version {version.version} (`@champion`)" in text
    tracking.finish(handle)
