"""Recipes: the runs that ``berts pretrain`` and ``berts finetune`` run, as library functions, so
that Python users build the same runs and the commands stay thin (flags -> config -> recipe -> fit)::

    cfg = load_config(PretrainConfig, "configs/pretrain-tiny.yaml", ["train.max_steps=100"])
    pretraining_run(cfg).fit()

    cfg = load_config(FinetuneConfig, None, ["model.init_from=runs/tiny/final", "data.train=train.tsv"])
    finetuning_run(cfg).fit()

Also the pieces evaluate/predict reuse: reading a table with a config's column settings, the
length check, the settings a fine-tuned directory keeps, loading a fine-tuned classifier.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from berts.errors import UserError

CLASSIFICATION_METRICS = ("accuracy", "f1", "f1_macro", "mcc", "loss")
REGRESSION_METRICS = ("pearson", "spearman", "mse", "loss")
SEQ2SEQ_METRICS = ("rouge_l", "bleu", "token_acc", "loss")
SETTINGS_KEY = "berts_finetune"  # config.json: how the data was read, for evaluate/predict


# ----------------------------------------------------------------------------- pretraining
def pretraining_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                    overwrite: bool = False):
    """The Trainer of a pretraining run: shards -> PretrainingDataset, the model from
    ``cfg.model`` (preset, config or init_from), MLM + the data's sentence-pair objective (+ SBO).
    ``log.out`` is claimed first (see claim_output): ``resume``/``resume_requested`` continue the
    run there, ``overwrite`` replaces an earlier run's outputs; anything else non-empty is refused."""
    from berts.data.dataset import PretrainingDataset
    from berts.train import distributed
    from berts.train.checkpoint import seed_all
    from berts.train.tasks import PretrainingTask
    from berts.train.trainer import Trainer

    d = cfg.data
    check_pretrain_config(cfg)
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "pretrain", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[cfg.model.init_from, cfg.model.config, cfg.model.tokenizer, d.shards, d.eval_shards],
                 dist=dist, no_checkpoint=resume is None)

    def dataset(path, transforms=True):
        if not Path(path).is_dir():
            raise UserError(f"{path}: no such shards directory (make one with `berts prepare`)")
        return PretrainingDataset(path, masking=d.masking, mask_prob=d.mask_prob,
                                  max_predictions_per_seq=d.max_predictions_per_seq, sbo=d.sbo,
                                  seed=cfg.train.seed, pad_to_multiple_of=d.pad_to_multiple_of,
                                  static_masking=d.static_masking, lm_objective=lm_objective(cfg),
                                  transforms=data_transforms(cfg) if transforms else ())

    train = dataset(d.shards)
    # the held-out MLM figures on clean text (a run with WSO is then comparable with one without);
    # the transforms' own metrics on a second, transformed copy
    evaluation = dataset(d.eval_shards, transforms=False) if d.eval_shards else None
    transformed = dataset(d.eval_shards) if d.eval_shards and data_transforms(cfg) else None
    seed_all(cfg.train.seed)  # the same initial weights on every rank and every run
    model, init_note = build_model(cfg, train.meta)
    tokenizer = load_data_tokenizer(cfg, train.meta)
    if d.objective == "electra":  # ELECTRA: the discriminator (model) + its generator (berts.electra)
        from berts.electra import make_generator
        from berts.train.tasks import ElectraPretrainingTask

        if d.sbo:
            raise UserError("data.objective electra trains the generator's MLM and the discriminator only: "
                            "set data.sbo: false")
        task = ElectraPretrainingTask(model, make_generator(model, cfg.electra.generator_size, cfg.model.init_from),
                                      train, evaluation, rtd_weight=cfg.electra.rtd_weight,
                                      eval_batches=d.eval_batches, eval_batch_size=cfg.train.eval_batch_size)
    else:
        task = PretrainingTask(model, train, evaluation, objective=pair_objective(cfg, train.meta),
                               eval_batches=d.eval_batches, eval_batch_size=cfg.train.eval_batch_size,
                               eval_transformed=transformed)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="pretrain")
    if init_note:
        trainer.print(init_note)
    if tokenizer is None:
        trainer.print("note: the data's tokenizer directory was not found (set model.tokenizer): "
                      "checkpoints will hold no tokenizer files")
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


def claim_output(cfg, kind: str, *, resume: bool, overwrite: bool, protect=(), dist=None,
                 no_checkpoint: bool = False) -> None:
    """``fileio.claim_output_dir(log.out)`` on rank 0, before anything is read or written; every
    rank raises the same one-line error (so that no rank waits for the others at DDP's start).
    ``no_checkpoint``: --resume was asked for and found none; then an earlier run's final/ or
    best/ is not replaced without --overwrite (a new run would start in their place)."""
    from berts.fileio import claim_output_dir

    if resume and overwrite:
        raise UserError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    error = None
    out = Path(cfg.log.out)
    done = [n + "/" for n in ("final", "best") if (out / n).exists()]
    if resume and no_checkpoint and done:
        raise UserError(f"{out}: --resume found no checkpoint to continue (train.keep_last 0, or the run ended "
                        f"before its first one), but an earlier run's {', '.join(done)} are there: pass "
                        "--overwrite instead of --resume to start a new run in their place, or choose another --out")
    if dist is None or dist.is_main:
        try:
            claim_output_dir(cfg.log.out, kind, resume=resume, overwrite=overwrite,
                             protect=[p for p in protect if p and Path(p).exists()])
        except UserError as exc:
            error = str(exc)
    if dist is not None:
        error = dist.broadcast(error)
    if error:
        raise UserError(error)


def check_pretrain_config(cfg) -> None:
    if not cfg.data.shards:
        raise UserError("no training data: set data.shards (or --data DIR), a directory from `berts prepare`")


def build_model(cfg, meta: dict):
    """(model, note) for pretraining from model.{preset, config, init_from, overrides} and the data's meta."""
    from berts.config import preset
    from berts.heads import BertForMaskedLM, BertForPreTraining
    from berts.hf import from_pretrained, load_config, read_config

    m = cfg.model
    if m.init_from:
        base = read_config(m.init_from)
    elif m.config:
        base = load_config(m.config)
    else:
        base = preset(m.preset or "tiny")
    changes = {"vocab_size": int(meta["vocab_size"])}
    if cfg.data.sbo:
        changes["span_boundary_objective"] = True
    structure = structure_extras(cfg, meta)
    if structure:  # BertForPreTraining's switches for ERNIE 2.0's heads and StructBERT's wso, saved in config.json
        changes["extra"] = {**base.extra, **structure}
    changes.update(m.overrides)
    if m.init_from and changes["vocab_size"] != base.vocab_size:
        raise UserError(f"{m.init_from}: vocabulary of {base.vocab_size} tokens, the data's has {meta['vocab_size']}")
    config = base.replace(**changes)
    seq = int(meta.get("max_seq_length", 0))
    if seq > config.max_position_embeddings:
        raise UserError(f"the data has sequences of {seq} tokens, more than the model's max_position_embeddings "
                        f"{config.max_position_embeddings} (set model.max_position_embeddings)")
    cls = BertForMaskedLM if pair_objective(cfg, meta) == "none" else BertForPreTraining
    if cfg.data.objective == "electra":  # the discriminator; its generator: electra.make_generator
        from berts.electra import ElectraForPreTraining as cls
    lm = lm_objective(cfg)
    if lm is not None:  # UniLM: the mode generation uses is saved in config.json (berts_lm_mode)
        from berts.heads import BertForUnifiedLM

        cls = BertForUnifiedLM
        config.extra.update(lm_extras(lm))
    if m.init_from:
        with warnings.catch_warnings():  # summarised below instead
            warnings.simplefilter("ignore")
            model = from_pretrained(cls, m.init_from, ignore_mismatched_sizes=m.ignore_mismatched_sizes,
                                    **{k: v for k, v in changes.items() if k != "vocab_size"})
        if lm is not None:
            model.config.extra.update(lm_extras(lm))
        new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
        note = f"; newly initialised: {', '.join(new)}" if new else ""
        return model, f"initialised from {m.init_from}: weights only, fresh optimizer and schedule{note}"
    return cls(config), None


def data_transforms(cfg) -> list:
    """The batch transforms (the data hook, berts.data.collate) the config asks for: ``data.wso``."""
    from berts.data.collate import TrigramShuffle

    if not cfg.data.wso:
        return []
    if lm_objective(cfg) is not None or cfg.data.objective == "electra":
        raise UserError(f"data.wso (StructBERT's word structural objective) trains BERT's MLM head; it does not "
                        f"combine with data.objective {cfg.data.objective}")
    if not 0.0 < cfg.data.wso_rate <= 1.0:
        raise UserError(f"data.wso_rate must be in (0, 1], got {cfg.data.wso_rate!r}")
    return [TrigramShuffle(cfg.data.wso_rate)]


def structure_extras(cfg, meta: dict) -> dict:
    """config.extra entries that switch on the structure objectives (objectives/structure.py)."""
    out = {}
    objective = pair_objective(cfg, meta)
    if objective in ("reorder", "distance"):
        out["berts_structure_objective"] = objective
    if cfg.data.wso:
        out["berts_wso"] = True
    return out


def lm_objective(cfg) -> str | None:
    """UniLM's objective (data.objective unilm / clm / seq2seq: see heads.BertForUnifiedLM), or None."""
    return cfg.data.objective if cfg.data.objective in ("unilm", "clm", "seq2seq") else None


def lm_extras(lm: str) -> dict:
    """config.json entries of a UniLM model: the mode generation runs in and how it reads the next
    token (``next``: the last position's next-token prediction; ``mask``: a [MASK] appended, as
    UniLM's masked objective was trained)."""
    return {"berts_lm_mode": "seq2seq" if lm == "seq2seq" else "left-to-right",
            "berts_lm_readout": "mask" if lm == "unilm" else "next"}


def pair_objective(cfg, meta: dict) -> str:
    """The sentence-pair objective trained: data.objective, checked against the shards' (auto: theirs)."""
    data_obj = meta.get("objective", "none")
    want = cfg.data.objective
    if lm_objective(cfg) is not None or want == "electra":
        return "none"  # UniLM and ELECTRA train no sentence-pair head (the pair's labels are dropped)
    if want == "auto":
        return data_obj
    if want != "none" and want != data_obj:
        raise UserError(f"data.objective is {want} but {cfg.data.shards} was prepared for {data_obj} "
                        f"(prepare again with --objective {want}, or set data.objective: none for MLM only)")
    return want


def load_data_tokenizer(cfg, meta: dict):
    """The tokenizer saved into every checkpoint: model.tokenizer, else the one the data was made with."""
    from berts.tokenizer import load_tokenizer

    path = cfg.model.tokenizer or meta.get("tokenizer", {}).get("path")
    if not path or not Path(path).exists():
        return None
    tok = load_tokenizer(path)
    if tok.vocab_size != int(meta["vocab_size"]):
        raise UserError(f"{path}: tokenizer of {tok.vocab_size} tokens, the data was made with {meta['vocab_size']}")
    return tok


# ----------------------------------------------------------------------------- distillation
def distillation_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                     overwrite: bool = False):
    """The Trainer of a distillation run (``berts distill``, a DistillConfig): DistilBERT or
    TinyBERT, general (data.shards) or task-specific (data.train); see berts.compress.distil."""
    from berts.compress.distil import distillation_run as run

    return run(cfg, resume, dist, resume_requested=resume_requested, overwrite=overwrite)


# ----------------------------------------------------------------------------- fine-tuning
def finetuning_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                   overwrite: bool = False):
    """The Trainer of a fine-tuning run: the tables of ``cfg.data`` -> ClassificationDataset, the
    model of ``model.init_from`` with a (new or kept) classification head, or a new model from
    ``model.preset``/``model.config`` and ``model.tokenizer`` (from scratch, the usual baseline),
    evaluation on data.dev. ``log.out`` is claimed first, as in pretraining_run."""
    from berts.data.classification import ClassificationDataset
    from berts.data.labels import LabelMap
    from berts.heads import BertForSequenceClassification
    from berts.tokenizer import load_tokenizer
    from berts.train import distributed
    from berts.train.checkpoint import seed_all
    from berts.train.tasks import ClassificationTask
    from berts.train.trainer import Trainer

    if cfg.train.early_exit:  # FastBERT's self-distillation: its own task and data rules
        from berts.compress.fastbert import early_exit_run

        return early_exit_run(cfg, resume, dist, resume_requested=resume_requested, overwrite=overwrite)
    d, m, t = cfg.data, cfg.model, cfg.train
    check_finetune_config(cfg)
    if d.task == "seq2seq":
        return seq2seq_run(cfg, resume, dist, resume_requested=resume_requested, overwrite=overwrite)
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "finetune", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[m.init_from, m.config, m.tokenizer, d.train, d.dev], dist=dist, no_checkpoint=resume is None)
    regression = d.task == "regression"
    tokenizer = load_tokenizer(m.tokenizer or m.init_from)
    train_examples, train_report = read_table(d.train, d)
    dev_examples, dev_report = read_table(d.dev, d) if d.dev else (None, None)
    label_map = None if regression else LabelMap.from_examples(train_examples)
    if label_map is not None:
        check_labels(label_map, d.train, "training")
    if dev_examples:
        dev_examples = drop_unknown_labels(dev_examples, label_map, dev_report, d.skip_bad_rows)
        if label_map is not None:
            check_labels(LabelMap.from_examples(dev_examples), d.dev, "evaluation")
    base = base_config(cfg, tokenizer)
    max_length = check_max_length(d.max_length, m.overrides.get("max_position_embeddings")
                                  or base.max_position_embeddings)
    train = ClassificationDataset(train_examples, tokenizer, label_map=label_map, max_length=max_length,
                                  regression=regression)
    dev = (ClassificationDataset(dev_examples, tokenizer, label_map=label_map, max_length=max_length,
                                 regression=regression) if dev_examples else None)

    changes = dict(m.overrides)
    if regression:
        changes.update(num_labels=1, problem_type="regression", id2label=None, label2id=None)
    else:
        changes.update(label_map.to_config())
    if regression and (t.label_smoothing or t.class_weights is not None or t.positive_label is not None):
        raise UserError("train.label_smoothing, train.class_weights and train.positive_label are for "
                        "classification, not regression")
    class_weights = None if regression else resolve_class_weights(t.class_weights, label_map, train.labels)
    positive = 1 if regression else resolve_positive(t.positive_label, label_map)
    seed_all(cfg.train.seed)
    if m.init_from:
        model = load_for_finetuning(m.init_from, changes, m.ignore_mismatched_sizes)
    else:
        model = BertForSequenceClassification(base.replace(**changes))
        model.loading_info = {"missing_keys": [], "unexpected_keys": []}
    model.config.extra[SETTINGS_KEY] = {
        "task": d.task, "text_column": d.text_column, "pair_column": d.pair_column, "label_column": d.label_column,
        "format": d.format, "header": d.header, "max_length": max_length}
    if not regression and t.positive_label is not None:
        model.config.extra[SETTINGS_KEY]["positive_label"] = t.positive_label  # f1 of `berts evaluate` too
    task = ClassificationTask(model, train, dev, regression=regression,
                              num_labels=1 if regression else len(label_map),
                              metric=cfg.train.metric if d.dev else None, eval_batch_size=cfg.train.eval_batch_size,
                              label_smoothing=0.0 if regression else t.label_smoothing, class_weights=class_weights,
                              positive=positive, label_names=None if regression else label_map.names)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="finetune")
    for report in (train_report, dev_report):
        if report is not None:
            trainer.print(report.summary())
    new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
    what = "regression" if regression else f"{len(label_map)} labels: {', '.join(label_map.names[:10])}"
    if resume is None and m.init_from:
        trainer.print(f"initialised from {m.init_from}: weights only, fresh optimizer and schedule; "
                      f"{what}" + (f"; new: {', '.join(new)}" if new else ""))
    elif resume is None:
        trainer.print(f"from scratch: every weight random ({m.config or 'preset ' + str(m.preset)}, "
                      f"seed {cfg.train.seed}), tokenizer {m.tokenizer}; {what}")
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


def seq2seq_run(cfg, resume=None, dist=None, *, resume_requested: str | None = None, overwrite: bool = False):
    """The Trainer of ``finetune --task seq2seq``: data.source_column / target_column of data.train
    (and data.dev) -> Seq2SeqDataset, a BertForUnifiedLM from model.init_from (any BERT with or
    without an MLM head: a new head is initialised) or from scratch, Seq2SeqTask (seq2seq mask,
    next-token loss on the target; evaluation: loss, token_acc, bleu, rouge_l)."""
    from berts.data.seq2seq import Seq2SeqDataset
    from berts.data.tables import read_examples
    from berts.heads import BertForUnifiedLM
    from berts.hf import from_pretrained
    from berts.tokenizer import load_tokenizer
    from berts.train import distributed
    from berts.train.checkpoint import seed_all
    from berts.train.tasks import Seq2SeqTask
    from berts.train.trainer import Trainer

    d, m = cfg.data, cfg.model
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "finetune", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[m.init_from, m.config, m.tokenizer, d.train, d.dev], dist=dist, no_checkpoint=resume is None)
    tokenizer = load_tokenizer(m.tokenizer or m.init_from)

    def read(path):
        return read_examples(path, text_column=d.source_column, text_pair_column=d.target_column, format=d.format,
                             header=d.header, skip_bad_rows=d.skip_bad_rows)

    train_examples, train_report = read(d.train)
    dev_examples, dev_report = read(d.dev) if d.dev else (None, None)
    base = base_config(cfg, tokenizer)
    max_length = check_max_length(d.max_length, m.overrides.get("max_position_embeddings")
                                  or base.max_position_embeddings)
    train = Seq2SeqDataset(train_examples, tokenizer, max_length=max_length)
    dev = Seq2SeqDataset(dev_examples, tokenizer, max_length=max_length) if dev_examples else None
    seed_all(cfg.train.seed)
    changes = {k: v for k, v in m.overrides.items() if k != "classifier_dropout"}
    if m.init_from:
        with warnings.catch_warnings():  # said below instead
            warnings.simplefilter("ignore")
            model = from_pretrained(BertForUnifiedLM, m.init_from, ignore_mismatched_sizes=m.ignore_mismatched_sizes,
                                    **changes)
    else:
        model = BertForUnifiedLM(base.replace(**changes))
        model.loading_info = {"missing_keys": [], "unexpected_keys": []}
    model.config.extra.update(lm_extras("seq2seq"))
    model.config.extra[SETTINGS_KEY] = {"task": "seq2seq", "source_column": d.source_column,
                                        "target_column": d.target_column, "format": d.format, "header": d.header,
                                        "max_length": max_length}
    task = Seq2SeqTask(model, train, dev, metric=cfg.train.metric if d.dev else None,
                       eval_batch_size=cfg.train.eval_batch_size, tokenizer=tokenizer)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="finetune")
    for report in (train_report, dev_report):
        if report is not None:
            trainer.print(report.summary())
    new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
    if resume is None:
        trainer.print(f"seq2seq from {m.init_from or 'scratch'}: {len(train)} pairs"
                      + (f"; new: {', '.join(new)}" if new else ""))
    return trainer


def check_finetune_config(cfg) -> None:
    d, m = cfg.data, cfg.model
    scratch = m.preset or m.config
    if m.init_from and scratch:
        raise UserError(f"model.init_from ({m.init_from}) starts from trained weights and model."
                        f"{'preset' if m.preset else 'config'} ({scratch}) from random ones (--from-scratch): "
                        "give one of them")
    if not m.init_from and not scratch:
        raise UserError("no model to fine-tune: give --model DIR (model.init_from), a berts or Hugging Face "
                        "BERT directory, or --from-scratch PRESET|CONFIG with --tokenizer DIR (random weights)")
    if m.init_from:
        path = Path(m.init_from)
        if not path.exists():
            raise UserError(f"{m.init_from}: no such model directory")
        if not path.is_dir():
            raise UserError(f"{m.init_from}: not a model directory (a file; --model takes a directory)")
    elif not m.tokenizer:
        raise UserError(f"--from-scratch {scratch}: give the tokenizer too (--tokenizer DIR, model.tokenizer): "
                        "the vocabulary sets the model's embedding size")
    if not d.train:
        raise UserError("no training data: give --train FILE (data.train)")
    check_metric(cfg.train.metric, d.task)
    if cfg.train.patience and not d.dev:
        raise UserError("train.patience (early stopping) needs an evaluation file: give --dev FILE")


def base_config(cfg, tokenizer):
    """The model config a fine-tuning run starts from: the model directory's, or (from scratch)
    the preset's / config's with the tokenizer's vocabulary size."""
    from berts.config import preset
    from berts.hf import load_config, read_config

    m = cfg.model
    if m.init_from:
        return read_config(m.init_from)
    base = load_config(m.config) if m.config else preset(m.preset)
    return base.replace(vocab_size=tokenizer.vocab_size)


def load_for_finetuning(directory, changes: dict, ignore_mismatched_sizes: bool):
    """BertForSequenceClassification from ``directory`` with ``changes`` (the labels) to its config.
    A weight whose shape does not fit is an error naming the weights, as in transformers, unless
    ``ignore_mismatched_sizes`` (then it is re-initialised and listed as new); a head the directory
    does not have is new (the usual case: a pretrained model, a new classifier)."""
    from berts.heads import BertForSequenceClassification
    from berts.hf import _normalise_keys, read_state_dict

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model = BertForSequenceClassification.from_pretrained(directory, ignore_mismatched_sizes=True, **changes)
    missing = model.loading_info["missing_keys"]
    if missing and not ignore_mismatched_sizes:
        saved = _normalise_keys(read_state_dict(directory), model)
        mismatched = [k for k in missing if k in saved]
        if mismatched:
            shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
            first = mismatched[0]
            expected = shapes.get(first)
            note = f" (the model expects {expected})" if expected is not None else ""
            raise UserError(
                f"{directory}: {len(mismatched)} weights do not fit the model its config.json describes: "
                f"{', '.join(mismatched[:4])}{', ...' if len(mismatched) > 4 else ''}; {first} has shape "
                f"{tuple(saved[first].shape)}{note}: check config.json, or pass --ignore-mismatched-sizes "
                f"(model.ignore_mismatched_sizes) to re-initialise them (e.g. a head with another number of labels)")
    return model


def check_labels(label_map, path, what: str) -> None:
    """A classifier learns nothing from one label, and a dev set of one label picks "best" at accuracy 1."""
    if len(label_map) < 2:
        raise UserError(f"{path}: every {what} example has the label '{label_map.names[0]}': classification "
                        "needs at least 2 labels (regression: --task regression)")


def resolve_class_weights(value, label_map, labels) -> list[float] | None:
    """train.class_weights -> [num_labels] weights in label-id order. ``balanced``: n / (k x n_c) over the
    training labels (scikit-learn's); a mapping: the labels named (others weigh 1)."""
    import numpy as np

    from berts.train.config import parse_class_weights

    if value is None:
        return None
    parsed = parse_class_weights(value)
    if parsed == "balanced":
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(label_map))
        return [float(len(labels) / (len(label_map) * c)) if c else 1.0 for c in counts]
    unknown = [name for name in parsed if name not in label_map]
    if unknown:
        raise UserError(f"train.class_weights: label {unknown[0]!r} is not in the training data "
                        f"(labels: {', '.join(label_map.names[:10])})")
    return [parsed.get(name, 1.0) for name in label_map.names]


def resolve_positive(name, label_map) -> int:
    """train.positive_label -> its label id (default: id 1, the second label in sorted order)."""
    if name is None:
        return 1
    if str(name) not in label_map:
        raise UserError(f"train.positive_label {name!r} is not a label of the training data "
                        f"(labels: {', '.join(label_map.names[:10])})")
    if len(label_map) != 2:
        raise UserError(f"train.positive_label is for 2 labels (binary F1); with {len(label_map)} labels f1 is "
                        "the macro F1")
    return label_map.label2id[str(name)]


def check_metric(metric: str | None, task: str) -> None:
    if metric is None:
        return
    choices = REGRESSION_METRICS if task == "regression" else SEQ2SEQ_METRICS if task == "seq2seq" \
        else CLASSIFICATION_METRICS
    if metric not in choices:
        raise UserError(f"train.metric {metric!r} is not a {task} metric (choose from {', '.join(choices)})")


def check_max_length(max_length: int | None, max_positions: int) -> int:
    """data.max_length, or its default: 128, or the model's positions if fewer."""
    if max_length is None:
        return min(128, max_positions)
    if max_length > max_positions:
        raise UserError(f"data.max_length {max_length} is more than the model's max_position_embeddings "
                        f"{max_positions}")
    return max_length


def read_table(path, d, *, labels: bool = True, task: str | None = None):
    """read_examples with a FinetuneData section's column settings: (examples, report)."""
    from berts.data.tables import read_examples

    return read_examples(
        path, text_column=d.text_column, text_pair_column=d.pair_column,
        label_column=d.label_column if labels else None, format=d.format, header=d.header,
        skip_bad_rows=d.skip_bad_rows, task=task or d.task)


def drop_unknown_labels(examples, label_map, report, skip: bool):
    """Rows whose label the model does not know: left in (the dataset then stops at the first,
    naming file and line) or, with skip_bad_rows, dropped and counted in the report."""
    if label_map is None or not skip:
        return examples
    kept = [e for e in examples if e.label is None or str(e.label) in label_map]
    dropped = len(examples) - len(kept)
    if dropped:
        report.skipped["unknown label"] = report.skipped.get("unknown label", 0) + dropped
        first = next(e for e in examples if e.label is not None and str(e.label) not in label_map)
        report.first_skipped.append(f"{first.path}:{first.line}: unknown label '{first.label}'")
        report.rows = len(kept)
    if not kept:
        raise UserError(f"{report.path}: no examples with a label the model knows ({report.summary()})")
    return kept


def load_classifier(directory, device: str = "auto"):
    """(model, tokenizer, label_map or None, settings) of a fine-tuned directory, ready to serve."""
    from berts.data.labels import LabelMap
    from berts.heads import BertForSequenceClassification
    from berts.hf import load
    from berts.tokenizer import load_tokenizer
    from berts.train.distributed import resolve_device

    model = load(directory)
    if not isinstance(model, BertForSequenceClassification):
        raise UserError(f"{directory}: a {type(model).__name__}, not a fine-tuned classification model "
                        "(fine-tune it first with `berts finetune`)")
    tokenizer = load_tokenizer(directory)
    label_map = None if model.is_regression else LabelMap.from_config(model.config)
    settings = dict(model.config.extra.get(SETTINGS_KEY) or {})
    model.to(resolve_device(device)).eval()
    # serving: linear layers on real tokens only, packed attention rows, last layer on [CLS] only
    model.set_fast_path(unpad=True, pack=True, sparse_output=True)
    return model, tokenizer, label_map, settings
