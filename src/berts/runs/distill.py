"""The distillation run (``berts distill``): the teacher, the student, the data and the Task of the
method named by ``distill.method`` (berts.compress.registry), handed to the Trainer.

    cfg = load_config(DistillConfig, None, ["distill.teacher=runs/sst2/best", "data.train=train.tsv",
                                            "distill.student_layers=[0,2,4]"])
    distillation_run(cfg).fit()
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

from berts.compress import registry
from berts.compress.students import (
    encoder_of,
    load_teacher,
    parse_layers,
    student_from_teacher,
)
from berts.config.validate import check_distill_config
from berts.errors import UserError
from berts.serve.tagger import is_tagger
from berts.compress.transforms import prune
from berts.config.schema import FinetuneData
from berts.data.classification import ClassificationDataset
from berts.data.dataset import PretrainingDataset
from berts.data.labels import LabelMap, drop_unknown_labels
from berts.data.tables import check_max_length
from berts.data.tables import read_table
from berts.data.tagging import check_labels, read_tagged
from berts.hf import load_config
from berts.model.config import preset
from berts.model.encoder import BertModel
from berts.model.heads import BertForMaskedLM, BertForSequenceClassification
from berts.runs.common import claim_output
from berts.runs.finetune import load_for_finetuning
from berts.tasks.classification import ClassificationTask
from berts.tasks.qa import BertForQuestionAnswering, distill_data
from berts.tasks.token_classification import BertForTokenClassification
from berts.tasks.token_classification import TAGGING_KEY, TaggingDataset, TokenClassificationTask
from berts.tokenizer.wordpiece import load_tokenizer
from berts.train import distributed
from berts.train.checkpoint import seed_all
from berts.train.trainer import Trainer


# ----------------------------------------------------------------------------- the run
def distillation_run(cfg, resume=None, dist=None, *, resume_requested=None, overwrite: bool = False):
    """The Trainer of a distillation run (``berts distill``): the teacher of ``distill.teacher``
    (frozen), the student (``distill.student_layers``: the teacher's layers; ``model.init_from``:
    a student directory, e.g. a general-distilled one; ``model.preset`` / ``model.config``: new
    random weights), general distillation on ``data.shards`` or task distillation on
    ``data.train`` (+ ``data.dev``: evaluation, best/), with ``distill.method``."""

    k, d, m = cfg.distill, cfg.data, cfg.model
    check_distill_config(cfg)
    method, general = registry.get(k.method), bool(d.shards)
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "distill", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[k.teacher, m.init_from, m.config, d.shards, d.train, d.dev], dist=dist,
                 no_checkpoint=resume is None)
    qa = method.name == "qa-logits"  # extractive QA: its own teacher, data and student class (tasks/qa.py)
    tagging = not general and not qa and is_tagger(k.teacher)  # a token-classification teacher (NER)
    if tagging and not method.tagging:
        tagged = ", ".join(n for n, x in registry.METHODS.items() if x.tagging)
        raise UserError(f"{k.teacher}: a token-classification teacher; --method {method.name} distils classifiers "
                        f"(for taggers: {tagged})")
    need = method.general if general else ("qa" if qa else "tagger" if tagging else "classifier")
    teacher = load_teacher(k.teacher, need=need)
    tokenizer = load_tokenizer(m.tokenizer or k.teacher)
    if tokenizer.vocab_size != teacher.config.vocab_size:
        raise UserError(f"{m.tokenizer or k.teacher}: tokenizer of {tokenizer.vocab_size} tokens, the teacher's "
                        f"vocabulary has {teacher.config.vocab_size}")

    evaluator, dev, label_names = None, None, None
    if general:

        if not Path(d.shards).is_dir():
            raise UserError(f"{d.shards}: no such shards directory (make one with `berts prepare`)")
        train = PretrainingDataset(d.shards, masking=d.masking, mask_prob=d.mask_prob,
                                   max_predictions_per_seq=d.max_predictions_per_seq, seed=cfg.train.seed,
                                   pad_to_multiple_of=d.pad_to_multiple_of)
        if int(train.meta["vocab_size"]) != teacher.config.vocab_size:
            raise UserError(f"{d.shards}: prepared with a vocabulary of {train.meta['vocab_size']} tokens, the "
                            f"teacher's has {teacher.config.vocab_size} (prepare with the teacher's tokenizer)")
        cls = BertForMaskedLM if method.general == "mlm" else BertModel
        if method.general == "encoder":  # the encoder alone: an MLM head would compute [B, S, vocab] logits for nothing
            teacher = encoder_of(teacher)
    elif qa:

        train, dev, evaluator = distill_data(cfg, teacher, tokenizer)
        cls = BertForQuestionAnswering
    elif tagging:

        train, dev, evaluator, label_names = tagging_data(cfg, teacher, tokenizer)
        cls = BertForTokenClassification
    else:
        teacher_columns(d, teacher)  # as `berts predict` does: the teacher's column settings where none is given
        train, dev, evaluator, label_names = classification_data(cfg, teacher, tokenizer)
        cls = BertForSequenceClassification

    seed_all(cfg.train.seed)  # the same student (and projection) on every rank and every run
    student, note = build_student(cfg, teacher, cls, general, data=train)
    if evaluator is not None:
        evaluator.model = student
    if qa:  # the teacher's QA settings (windows, threshold) and task go with the student
        student.config.finetune_data = {**(teacher.config.finetune_data or {}), "task": "qa",
                                        "max_length": train.max_length}
    elif tagging:  # the teacher's tag settings, and its CRF (the student's emissions learn the teacher's)
        student.config.finetune_data = {**(teacher.config.finetune_data or {}), "max_length": train.max_length}
        if teacher.crf is not None:
            student.set_crf(copy.deepcopy(teacher.crf), teacher.crf_scheme)
    elif not general:  # how `berts evaluate` / `berts predict` read a table for the student
        student.config.finetune_data = {
            "task": "classification", "text_column": d.text_column, "pair_column": d.pair_column,
            "label_column": d.label_column, "format": d.format, "header": d.header, "max_length": train.max_length}
    # the distill keys the method left null take its defaults (temperature: 2 DistilBERT, 1 TinyBERT)
    k = copy.copy(k)  # the config itself keeps its nulls (config.yaml says what was asked)
    for key, value in method.defaults.items():
        if getattr(k, key) is None:
            setattr(k, key, value)
    task = method.task_class().from_config(k, student, teacher, train, dev, mode="general" if general else "task",
                                           evaluator=evaluator,
                                           metric=(cfg.train.metric or ("f1" if qa or tagging else "accuracy"))
                                           if evaluator is not None else None)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="distill")
    if resume is None:
        trainer.print(f"teacher {k.teacher} ({type(teacher).__name__}, {teacher.config.num_hidden_layers} layers, "
                      f"hidden {teacher.config.hidden_size}, frozen); student {note} "
                      f"({student.config.num_hidden_layers} layers, hidden {student.config.hidden_size}, "
                      f"{student.num_parameters():,} parameters)")
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


def build_student(cfg, teacher, cls, general: bool, data=None):
    """(student, what it is) from the config's one student source; ``data`` (the training dataset)
    gives --student-init prune its batches."""

    k, m = cfg.distill, cfg.model
    labels = {} if general else {key: getattr(teacher.config, key) for key in ("num_labels", "id2label", "label2id")}
    if k.student_layers:
        layers = parse_layers(k.student_layers)
        student = student_from_teacher(encoder_of(teacher) if cls.__name__ == "BertModel" else teacher, layers, cls,
                                       **m.overrides)
        return student, f"from the teacher's embeddings and layers {','.join(map(str, layers))}"
    if m.init_from:
        if cls.__name__ == "BertForSequenceClassification":
            student = load_for_finetuning(m.init_from, {**labels, **m.overrides}, m.ignore_mismatched_sizes)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                student = cls.from_pretrained(m.init_from, **m.overrides)
        if student.config.vocab_size != teacher.config.vocab_size:
            raise UserError(f"{m.init_from}: a vocabulary of {student.config.vocab_size} tokens, the teacher's "
                            f"has {teacher.config.vocab_size}")
        return student, f"from {m.init_from}"
    base = load_config(m.config) if m.config else preset(m.preset)
    # what the student must share with the teacher (its ids, positions and labels); a --set of one of
    # them to another value is refused (it was a TypeError: the key given twice)
    fixed = {"vocab_size": teacher.config.vocab_size, "max_position_embeddings": teacher.config.max_position_embeddings,
             "type_vocab_size": teacher.config.type_vocab_size, **labels}
    for key, value in m.overrides.items():
        if key in fixed and value != fixed[key]:
            raise UserError(f"--set model.{key}={value}: a distilled student has the teacher's {key} "
                            f"({fixed[key]}); leave it out")
    config = base.replace(**{**m.overrides, **fixed})
    if k.student_init == "prune":

        if cls.__name__ not in ("BertModel", "BertForSequenceClassification"):
            raise UserError("--student-init prune is for TinyBERT's general distillation or task distillation "
                            "(a classifier teacher); DistilBERT students start from --student-layers")
        source = encoder_of(teacher) if cls.__name__ == "BertModel" else teacher
        if k.prune_examples < 1:
            raise UserError(f"distill.prune_examples {k.prune_examples}: at least 1")
        student, layers, n = prune(source, config, data, examples=k.prune_examples)
        return student, (f"pruned from the teacher (layers {','.join(map(str, layers))}, activations of the first "
                         f"{n} training examples)")
    return cls(config), f"random ({m.config or 'preset ' + m.preset}, seed {cfg.train.seed})"


COLUMN_KEYS = ("text_column", "pair_column", "label_column", "format", "header")


def teacher_columns(d, teacher) -> list[str]:
    """Task distillation reads its tables as the teacher was fine-tuned to (``berts_finetune`` in its
    config.json), as `berts predict` does: each column setting left at its default takes the
    teacher's. Returns the keys taken. (A flag given equal to the default counts as not given.)"""

    settings = teacher.config.finetune_data or {}
    default, taken = FinetuneData(), []
    for key in COLUMN_KEYS:
        if key in settings and getattr(d, key) == getattr(default, key) and settings[key] != getattr(d, key):
            setattr(d, key, settings[key])
            taken.append(key)
    return taken


def tagging_data(cfg, teacher, tokenizer):
    """(train, dev, evaluator, label names) of a token-classification teacher: the tagged files
    read and windowed as `berts finetune --task token-classification` did for the teacher (its tag
    column, stride, sub-token rule), tags it does not know an error naming file:line."""

    d = cfg.data
    labels = teacher.labels
    opts = (teacher.config.finetune_data or {}).get(TAGGING_KEY) or {}
    max_length = check_max_length(d.max_length, teacher.config.max_position_embeddings)

    def dataset(path):
        sentences = read_tagged(path, tag_column=int(opts.get("tag_column", -1)))
        check_labels(sentences, labels)
        return TaggingDataset([s.tokens for s in sentences], tokenizer, labels, [s.tags for s in sentences],
                              max_length=max_length, stride=int(opts.get("stride", 32)),
                              label_all_subtokens=bool(opts.get("label_all_subtokens", False)))

    train = dataset(d.train)
    train.max_length = max_length
    dev = dataset(d.dev) if d.dev else None
    evaluator = None if dev is None else TokenClassificationTask(
        teacher, None, dev, scheme=opts.get("scheme") or teacher.crf_scheme, eval_batch_size=cfg.train.eval_batch_size)
    return train, dev, evaluator, labels


def classification_data(cfg, teacher, tokenizer):
    """(train, dev, evaluator, label names) of task distillation: the tables read as `berts
    finetune` reads them, labelled with the teacher's labels (a label it does not know is an error)."""

    d = cfg.data
    label_map = LabelMap.from_config(teacher.config)
    max_length = check_max_length(d.max_length, teacher.config.max_position_embeddings)
    examples, _ = read_table(d.train, d)
    unknown = sorted({str(e.label) for e in examples if str(e.label) not in label_map})
    if unknown:
        raise UserError(f"{d.train}: label {unknown[0]!r} is not one of the teacher's "
                        f"({', '.join(label_map.names[:10])})")
    train = ClassificationDataset(examples, tokenizer, label_map=label_map, max_length=max_length)
    dev = evaluator = None
    if d.dev:
        dev_examples, report = read_table(d.dev, d)
        dev_examples = drop_unknown_labels(dev_examples, label_map, report, d.skip_bad_rows)
        dev = ClassificationDataset(dev_examples, tokenizer, label_map=label_map, max_length=max_length)
        evaluator = ClassificationTask(teacher, None, dev, num_labels=len(label_map),
                                       eval_batch_size=cfg.train.eval_batch_size, metric=cfg.train.metric,
                                       label_names=label_map.names)
    return train, dev, evaluator, label_map.names
