"""MLflow tracking for a search-and-learn run: one parent run per flow run, one
nested child run per round, created when the round starts. Every per-round metric
goes to both: the round run holds the round's own story (tables, datasets, refs),
the parent holds each metric as a curve over rounds (step = round).

Uses MlflowClient with explicit run ids because the fluent API's active run does not
follow work into other threads (Prefect task runners), and logs from returned values
because cached stages skip their bodies."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from searchlearn.config.load import flatten, to_yaml

PLOT_DIR = "plots"
RUN_DIR_TAG = "searchlearn.run_dir"
DESCRIPTION_TAG = "mlflow.note.content"  # a run's description in the UI (rendered as markdown)
# MLflow 3 opens experiments in its GenAI view (a traces dashboard) unless told otherwise.
ML_VIEW = "workflowType=machine_learning"
MAX_DESCRIPTION = 8000  # characters MLflow keeps of a tag value


def tracking_uri(cfg) -> str:
    """Always an absolute SQLite URI (a relative one lands wherever cwd happens to be)."""
    if cfg.tracking.uri:
        return cfg.tracking.uri
    return f"sqlite:///{(Path(cfg.run_dir).resolve() / 'mlflow.db')}"


def mlflow_client(uri: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri)


def experiment_id(client, name: str, artifact_root: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # The kind tag is what the UI reads to file an experiment under model training.
    return client.create_experiment(name, artifact_location=artifact_root.resolve().as_uri(),
                                    tags={"mlflow.experimentKind": "custom_model_development"})


def run_url(handle: dict, ui: str = "http://127.0.0.1:5000") -> str:
    """The run's page in the MLflow UI, in its machine-learning view. A server
    tracking URI is its own UI; a SQLite store is served by `mlflow ui` at `ui`."""
    base = handle["uri"] if handle["uri"].startswith(("http://", "https://")) else ui
    return f"{base.rstrip('/')}/#/experiments/{handle['experiment_id']}/runs/{handle['run_id']}?{ML_VIEW}"


def ui_command(handle: dict, port: int = 5000) -> str:
    """How to open this store in the MLflow UI (a server URI is its own UI)."""
    if handle["uri"].startswith(("http://", "https://")):
        return handle["uri"]
    return f"mlflow ui --backend-store-uri {handle['uri']} --port {port}"


def artifact_url(handle: dict, path: str) -> str:
    """A run artifact as the MLflow UI's server serves it, relative to the UI's address:
    images in a run's description (rendered as markdown) load from it."""
    from urllib.parse import quote

    return f"get-artifact?path={quote(path, safe='')}&run_uuid={handle['run_id']}"


# ---- the parent run -------------------------------------------------------------------

@contextmanager
def parent_run(cfg, run_name: str, tags: dict | None = None) -> Iterator[dict]:
    """The flow run's parent run, ended FINISHED when the block completes and FAILED
    when it raises (KILLED on Ctrl-C), together with its round run in progress. A
    process killed outright cannot end its runs: start_parent_run closes such runs
    the next time this run_dir starts."""
    handle = start_parent_run(cfg, run_name, tags)
    try:
        yield handle
    except BaseException as e:
        status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
        client = mlflow_client(handle["uri"])
        for run in client.search_runs([handle["experiment_id"]], f"tags.mlflow.parentRunId = '{handle['run_id']}' "
                                      "and attributes.status = 'RUNNING'"):
            client.set_terminated(run.info.run_id, status=status)
        finish(handle, status=status)
        raise
    finish(handle)


def start_parent_run(cfg, run_name: str, tags: dict | None = None) -> dict:
    """Create the parent run, log the params of the sections that run and the
    resolved YAML. Returns a small handle dict (uri, run id, experiment id) safe to
    pass around. Call it holding the run_dir's lock (rundir.claim): runs of this
    run_dir still RUNNING then belong to dead processes, and are closed as KILLED."""
    uri = tracking_uri(cfg)
    client = mlflow_client(uri)
    exp = experiment_id(client, cfg.tracking.experiment_name, Path(cfg.run_dir) / "mlartifacts")
    run_dir = str(Path(cfg.run_dir).resolve())
    close_abandoned_runs(client, exp, run_dir)
    run = client.create_run(exp, run_name=run_name, tags={"searchlearn.experiment": cfg.name, RUN_DIR_TAG: run_dir,
                                                          **(tags or {})})
    _log_params(client, run.info.run_id, params_that_run(cfg))
    client.log_text(run.info.run_id, to_yaml(cfg), "config/resolved.yaml")
    return {"uri": uri, "run_id": run.info.run_id, "experiment_id": exp}


def params_that_run(cfg) -> dict[str, object]:
    """Dotted params of the config sections this run uses: the chosen search algorithm's
    and learner's own sections (as their stages slice them), `prm.*` and
    `eval.scaling.*` only when enabled, `policy.tiny.*` only for a tiny model. The
    resolved YAML artifact keeps everything."""
    from searchlearn.stages.learn import learn_config
    from searchlearn.stages.search import search_config

    params = {key: value for key, value in flatten(cfg).items()
              if not key.startswith(("search.", "learn.", "prm.", "eval.scaling.", "policy.tiny."))}
    params.update(_dotted("search", search_config(cfg)))
    params.update(_dotted("learn", learn_config(cfg)))
    params.update(flatten_section("prm", cfg.prm) if cfg.prm.enabled else {"prm.enabled": False})
    params.update(flatten_section("eval.scaling", cfg.eval.scaling) if cfg.eval.scaling.enabled
                  else {"eval.scaling.enabled": False})
    if cfg.policy.source == "tiny":
        params.update(flatten_section("policy.tiny", cfg.policy.tiny))
    return params


def flatten_section(prefix: str, node) -> dict[str, object]:
    from omegaconf import OmegaConf

    return _dotted(prefix, OmegaConf.to_container(node, resolve=True))


def _dotted(prefix: str, tree: dict) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        out.update(_dotted(f"{prefix}.{key}", value) if isinstance(value, dict) else {f"{prefix}.{key}": value})
    return out


def close_abandoned_runs(client, experiment: str, run_dir: str) -> list[str]:
    """End the RUNNING parent runs of `run_dir` (and their RUNNING round runs) as KILLED."""
    running = client.search_runs([experiment], "attributes.status = 'RUNNING'", max_results=1000)
    parents = [r.info.run_id for r in running if r.data.tags.get(RUN_DIR_TAG) == run_dir]
    for r in running:
        if r.info.run_id in parents or r.data.tags.get("mlflow.parentRunId") in parents:
            client.set_terminated(r.info.run_id, status="KILLED")
    return parents


def _log_params(client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
        client.log_batch(run_id, params=items[i : i + 100])


def log_metrics(handle: dict, metrics: dict, step: int | None = None, run_id: str | None = None) -> None:
    from mlflow.entities import Metric

    client = mlflow_client(handle["uri"])
    now = int(time.time() * 1000)
    rows = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if _is_number(v)]
    for i in range(0, len(rows), 500):
        client.log_batch(run_id or handle["run_id"], metrics=rows[i : i + 500])


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---- round runs -------------------------------------------------------------------------

def start_round_run(handle: dict, round_index: int) -> str:
    """The round's child run, started when the round starts (its duration is the round's)."""
    client = mlflow_client(handle["uri"])
    run = client.create_run(
        handle["experiment_id"], run_name=f"round-{round_index}",
        tags={"mlflow.parentRunId": handle["run_id"], "searchlearn.round": str(round_index)},
    )
    client.log_param(run.info.run_id, "round", round_index)
    return run.info.run_id


def log_round(handle: dict, child: str, round_index: int, metrics: dict, refs: dict[str, dict],
              eval_sets: dict[str, dict] | None = None) -> None:
    """End round run `child`: its metrics (also on the parent, step = round, so each is
    a curve there), checkpoint references, the round's search data as a per-problem
    table and an MLflow dataset, a per-problem table per eval set (`eval_sets`: ref
    name -> the problems reference it evaluated), reranking and scaling tables."""
    from searchlearn.reporting import eval_k, round_description

    client = mlflow_client(handle["uri"])
    log_metrics(handle, metrics, step=round_index, run_id=child)
    log_metrics(handle, metrics, step=round_index)
    for name, ref in refs.items():
        client.log_dict(child, {"path": ref["path"], "sha256": ref["sha"]}, f"refs/{name}.json")
        client.set_tag(child, f"ref.{name}", ref["path"])
    tables = []
    if refs.get("search"):
        tables.append(log_search_data(client, child, Path(refs["search"]["path"]) / "results.jsonl", round_index))
    for name, problems in (eval_sets or {}).items():
        if name in refs:
            tables.append(log_eval_table(client, child, name, Path(refs[name]["path"]) / "records.jsonl",
                                         Path(problems["path"]) / "test.jsonl", eval_k([metrics])))
    if refs.get("rerank"):
        log_rerank(client, child, Path(refs["rerank"]["path"]) / "rerank_table.jsonl", round_index)
    if refs.get("scaling"):
        log_scaling(client, child, Path(refs["scaling"]["path"]) / "scaling_table.jsonl", round_index)
    client.set_tag(child, DESCRIPTION_TAG, round_description({**metrics, "round": round_index}, tables))
    client.set_terminated(child)


def log_search_data(client, run_id: str, path: Path, round_index: int) -> str:
    """The round's search as one row per problem: a table (`search/problems.json`), the
    same rows as the run's MLflow dataset input (its panel shows a few in the profile),
    and the raw JSONL with every candidate."""
    from mlflow.entities import DatasetInput, InputTag

    from searchlearn.round_tables import SEARCH_COLUMNS, columns, search_samples, search_table

    rows = search_table(path)
    table = columns(rows, SEARCH_COLUMNS)
    client.log_table(run_id, data=table, artifact_file="search/problems.json")
    dataset = _dataset(table, str(path), f"search-round-{round_index}", search_samples(rows))
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "search")])])
    client.log_artifact(run_id, str(path), artifact_path="search")
    return "search/problems.json"


def _dataset(table: dict[str, list], source: str, name: str, extra_profile: dict):
    """An MLflow dataset entity of `table` (one row per problem), its profile extended."""
    import warnings

    import mlflow
    import pandas as pd
    from mlflow.entities import Dataset

    with warnings.catch_warnings():  # a local path matches two equivalent source types
        warnings.filterwarnings("ignore", message="The specified dataset source")
        entity = mlflow.data.from_pandas(pd.DataFrame(table), source=source, name=name)._to_mlflow_entity()
    profile = {**json.loads(entity.profile or "{}"), **extra_profile}
    return Dataset(entity.name, entity.digest, entity.source_type, entity.source, entity.schema, json.dumps(profile))


def log_eval_table(client, run_id: str, name: str, records: Path, problems: Path, k: int | None) -> str:
    """One row per evaluated problem of eval set `name` (`eval`, `eval.handwritten`); its path."""
    from searchlearn.round_tables import EVAL_COLUMNS, columns, eval_table

    client.log_table(run_id, data=columns(eval_table(records, problems, k), EVAL_COLUMNS),
                     artifact_file=f"{name}/problems.json")
    return f"{name}/problems.json"


def log_evaluation(handle: dict, scores: dict, problems: dict) -> None:
    """A standalone evaluation (evaluate-model) on its run: metrics and the per-problem table."""
    from searchlearn.reporting import eval_k

    log_metrics(handle, scores)
    log_eval_table(mlflow_client(handle["uri"]), handle["run_id"], "eval", Path(scores["path"]) / "records.jsonl",
                   Path(problems["path"]) / "test.jsonl", eval_k([scores]))


def log_rerank(client, run_id: str, path: Path, round_index: int) -> None:
    """Best-of-N reranking table (accuracy per N and method) and its plot."""
    from searchlearn.reporting import rerank_figure

    table = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    client.log_table(run_id, data={k: [r[k] for r in table] for k in table[0]}, artifact_file="rerank/table.json")
    import matplotlib.pyplot as plt

    fig = rerank_figure(table, f"best-of-N reranking, round {round_index}")
    client.log_figure(run_id, fig, "rerank/accuracy_vs_n.png")
    plt.close(fig)


def log_scaling(client, run_id: str, path: Path, round_index: int) -> None:
    """Compute-matched comparison table (method, N, accuracy, tokens) and its plot."""
    from searchlearn.reporting import scaling_figure

    table = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not table:
        return
    client.log_table(run_id, data={k: [r[k] for r in table] for k in table[0]}, artifact_file="scaling/table.json")
    import matplotlib.pyplot as plt

    fig = scaling_figure(table, f"accuracy vs generated tokens, round {round_index}")
    client.log_figure(run_id, fig, "scaling/accuracy_vs_tokens.png")
    plt.close(fig)


# ---- the run's summary ------------------------------------------------------------------

def log_plots(handle: dict, history: Sequence[dict], champion: int | None = None) -> list[str]:
    """Accuracy per round and accuracy vs cumulative generated tokens; their paths."""
    from searchlearn.reporting import accuracy_figures

    client = mlflow_client(handle["uri"])
    import matplotlib.pyplot as plt

    paths = []
    for name, fig in accuracy_figures(history, champion).items():
        paths.append(f"{PLOT_DIR}/{name}.png")
        client.log_figure(handle["run_id"], fig, paths[-1])
        plt.close(fig)  # pyplot keeps every figure alive until closed
    return paths


def table_columns(rows: Iterable[dict]) -> dict[str, list]:
    """History rows as log_table columns, dots spelled as underscores (the UI's table
    viewer shows a dotted column as empty)."""
    rows = list(rows)
    keys = list(dict.fromkeys(k for r in rows for k in r))  # round 0 has no search/learn columns
    return {k.replace(".", "_"): [r.get(k) for r in rows] for k in keys}


def log_table(handle: dict, rows: Iterable[dict], name: str) -> None:
    mlflow_client(handle["uri"]).log_table(handle["run_id"], data=table_columns(rows), artifact_file=name)


def log_report(handle: dict, markdown: str, name: str = "report.md") -> None:
    """The run's report as an artifact and as the run's description (the Overview tab)."""
    client = mlflow_client(handle["uri"])
    client.log_text(handle["run_id"], markdown, name)
    if len(markdown) > MAX_DESCRIPTION:  # a tag's limit; MLflow would cut it anywhere
        markdown = markdown[:MAX_DESCRIPTION - 200].rsplit("\n", 1)[0] + f"\n\n... the full report is `{name}`."
    client.set_tag(handle["run_id"], DESCRIPTION_TAG, markdown)


def finish(handle: dict, status: str = "FINISHED") -> None:
    mlflow_client(handle["uri"]).set_terminated(handle["run_id"], status=status)
