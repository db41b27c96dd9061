"""The run configuration's schema: one dataclass per section, each field typed and commented.

The split follows cramming: **model** (what the network is), **data**, **optim** and
**schedule** (hyper-parameters), **train** (batch, budget, evaluation, checkpoints),
**impl** (how it runs: device, precision, threads) and **log** (where and what is written).
Pretraining and fine-tuning share every section but ``data`` (and ``model`` is read a little
differently). Only the shapes live here: reading YAML files, ``--set`` and merging are
berts.config.loader; checks across keys and before a run are berts.config.validate.

    cfg = load_config(PretrainConfig, ["configs/model/tiny.yaml", "configs/budget/smoke.yaml"], ["optim.lr=1e-3"])
    save_config(cfg, out / "config.yaml")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from berts.objectives import registry


# ----------------------------------------------------------------------------- sections
# the objectives registry's names (a typo is an error naming file:line and the choices)
ObjectiveName = Literal[registry.names() + ("auto",)]  # type: ignore[valid-type]
OldObjectiveName = Literal[("auto", "none") + registry.names("sentence", "lm", "pair")]  # type: ignore[valid-type]


@dataclass
class ModelSection:
    """The network. Extra keys are BertConfig fields (``hidden_size: 64``) kept in ``overrides``."""
    preset: str | None = None  # a size preset (tiny, mini, small, ...)
    config: str | None = None  # or a config.json / model directory
    init_from: str | None = None  # weights to start from (fine-tuning: the pretrained model)
    tokenizer: str | None = None  # tokenizer directory (default: the data's / the model's)
    ignore_mismatched_sizes: bool = False  # init_from: re-initialise weights whose shape does not fit (else an error)
    overrides: dict[str, Any] = field(default_factory=dict)
    # BertConfig fields that are not model.* keys: the run's objectives set them (data.objectives)
    not_keys: ClassVar[tuple[str, ...]] = ("extra", "objectives", "lm_mode", "lm_readout")

    @staticmethod
    def extra_keys() -> type:
        """The class whose fields are this section's other keys (kept in ``overrides``): BertConfig.
        The loader asks (it knows no section by name); imported here, when a key is set, so that
        reading the schema does not import the model package."""
        from berts.model.config import BertConfig

        return BertConfig


@dataclass
class PretrainData:
    shards: str | None = None  # directory written by `berts prepare`
    eval_shards: str | None = None  # held-out shards for evaluation (optional)
    eval_batches: int = 20  # batches of eval_shards per evaluation
    # the pretraining objectives, names of berts.objectives.registry (mlm, nsp, sop, reorder, distance, sbo,
    # wso, unilm, clm, seq2seq, electra, a plug-in); auto in the list: the shards' sentence objective.
    # Under data, beside the old data.objective it replaces: the list decides what the data is made into
    # (the shards' sentence labels, sbo's span targets, wso's transform) as well as the heads.
    objectives: list[ObjectiveName] | None = None  # e.g. [mlm, sop, sbo] (berts pretrain --help lists them); null: the old keys'
    # the old spelling of ``objectives`` (used when that is unset): the sentence-level objective with mlm
    # (auto: the shards'; none: MLM only), or unilm / clm / seq2seq / electra alone
    objective: OldObjectiveName = "auto"  # old spelling of objectives: [mlm, X] (none: [mlm]); lm / pair kinds alone
    masking: str = "token"  # token | wwm | ngram | span | entity (see berts.data.masking)
    mask_prob: float = 0.15
    max_predictions_per_seq: int | None = 20  # null: ceil(mask_prob x sequence length)
    sbo: bool = False  # old spelling: sbo in objectives (SpanBERT's span boundary objective, with span masking)
    wso: bool = False  # old spelling: wso in objectives (StructBERT's word structural objective)
    wso_rate: float = 0.05  # old spelling of wso.rate (used when it differs from 0.05)
    static_masking: bool = False  # each example keeps one mask (seeded by its index), as Google's BERT
    num_workers: int = 2
    pad_to_multiple_of: int = 8
    bucket_size: int = 0  # length bucketing: sort by length within chunks of N global batches; 0 = off


@dataclass
class FinetuneData:
    train: str | None = None
    dev: str | None = None
    task: str = "classification"  # a name in berts.tasks.registry (checked by validate)
    format: Literal["auto", "tsv", "csv", "jsonl", "parquet", "datasets"] = "auto"
    header: bool | Literal["auto"] = "auto"
    text_column: str = "text"  # a header name or a 0-based index
    pair_column: str | None = None
    label_column: str = "label"
    source_column: str = "source"  # task seq2seq: the input text (a header name or a 0-based index)
    target_column: str = "target"  # task seq2seq: the text to generate
    max_length: int | None = None  # tokens per example; null: 128, or less if the model's positions are fewer
    skip_bad_rows: bool = False
    num_workers: int = 0


@dataclass
class OptimSection:
    # stable_adamw: AdamW with per-tensor update clipping (ModernBERT's; berts.train.optim.StableAdamW)
    name: Literal["adamw", "lamb", "stable_adamw"] = "adamw"
    lr: float | None = 1e-3  # peak learning rate; null (fine-tuning's default): by the model's size (train/optim.default_lr)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-6
    weight_decay: float = 0.01  # not applied to biases and LayerNorm
    grad_clip: float | None = 1.0  # max global gradient norm; null = no clipping


@dataclass
class ScheduleSection:
    # wsd_linear / wsd_sqrt: warmup-stable-decay, linear or 1-sqrt decay (ModernBERT's: wsd_sqrt)
    name: Literal["linear", "constant", "one_cycle", "wsd_linear", "wsd_sqrt"] = "linear"
    warmup: float = 0.06  # a fraction of the run (< 1) or a number of steps (>= 1)
    min_lr: float = 0.0  # the end of the decay, as a fraction of the peak
    decay: float = 0.1  # wsd_*: the decay phase, the last fraction of the run (after the stable phase)


@dataclass
class TrainSection:
    batch_size: int = 32  # global: all ranks and all accumulation micro-batches
    grad_accum: int = 1
    # batch-size warm-up (ModernBERT's): the step's micro-batches grow from 1 to grad_accum over this
    # fraction of the run (< 1) or number of steps (>= 1); 0 = off (berts.train.plan.RunPlan.micro_batches)
    batch_warmup: float = 0.0
    max_steps: int | None = None
    epochs: float | None = None  # instead of max_steps
    budget: str | None = None  # wall clock, e.g. 15m or 1h30m: the schedule follows the clock
    # (with max_steps/epochs too: the run ends at whichever comes first, the schedule follows the nearer)
    seed: int = 0
    # several processes: ddp (every rank a full replica) or fsdp (FSDP2 fully_shard: weights,
    # gradients and optimizer state sharded over ranks; train/fsdp.py). One process: ignored.
    strategy: Literal["ddp", "fsdp"] = "ddp"
    eval_every: int | None = None  # steps; null: each epoch (fine-tuning) / at the end (pretraining)
    eval_batch_size: int = 64
    metric: str | None = None  # the metric that picks the best checkpoint (fine-tuning)
    patience: int | None = None  # early stopping: evaluations without improvement
    save_every: int = 1000  # steps between checkpoints
    keep_last: int = 2  # resume checkpoints kept (plus best/ and final/); 0: none (the run cannot be resumed)


@dataclass
class FinetuneTrain(TrainSection):
    """Fine-tuning's train section: the shared keys plus the classification loss and F1 options.
    These shape the training run only: they are in OUT/config.yaml, not in the model's config.json."""
    label_smoothing: float = 0.0  # cross-entropy against (1 - e) one-hot + e / num_labels (as torch / transformers)
    class_weights: dict[str, float] | str | None = None  # balanced, {label: w} or "label=w,...": loss x weight
    positive_label: str | None = None  # the label F1 is of (2 labels); null: the second label in sorted order
    early_exit: bool = False  # --early-exit: train FastBERT exits on a fine-tuned classifier (compress/early_exit/exits.py)


@dataclass
class ImplSection:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto: bf16 (fp16 without bf16) on CUDA; bf16 on a CPU with AMX for hidden size >= 256, else fp32
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    threads: int | None = None  # torch CPU threads
    deterministic: bool = False
    init_scale: float = 65536.0  # fp16 loss scale to start from
    growth_interval: int = 2000  # fp16: steps without overflow before the scale doubles
    compile: bool = False  # torch.compile the model (falls back to the plain model with a warning)
    tune_malloc: bool = True  # CPU/glibc: keep freed memory instead of unmapping it every step


@dataclass
class LogSection:
    out: str = "runs/run"
    every: int = 20  # steps between metrics records (the only host syncs of the loop)
    progress: Literal["auto", "bar", "lines", "none"] = "auto"  # auto: a bar on a terminal, else lines
    tensorboard: bool = True
    plots: bool = True


@dataclass
class WsoSection:
    """StructBERT's word structural objective (objectives: [mlm, wso])."""
    rate: float = 0.05  # the share of trigrams of unmasked tokens that wso shuffles (StructBERT: 5%)


@dataclass
class ElectraSection:
    """ELECTRA (objectives: [electra]): the generator's size and the discriminator loss' weight."""
    generator_size: float = 0.25  # the generator's hidden / heads / intermediate sizes, a fraction of the model's
    rtd_weight: float = 50.0  # lambda: loss = generator MLM + lambda x discriminator BCE


@dataclass
class PretrainConfig:
    kind: ClassVar[str] = "pretrain"  # which checks berts.config.validate.check_run makes
    model: ModelSection = field(default_factory=lambda: ModelSection(preset="tiny"))
    data: PretrainData = field(default_factory=PretrainData)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    train: TrainSection = field(default_factory=lambda: TrainSection(max_steps=1000))
    impl: ImplSection = field(default_factory=ImplSection)
    log: LogSection = field(default_factory=lambda: LogSection(out="runs/pretrain"))
    electra: ElectraSection = field(default_factory=ElectraSection)
    wso: WsoSection = field(default_factory=WsoSection)


@dataclass
class TaskSection:
    """The chosen fine-tuning task's own options (``task: {crf: true}``): their names, types and
    defaults are declared by the tasks (berts.tasks.registry, ``TaskSpec.options``), kept in ``overrides``."""
    overrides: dict[str, Any] = field(default_factory=dict)
    default_note: ClassVar[str] = "default: the task's (berts.tasks.registry)"  # --show-config's note

    @staticmethod
    def extra_keys() -> type:
        """Every registered task's options as one dataclass (the registry is torch-free)."""
        from berts.tasks.registry import options_class

        return options_class()


@dataclass
class FinetuneConfig:
    kind: ClassVar[str] = "finetune"  # which checks berts.config.validate.check_run makes
    model: ModelSection = field(default_factory=lambda: ModelSection(overrides={}))
    data: FinetuneData = field(default_factory=FinetuneData)
    optim: OptimSection = field(default_factory=lambda: OptimSection(lr=None))  # null: by the model's size (train/optim.default_lr)
    schedule: ScheduleSection = field(default_factory=lambda: ScheduleSection(warmup=0.1))
    train: FinetuneTrain = field(default_factory=lambda: FinetuneTrain(epochs=3, save_every=500, keep_last=1))
    impl: ImplSection = field(default_factory=ImplSection)
    log: LogSection = field(default_factory=lambda: LogSection(out="runs/finetune", every=10))
    task: TaskSection = field(default_factory=TaskSection)


# ----------------------------------------------------------------------------- distillation
@dataclass
class DistillSection:
    method: str = "distilbert"  # a name in berts.compress.registry (distilbert, tinybert, logit-mse, ...)
    teacher: str | None = None  # the teacher's directory (frozen); task distillation: a fine-tuned classifier
    student_layers: list[int] | None = None  # the student = the teacher's embeddings + these layers (0-based)
    # a new student of model.preset / model.config's shape: random weights, or cut out of the teacher by
    # activation importance on the first batches of the data (berts.compress.prune; Minitron's pruning)
    student_init: Literal["random", "prune"] = "random"
    prune_examples: int = 1024  # prune: the training examples whose activations rank the teacher's units
    temperature: float | None = None  # soft targets' temperature; null: 2 (distilbert), 1 (tinybert)
    alpha_ce: float = 5.0  # distilbert: soft-target loss weight
    alpha_mlm: float = 2.0  # distilbert: the student's own loss (MLM; task mode: the hard labels)
    alpha_cos: float = 1.0  # distilbert: cosine loss on the last hidden states (real tokens)
    alpha_emb: float = 1.0  # tinybert: embedding-layer MSE
    alpha_att: float = 1.0  # tinybert: attention-score MSE (summed over the mapped layers)
    alpha_hidden: float = 1.0  # tinybert: hidden-state MSE (summed over the mapped layers)
    alpha_pred: float = 1.0  # tinybert: prediction-layer soft cross-entropy (task mode)
    stage: Literal["auto", "intermediate", "prediction", "all"] = "auto"  # tinybert; auto: intermediate (general), all (task)


@dataclass
class DistillData(FinetuneData):
    shards: str | None = None  # general distillation: a directory from `berts prepare` (else train: a labelled file)
    masking: str = "token"  # general distillation's MLM masking (see berts.data.masking)
    mask_prob: float = 0.15
    max_predictions_per_seq: int | None = 20
    pad_to_multiple_of: int = 8


@dataclass
class DistillConfig:
    kind: ClassVar[str] = "distill"  # which checks berts.config.validate.check_run makes
    model: ModelSection = field(default_factory=lambda: ModelSection(overrides={}))  # the student (init_from: a student directory)
    distill: DistillSection = field(default_factory=DistillSection)
    data: DistillData = field(default_factory=DistillData)
    optim: OptimSection = field(default_factory=lambda: OptimSection(lr=5e-5))
    schedule: ScheduleSection = field(default_factory=lambda: ScheduleSection(warmup=0.1))
    train: TrainSection = field(default_factory=lambda: TrainSection(epochs=3, save_every=500, keep_last=1))
    impl: ImplSection = field(default_factory=ImplSection)
    log: LogSection = field(default_factory=lambda: LogSection(out="runs/distill", every=10))


# BertConfig fields that the run's objectives set (data.objectives), not model.* keys
OBJECTIVE_FIELDS = ModelSection.not_keys[1:]


# ----------------------------------------------------------------------------- old import paths
# The loader and the checks lived in this file; code and notes that import them from here still work.
from berts.config.loader import (  # noqa: F401
    apply_dict,
    coerce,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    parse_set,
    read_yaml,
    save_config,
    set_key,
    set_value,
    show_config,
)
from berts.config.loader import set_value as _set_value  # noqa: F401
from berts.config.validate import parse_class_weights, parse_duration, validate  # noqa: F401
