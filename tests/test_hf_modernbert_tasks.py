"""ModernBERT's token-level task twins (berts/hf/modernbert.py, ``token_head: transform``):
transformers' ModernBertForTokenClassification / ...ForQuestionAnswering load in berts with the same
logits on padded inputs longer than the window, berts' modern token classifier and QA model save as
those directories with the same logits (1e-5), and `berts finetune --task token-classification` /
`--task qa` start from a ModernBERT directory and write one."""
import json
import string
import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import ModernBertForQuestionAnswering, ModernBertForTokenClassification  # noqa: E402

from berts.errors import UserError  # noqa: E402
from berts.hf import load  # noqa: E402
from berts.model.encoder import BertModel  # noqa: E402
from berts.tasks.qa import BertForQuestionAnswering  # noqa: E402
from berts.tasks.token_classification import BertForTokenClassification  # noqa: E402
from conftest import randomize  # noqa: E402
from test_hf_modernbert import ATOL, batch, hf_config, max_diff, modern_config  # noqa: E402
from train_utils import cli  # noqa: E402

HF = {"ModernBertForTokenClassification": ModernBertForTokenClassification,
      "ModernBertForQuestionAnswering": ModernBertForQuestionAnswering}
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def logits(model, ids, mask):
    """The real tokens' logits: [T, labels] (token classification) or [T, 2] (start, end)."""
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    if getattr(out, "start_logits", None) is not None:
        return torch.stack([out.start_logits, out.end_logits], -1)[mask.bool()]
    return out.logits[mask.bool()]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("arch,labels", [("ModernBertForTokenClassification", 3),
                                         ("ModernBertForQuestionAnswering", 2)])
def test_transformers_token_heads_load_with_the_same_logits(tmp_path, arch, labels, attn):
    theirs = randomize(HF[arch](hf_config(num_labels=labels, attn_implementation=attn))).eval()
    theirs.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["classifier_bias"] is False  # loads as zeros
    ours = load(tmp_path).eval()
    assert type(ours) is {"ModernBertForTokenClassification": BertForTokenClassification,
                          "ModernBertForQuestionAnswering": BertForQuestionAnswering}[arch]
    assert ours.config.token_head == "transform" and ours.config.sliding_window == 8
    ids, mask = batch()  # 21 tokens, a window of 8: the local layers bite
    want = logits(theirs, ids, mask)
    assert want.shape[-1] == labels
    assert max_diff(logits(ours, ids, mask), want) < ATOL
    ours.set_fast_path(unpad=True, pack=True)
    assert max_diff(logits(ours, ids, mask), want) < ATOL


@pytest.mark.parametrize("changes", [{}, {"bias": True}, {"bias": False, "norm_bias": True},
                                     {"hidden_act": "gelu_pytorch_tanh", "pooler_act": "silu"},
                                     {"sliding_window": None}],
                         ids=["modern", "bias", "norm-bias", "acts", "no-window"])
@pytest.mark.parametrize("cls", [BertForTokenClassification, BertForQuestionAnswering], ids=lambda c: c.__name__)
def test_berts_token_heads_save_as_modernbert(tmp_path, cls, changes):
    ours = randomize(cls(modern_config(token_head="transform", **changes)), seed=3).eval()
    ours.save_pretrained(tmp_path)  # chosen by itself: the model fits the format
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "modernbert"
    assert saved["architectures"] == [f"ModernBert{cls.__name__[4:]}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = HF[saved["architectures"][0]].from_pretrained(tmp_path, attn_implementation="eager").eval()
    ids, mask = batch()
    want = logits(ours, ids, mask)
    assert max_diff(logits(theirs, ids, mask), want) < ATOL
    back = load(tmp_path).eval()
    assert type(back) is cls and back.config.token_head == "transform"
    assert max_diff(logits(back, ids, mask), want) == 0.0


def test_token_head_transform_is_dense_act_norm_then_the_linear():
    """By hand: logits = W norm(act(D h + d)) + b on every token's last hidden state."""
    model = randomize(BertForTokenClassification(modern_config(token_head="transform")), seed=1).eval()
    ids, mask = batch()
    with torch.no_grad():
        h = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, S, H]
        t = model.classifier.transform
        y = torch.nn.functional.gelu(h @ t.dense.weight.T + t.dense.bias)
        y = torch.nn.functional.layer_norm(y, (32,), t.norm.weight, None, 1e-5)  # bias false: no norm bias
        want = y @ model.classifier.weight.T + model.classifier.bias
        assert max_diff(model(input_ids=ids, attention_mask=mask).logits, want) < 1e-6
    assert sorted(n for n, _ in model.classifier.named_parameters()) == [
        "bias", "transform.dense.bias", "transform.dense.weight", "transform.norm.weight", "weight"]


@pytest.mark.parametrize("cls", [BertForTokenClassification, BertForQuestionAnswering], ids=lambda c: c.__name__)
def test_a_linear_token_head_refuses_modernbert_in_one_line(tmp_path, cls):
    model = cls(modern_config())  # token_head linear: ModernBERT's classes always read the transform
    with pytest.raises(UserError, match="token_head linear") as err:
        model.save_pretrained(tmp_path / "out", format="modernbert")
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()
    model.save_pretrained(tmp_path / "auto")  # by itself: the berts format
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["model_type"] == "berts"


# ----------------------------------------------------------------- berts finetune from a ModernBERT directory
WORDS = "the dog sat ran over a big red house tree in saw".split()
NAMES = "ann bob cid dan".split()


@pytest.fixture(scope="module")
def modern_dir(tmp_path_factory):
    """A tiny modern encoder saved as a ModernBERT directory (ModernBertModel) with its tokenizer."""
    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("modern")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *NAMES, "who", "?", ".", *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    config = modern_config(vocab_size=tok.vocab_size, num_hidden_layers=3, token_head="transform")
    BertModel(config, add_pooling_layer=False).save_pretrained(root / "model", tokenizer=tok)
    assert json.loads((root / "model" / "config.json").read_text())["architectures"] == ["ModernBertModel"]
    return root / "model"


def reloaded_equal(final, ours_cls, arch):
    """transformers reads final/ as ``arch`` with berts' logits (on a padded batch of its vocabulary)."""
    ours = load(final).eval()
    assert type(ours) is ours_cls
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = HF[arch].from_pretrained(final).eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, ours.config.vocab_size, (2, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    assert max_diff(logits(theirs, ids, mask), logits(ours, ids, mask)) < ATOL


def test_finetune_token_classification_from_a_modernbert_directory(modern_dir, tmp_path):
    import random

    rng = random.Random(0)
    lines = []
    for _ in range(40):
        words = [rng.choice(WORDS + NAMES) for _ in range(rng.randint(3, 12))]
        lines += [f"{w} {'B-PER' if w in NAMES else 'O'}" for w in words] + [""]
    data = tmp_path / "train.conll"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "token-classification", "--model", modern_dir, "--train", data,
                "--dev", data, "--out", out, "--max-steps", "4", "--batch-size", "8", "--lr", "3e-3",
                "--eval-every", "4", "--keep-last", "0", *COMMON]) == 0
    saved = json.loads((out / "final" / "config.json").read_text())
    assert saved["model_type"] == "modernbert" and saved["architectures"] == ["ModernBertForTokenClassification"]
    assert saved["finetune_data"]["tagging"]["scheme"]  # how it read its data, for evaluate / predict
    assert sorted(saved["id2label"].values()) == ["B-PER", "O"]
    reloaded_equal(out / "final", BertForTokenClassification, "ModernBertForTokenClassification")
    assert cli(["evaluate", out / "final", data, "--device", "cpu"]) == 0


def test_finetune_qa_from_a_modernbert_directory(modern_dir, tmp_path):
    import random

    rng = random.Random(0)
    rows = []
    for i in range(24):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
        name = rng.choice(NAMES)
        words.insert(rng.randrange(len(words)), name)
        context = " ".join(words)
        start = (" " + context + " ").index(f" {name} ")
        rows.append({"id": f"q{i}", "question": "who ?", "context": context,
                     "answers": [{"text": name, "answer_start": start}]})
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "qa", "--model", modern_dir, "--train", data, "--dev", data, "--out", out,
                "--max-steps", "4", "--batch-size", "8", "--lr", "3e-3", "--eval-every", "4", "--keep-last", "0",
                "--max-length", "24", "--doc-stride", "8", "--max-answer-length", "4", *COMMON]) == 0
    saved = json.loads((out / "final" / "config.json").read_text())
    assert saved["architectures"] == ["ModernBertForQuestionAnswering"] and saved["num_labels"] == 2
    assert saved["finetune_data"]["qa"]["doc_stride"] == 8
    reloaded_equal(out / "final", BertForQuestionAnswering, "ModernBertForQuestionAnswering")
