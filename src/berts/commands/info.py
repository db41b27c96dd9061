"""`berts info DIR`: architecture, parameter count, config summary of a model directory."""
from __future__ import annotations

import json
from pathlib import Path

from berts.errors import UserError


def register(sub):
    p = sub.add_parser("info", help="show a model directory's architecture, parameters and config")
    p.add_argument("model", help="a berts or Hugging Face model directory, or a preset name")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def summary(path: str) -> dict:
    import berts
    from berts.model.heads import TASK_MODELS
    from berts.hf import ARCHITECTURES, BERTS_WEIGHTS_NAME, WEIGHTS_NAME, check_weights, read_config, save_format

    if Path(path).is_dir():
        config = read_config(path)
        raw = json.loads((Path(path) / "config.json").read_text())  # an object: read_config checked
        arch = (raw.get("architectures") or ["BertModel"])[0]
        files = sorted(p.name for p in Path(path).iterdir() if p.is_file())
    elif path in berts.preset_names():
        config, arch, raw, files = berts.preset(path), "BertModel", {}, []
    else:
        raise UserError(f"{path}: no such model directory or preset")
    import torch

    with torch.device("meta"):  # count without allocating
        model = TASK_MODELS[ARCHITECTURES.get(arch, "BertModel")](config)
    encoder = model if not hasattr(model, "bert") else model.bert
    weights = None
    if WEIGHTS_NAME in files or BERTS_WEIGHTS_NAME in files or "model.safetensors.index.json" in files:
        # open the weights (their headers): a truncated file or weights that do not fit the config
        # are an error here too, not a healthy-looking summary
        weights = check_weights(model, path)
    return {
        "path": str(path),
        "architecture": arch,
        "model_type": raw.get("model_type") or save_format(config, model),  # a preset: the format it saves as
        "parameters": model.num_parameters(),
        "encoder_parameters": encoder.num_parameters(),
        "embedding_parameters": encoder.num_parameters() - encoder.num_parameters(exclude_embeddings=True),
        "layers": config.num_hidden_layers, "hidden": config.hidden_size, "heads": config.num_attention_heads,
        "intermediate": config.intermediate_size, "embedding_size": config.emb_size,
        "share_layers": config.share_layers, "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_position_embeddings, "hidden_act": config.hidden_act,
        "num_labels": config.num_labels if "Classification" in arch else None,
        "id2label": config.id2label, "files": files, "weights": weights,
    }


def run(args) -> int:
    s = summary(args.model)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{s['path']}: {s['architecture']} ({s['model_type']})")
    print(f"  parameters      {s['parameters']:,} (encoder {s['encoder_parameters']:,}, "
          f"embeddings {s['embedding_parameters']:,})")
    print(f"  shape           L{s['layers']} H{s['hidden']} A{s['heads']} I{s['intermediate']} "
          f"E{s['embedding_size']} share={s['share_layers']}")
    print(f"  vocab           {s['vocab_size']:,}, max positions {s['max_position_embeddings']}, act {s['hidden_act']}")
    if s["id2label"]:
        print(f"  labels          {s['id2label']}")
    if s["files"]:
        print(f"  files           {', '.join(s['files'])}")
    w = s["weights"]
    if w is not None:
        print(f"  weights         {w['tensors']} tensors, every one fits the config")
        if w["missing"]:
            print(f"  not in weights  {len(w['missing'])} ({', '.join(w['missing'][:4])}"
                  f"{', ...' if len(w['missing']) > 4 else ''}): newly initialised when loaded")
        if w["unexpected"]:
            print(f"  unused weights  {len(w['unexpected'])} ({', '.join(w['unexpected'][:4])}"
                  f"{', ...' if len(w['unexpected']) > 4 else ''})")
    return 0
