"""Reward-model kinds (`prm.kind`) -> the function that trains one.

Every entry takes (init_dir, rows, train_cfg, out_dir, seed=0, eval_rows=None,
**kind_cfg), `kind_cfg` being the kind's own config section (`prm.<kind>`, if it
has one), writes a model directory that `reward.load_scorer(kind, dir)` reads, and
returns small metrics. Which rows a kind learns from (step or outcome labels) is
reward.labels.STEP_LABEL_KINDS. Kept apart from the scorer registry so that stages
which only score never depend on training code.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from searchlearn.reward.implicit_train import train_implicit
from searchlearn.reward.prm_train import train_prm

TRAINERS: dict[str, Callable[..., dict]] = {
    "prm": partial(train_prm, target="prm"),
    "orm": partial(train_prm, target="orm"),
    "verifier": partial(train_prm, target="verifier"),
    "implicit": partial(train_implicit, targets="outcome"),
    "implicit_step": partial(train_implicit, targets="steps"),
}
