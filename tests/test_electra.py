"""ELECTRA (berts.model.electra): the discriminator and the generator are transformers' ElectraForPreTraining
and ElectraForMaskedLM (both ways, same outputs); the replaced-token step (labels, the loss by hand,
no gradient through sampling, shared embeddings, the sampler); `berts pretrain --set
data.objective=electra` end to end (loss falls, directories transformers loads, bit-exact resume
after SIGKILL) and `berts finetune --model` an ELECTRA directory."""
import json
import random

import pytest
import torch
from train_utils import RUN, SLOW_STEPS, cli, kill_after_first_checkpoint, pretrain_args, shards, spawn, weights  # noqa: F401

import berts
from berts.model.config import BertConfig
from berts.model.electra import (ElectraForMaskedLM, ElectraForPreTraining, SamplingNoise, corrupt, generator_config,
                           make_generator, replaced_token_step, sample_tokens, tie_embeddings)

transformers = pytest.importorskip("transformers")

SMALL = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
ELECTRA = ["data.objective=electra"]


def perturbed(model, seed=0):
    """Every parameter moved off its initial value (zero biases, unit LayerNorms would hide mistakes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def padded_batch(vocab=97, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    return ids, mask, types * mask


def hf_config(**changes):
    d = {k: v for k, v in SMALL.items()}
    d.update(changes)
    d.setdefault("embedding_size", d["hidden_size"])
    return transformers.ElectraConfig(**d)


# ----------------------------------------------------------------------------- Hugging Face, both ways
@pytest.mark.parametrize("embedding_size", [None, 16])
def test_discriminator_saved_by_berts_loads_in_transformers(tmp_path, embedding_size):
    model = perturbed(ElectraForPreTraining(BertConfig(**SMALL, embedding_size=embedding_size)))
    model.save_pretrained(tmp_path / "d")
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    assert config["model_type"] == "electra" and config["architectures"] == ["ElectraForPreTraining"]
    assert config["embedding_size"] == (embedding_size or 32)
    names = set(weights(tmp_path / "d"))
    assert "discriminator_predictions.dense_prediction.weight" in names
    assert ("electra.embeddings_project.weight" in names) == (embedding_size is not None)
    assert "electra.encoder.layer.1.attention.self.query.weight" in names
    hf = transformers.ElectraForPreTraining.from_pretrained(tmp_path / "d").eval()
    ids, mask, types = padded_batch()
    labels = (torch.arange(ids.numel()).view_as(ids) % 3 == 0).long()
    ours = model(ids, mask, types, labels=labels)
    theirs = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    real = mask == 1
    assert (ours.logits[real] - theirs.logits[real]).abs().max() < 1e-5
    assert abs(ours.loss.item() - theirs.loss.item()) < 1e-5
    again = berts.load(tmp_path / "d")  # and berts reloads it exactly, as the same class
    assert type(again) is ElectraForPreTraining
    assert torch.equal(again.eval()(ids, mask, types).logits, model(ids, mask, types).logits)


@pytest.mark.parametrize("embedding_size", [32, 16])
def test_discriminator_saved_by_transformers_loads_in_berts(tmp_path, embedding_size):
    torch.manual_seed(1)
    hf = perturbed(transformers.ElectraForPreTraining(hf_config(embedding_size=embedding_size)), 1)
    hf.save_pretrained(tmp_path / "d")
    model = berts.load(tmp_path / "d")
    assert type(model) is ElectraForPreTraining and not model.loading_info["missing_keys"]
    assert not model.loading_info["unexpected_keys"]
    model.eval()
    ids, mask, types = padded_batch()
    real = mask == 1
    diff = model(ids, mask, types).logits[real] - hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[real]
    assert diff.abs().max() < 1e-5


def test_generator_both_ways(tmp_path):
    disc = BertConfig(**SMALL)
    gen = perturbed(ElectraForMaskedLM(generator_config(disc, 0.25)))  # H 8, E 32: embeddings_project
    assert gen.config.hidden_size == 8 and gen.config.embedding_size == 32 and gen.config.num_hidden_layers == 2
    gen.save_pretrained(tmp_path / "g")
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert config["architectures"] == ["ElectraForMaskedLM"] and config["embedding_size"] == 32
    hf = transformers.ElectraForMaskedLM.from_pretrained(tmp_path / "g").eval()
    ids, mask, types = padded_batch()
    real = mask == 1
    ours = gen(ids, mask, types).logits
    theirs = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    assert ours.shape == theirs.shape == (3, 12, 97) and (ours[real] - theirs[real]).abs().max() < 1e-5
    # sparse logits at the targets equal the dense ones there
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5] = 7, 9
    sparse = gen(ids, mask, types, labels=labels)
    assert torch.allclose(sparse.logits, ours[labels != -100], atol=1e-5)
    assert abs(sparse.loss.item() - float(hf(input_ids=ids, attention_mask=mask, token_type_ids=types,
                                             labels=labels).loss.item())) < 1e-5
    # transformers -> berts
    torch.manual_seed(2)
    hf2 = perturbed(transformers.ElectraForMaskedLM(hf_config(hidden_size=16, num_attention_heads=2,
                                                              intermediate_size=32, embedding_size=32)), 2)
    hf2.save_pretrained(tmp_path / "g2")
    back = berts.load(tmp_path / "g2")
    assert type(back) is ElectraForMaskedLM and not back.loading_info["missing_keys"]
    diff = back.eval()(ids, mask, types).logits[real] - hf2(input_ids=ids, attention_mask=mask,
                                                           token_type_ids=types).logits[real]
    assert diff.abs().max() < 1e-5


def test_electra_refuses_what_its_format_cannot_say():
    with pytest.raises(berts.UserError, match="ELECTRA's directory format has no share_layers: all"):
        ElectraForPreTraining(BertConfig(**SMALL, share_layers="all"))


# ----------------------------------------------------------------------------- the step
def pair(seed=0, **changes):
    torch.manual_seed(seed)
    disc = ElectraForPreTraining(BertConfig(**{**SMALL, **changes}))
    gen = make_generator(disc, 0.25)
    tie_embeddings(disc, gen)
    return disc, gen


def test_generator_size_and_shared_embeddings():
    disc, gen = pair()
    g = gen.config
    assert (g.hidden_size, g.num_attention_heads, g.intermediate_size, g.num_hidden_layers) == (8, 1, 16, 2)
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm"):
        assert getattr(gen.bert.embeddings, name) is getattr(disc.bert.embeddings, name)
    assert gen.mlm.word_embeddings[0].weight is disc.bert.embeddings.word_embeddings.weight
    both = torch.nn.ModuleDict({"model": disc, "generator": gen})
    # one set of parameters for the optimizer: the shared ones once
    assert len(list(both.parameters())) == len(list(disc.parameters())) + len(list(gen.parameters())) - 5
    odd = generator_config(BertConfig(**{**SMALL, "hidden_size": 64, "num_attention_heads": 8}), 0.35)
    assert (odd.hidden_size, odd.num_attention_heads) == (22, 2)  # 8 x 0.35 = 2.8 -> 3 heads, 22 % 3: 2


def test_corrupt_labels_by_hand():
    ids = torch.tensor([[2, 4, 11, 4, 3, 0], [2, 13, 4, 3, 0, 0]])  # 4 = [MASK] at the masked positions
    positions = torch.tensor([1, 3, 8])  # flat: row 0 cols 1, 3; row 1 col 2
    originals = torch.tensor([10, 12, 14])
    sampled = torch.tensor([10, 20, 21])  # the first sample equals the original: "original"
    fake, labels = corrupt(ids, positions, originals, sampled)
    assert fake.tolist() == [[2, 10, 11, 20, 3, 0], [2, 13, 21, 3, 0, 0]]
    assert labels.tolist() == [[0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0]]


def test_sampler_draws_the_softmax():
    logits = torch.tensor([[0.0, 1.0, 2.0, -30.0, 0.5]]).repeat(200_000, 1)
    u = torch.rand(200_000, generator=torch.Generator().manual_seed(0))
    ids = sample_tokens(logits, u)
    freq = torch.bincount(ids, minlength=5).float() / len(ids)
    p = torch.softmax(logits[0], -1)
    assert (freq - p).abs().max() < 0.004  # ~ 4 standard errors at 200k draws
    assert int((ids == 3).sum()) == 0  # exp(-30): never
    assert sample_tokens(logits[:3], torch.tensor([0.0, 0.999999, 0.5])).tolist() == [0, 4, 2]  # inverse CDF


def mlm_batch(seed=0):
    """A masked batch as the collator gives it (15% of the real tokens, [MASK] there)."""
    ids, mask, types = padded_batch(seed=seed)
    g = torch.Generator().manual_seed(seed)
    pick = (torch.rand(ids.shape, generator=g) < 0.3) & (mask == 1)
    pick[0, 1] = True
    positions = pick.reshape(-1).nonzero().squeeze(1)
    originals = ids.reshape(-1)[positions].clone()
    masked = ids.clone().reshape(-1)
    masked[positions] = 4
    return {"input_ids": masked.view_as(ids), "attention_mask": mask, "token_type_ids": types,
            "mlm_positions": positions, "mlm_labels": originals,
            "rtd_uniform": torch.rand(positions.shape, generator=g)}, ids


def test_step_labels_and_loss_by_hand():
    disc, gen = pair()
    perturbed(disc), perturbed(gen, 1)
    batch, original = mlm_batch()
    losses, metrics, x = replaced_token_step(disc, gen, batch, rtd_weight=50.0)
    positions = batch["mlm_positions"]
    # the samples are the inverse CDF of the generator's softmax at the batch's uniforms
    gen_logits = gen(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits  # dense [B, S, V]
    flat_logits = gen_logits.reshape(-1, 97)[positions]
    cdf = torch.softmax(flat_logits, -1).cumsum(-1)
    by_hand = torch.tensor([int((cdf[i] <= u).sum()) for i, u in enumerate(batch["rtd_uniform"].tolist())])
    assert torch.equal(x["sampled"], by_hand)
    # the discriminator input: the original tokens, the samples at the masked positions
    expected = original.reshape(-1).clone()
    expected[positions] = by_hand
    assert torch.equal(x["input_ids"].reshape(-1), expected)
    masked = torch.zeros(original.numel(), dtype=torch.bool)
    masked[positions] = True
    labels = x["labels"].reshape(-1)
    assert torch.equal(labels[~masked], torch.zeros_like(labels[~masked]))  # 0 wherever nothing was masked
    assert torch.equal(labels[masked], (by_hand != original.reshape(-1)[positions]).long())
    # loss = generator CE at the masked positions + 50 x mean BCE over the real tokens
    ce = -torch.log_softmax(flat_logits, -1)[torch.arange(len(positions)), batch["mlm_labels"]].mean()
    z = disc(x["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits[batch["attention_mask"] == 1]
    y = x["labels"][batch["attention_mask"] == 1].float()
    bce = -(y * torch.log(torch.sigmoid(z)) + (1 - y) * torch.log(1 - torch.sigmoid(z))).mean()
    assert abs(losses["mlm"].item() - ce.item()) < 1e-5
    assert abs(losses["rtd"].item() - 50 * bce.item()) < 1e-4
    assert abs(metrics["rtd_loss"].item() - bce.item()) < 1e-6
    assert metrics["rtd_acc"].item() == pytest.approx(((z > 0).float() == y).float().mean().item())


def test_no_gradient_through_sampling():
    disc, gen = pair()
    perturbed(disc), perturbed(gen, 1)
    disc.train(), gen.train()
    batch, _ = mlm_batch()
    losses, _, _ = replaced_token_step(disc, gen, batch)
    losses["rtd"].backward()  # lambda x BCE only
    shared = {id(p) for p in disc.bert.embeddings.parameters()}
    own = [(n, p) for n, p in gen.named_parameters() if id(p) not in shared]
    assert own and all(p.grad is None or not p.grad.any() for _, p in own), \
        [n for n, p in own if p.grad is not None and p.grad.any()]
    assert disc.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0  # the shared ones do get it
    assert disc.rtd.dense.weight.grad.abs().sum() > 0
    gen.zero_grad(), disc.zero_grad()
    losses, _, _ = replaced_token_step(disc, gen, batch)
    losses["mlm"].backward()  # and the generator's MLM trains the generator (and the shared embeddings)
    assert gen.bert.encoder.layers[0].attention.qkv.weight.grad.abs().sum() > 0
    assert disc.rtd.dense.weight.grad is None


def test_sampling_noise_is_per_example():
    class Fake:  # a dataset whose batches are rows of 8 positions, position p masked when p % 3 == 0
        seed, lengths, meta = 5, None, {"m": 1}

        def __len__(self):
            return 10

        def __getitem__(self, item):
            _, _, indices = item
            n = len(indices)
            pos = torch.tensor([r * 8 + c for r in range(n) for c in range(8) if c % 3 == 0])
            return {"input_ids": torch.zeros(n, 8, dtype=torch.long), "mlm_positions": pos}

    ds = SamplingNoise(Fake())
    assert ds.meta == {"m": 1} and len(ds) == 10
    a = ds[(0, 0, [3, 7])]["rtd_uniform"]
    b = ds[(0, 4, [7, 1, 3])]["rtd_uniform"]
    assert a.shape == (6,) and torch.equal(a[:3], b[6:]) and torch.equal(a[3:], b[:3])  # example 3, example 7
    assert not torch.equal(ds[(1, 0, [3, 7])]["rtd_uniform"], a)  # a new epoch: new draws


# ----------------------------------------------------------------------------- the command
def rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def electra_run(shards, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("electra") / "run"
    assert cli(pretrain_args(shards, out, *ELECTRA, "train.max_steps=40", "schedule.warmup=0.1", "optim.lr=2e-3",
                             f"data.eval_shards={shards}", "train.eval_every=40", "data.eval_batches=4")) == 0
    return out


def test_pretrain_electra_end_to_end(electra_run):
    out = electra_run
    train = [r for r in rows(out) if r["kind"] == "train"]
    assert {"mlm", "rtd", "rtd_acc", "mlm_acc", "rtd_loss"} <= set(train[0])
    first, last = train[0], train[-1]
    assert last["loss"] < first["loss"] and last["rtd_loss"] < first["rtd_loss"] and last["mlm"] < first["mlm"]
    ev = [r for r in rows(out) if r["kind"] == "eval"][-1]
    assert {"rtd_acc", "rtd_replaced_acc", "rtd_original_acc", "replaced_share", "mlm_loss"} <= set(ev)
    assert 0 < ev["replaced_share"] < 0.2  # at most 15% masked, and some samples are the original
    assert 0.0 <= ev["rtd_auc"] <= 1.0 and 0.0 <= ev["rtd_precision"] <= 1.0
    # the directories: the discriminator at the top, the generator in generator/, both ELECTRA
    final = out / "final"
    assert json.loads((final / "config.json").read_text())["architectures"] == ["ElectraForPreTraining"]
    assert json.loads((final / "generator" / "config.json").read_text())["architectures"] == ["ElectraForMaskedLM"]
    assert (final / "vocab.txt").is_file() and (final / "generator" / "vocab.txt").is_file()
    disc, gen = berts.load(final), berts.load(final / "generator")
    hf = transformers.ElectraForPreTraining.from_pretrained(final).eval()
    ids, mask, types = padded_batch(vocab=disc.config.vocab_size)
    ids = ids[:, :10]
    mask, types = mask[:, :10], types[:, :10]
    real = mask == 1
    diff = disc.eval()(ids, mask, types).logits - hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    assert diff[real].abs().max() < 1e-5
    # the shared embeddings were saved the same in both
    d, g = weights(final), weights(final / "generator")
    assert torch.equal(d["electra.embeddings.word_embeddings.weight"], g["electra.embeddings.word_embeddings.weight"])
    assert gen.config.hidden_size == disc.config.hidden_size // 4


@pytest.mark.slow
def test_electra_resume_after_sigkill_is_bit_identical(shards, tmp_path):  # noqa: F811
    ref, out = tmp_path / "ref", tmp_path / "run"
    args = (*ELECTRA, *RUN, "model.hidden_dropout_prob=0.1")
    assert cli(pretrain_args(shards, ref, *args)) == 0
    proc = spawn(SLOW_STEPS, *pretrain_args(shards, out, *args))
    kill_after_first_checkpoint(proc, out, 0.15)
    assert cli(pretrain_args(shards, out, *args) + ["--resume", "auto"]) == 0
    for sub in ("", "generator"):
        a, b = weights(ref / "final" / sub), weights(out / "final" / sub)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), sub
    strip = [{k: v for k, v in r.items() if k not in ("time", "tokens_per_s", "elapsed", "eta")}
             for r in rows(ref) if r["kind"] == "train"]
    again = [{k: v for k, v in r.items() if k not in ("time", "tokens_per_s", "elapsed", "eta")}
             for r in rows(out) if r["kind"] == "train"]
    assert [(r["step"], r["loss"], r["rtd"], r["mlm"]) for r in again] == \
        [(r["step"], r["loss"], r["rtd"], r["mlm"]) for r in strip]


def test_finetune_from_an_electra_directory(electra_run, tmp_path, capsys):
    from berts.runs.finetune import load_for_finetuning

    final = electra_run / "final"
    clf = load_for_finetuning(final, {"num_labels": 2}, False)
    disc = berts.load(final)
    assert torch.equal(clf.bert.embeddings.word_embeddings.weight, disc.bert.embeddings.word_embeddings.weight)
    assert torch.equal(clf.bert.encoder.layers[1].ffn.down.weight, disc.bert.encoder.layers[1].ffn.down.weight)
    assert set(clf.loading_info["missing_keys"]) == {"electra.pooler.dense.weight", "electra.pooler.dense.bias",
                                                     "classifier.weight", "classifier.bias"}
    rng = random.Random(0)
    words = "the cat dog bird sat ran flew over under near a big small".split()
    lines = ["sentence\tlabel"]
    for _ in range(64):
        s = [rng.choice(words) for _ in range(6)]
        lines.append(" ".join(s) + "\t" + ("yes" if "cat" in s else "no"))
    (tmp_path / "t.tsv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "ft"
    assert cli(["finetune", "--model", final, "--train", tmp_path / "t.tsv", "--dev", tmp_path / "t.tsv",
                "--text-column", "sentence", "--label-column", "label", "--out", out, "--epochs", "1",
                "--batch-size", "16", "--set", "impl.threads=1", "--set", "impl.device=cpu",
                "--set", "log.progress=none", "--set", "log.tensorboard=false", "--set", "log.plots=false"]) == 0
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForSequenceClassification"]
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(out / "best").eval()
    ours = berts.load(out / "best").eval()
    ids, mask, types = padded_batch(vocab=ours.config.vocab_size)
    ids, mask, types = ids[:, :10], mask[:, :10], types[:, :10]
    assert (ours(ids, mask, types).logits - hf(input_ids=ids, attention_mask=mask,
                                              token_type_ids=types).logits).abs().max() < 1e-5


@pytest.mark.ddp
def test_electra_two_processes_match_one(shards, tmp_path):  # noqa: F811
    """The samples are drawn from each example's own uniforms (SamplingNoise), not from a rank's
    RNG: 2 DDP processes x 2 micro-batches give the one-process weights (dropout off)."""
    import subprocess

    from train_utils import PYTHON, ROOT, env

    same = [*ELECTRA, "train.max_steps=4", "train.batch_size=8", "model.hidden_dropout_prob=0",
            "model.attention_probs_dropout_prob=0", "log.every=1"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli(pretrain_args(shards, one, *same)) == 0
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "berts",
           *map(str, pretrain_args(shards, two, *same, "train.grad_accum=2"))]
    proc = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for sub in ("", "generator"):
        a, b = weights(one / "final" / sub), weights(two / "final" / sub)
        assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5, sub
    for x, y in zip(rows(one), rows(two)):
        assert abs(x["rtd"] - y["rtd"]) < 1e-4 and abs(x["mlm"] - y["mlm"]) < 1e-5


def test_electra_options_are_checked_and_init_from_keeps_the_generator(electra_run, shards, tmp_path, capsys):  # noqa: F811
    assert cli(pretrain_args(shards, tmp_path / "bad", *ELECTRA, "electra.generator_size=1.5")) == 2
    assert "electra.generator_size must be in (0, 1], got 1.5" in capsys.readouterr().err
    assert cli(pretrain_args(shards, tmp_path / "bad2", *ELECTRA, "electra.rtd_weight=0")) == 2
    assert "electra.rtd_weight must be positive, got 0" in capsys.readouterr().err
    assert cli(pretrain_args(shards, tmp_path / "bad3", *ELECTRA, "data.sbo=true", "data.masking=span")) == 2
    assert "set data.sbo: false" in capsys.readouterr().err
    from berts.config.schema import PretrainConfig, load_config
    from berts.runs.pretrain import pretraining_run

    cfg = load_config(PretrainConfig, None, [*(s for s in pretrain_sets()), *ELECTRA, f"data.shards={shards}",
                                             f"log.out={tmp_path / 'again'}",
                                             f"model.init_from={electra_run / 'final'}"])
    trainer = pretraining_run(cfg)
    gen = trainer.engine.modules["generator"]
    saved = weights(electra_run / "final" / "generator")
    assert torch.equal(gen.bert.encoder.layers[0].ffn.up.weight,
                       saved["electra.encoder.layer.0.intermediate.dense.weight"])
    assert gen.bert.embeddings.word_embeddings is trainer.engine.modules["model"].bert.embeddings.word_embeddings


def pretrain_sets():
    from train_utils import TINY

    return TINY
