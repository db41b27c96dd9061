"""berts.serve.generate: the cache gives the same ids as no cache (greedy, beams, sampling, both
readouts), top-k / top-p by hand, seeded sampling, stop at [SEP], and a tiny model overfit on a
few sentences generates them back exactly (Python API and `berts generate`)."""
import json

import pytest
import torch

from berts import BertConfig
from berts.serve.generate import GenerationConfig, TextGenerator, filter_logits, generate_ids
from berts.model.heads import BertForUnifiedLM
from berts.objectives.lm import next_token_targets
from berts.tokenizer.wordpiece import Tokenizer
from conftest import randomize
from train_utils import cli

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CLS, SEP, MASK = 2, 3, 4


def config(**kw):
    return BertConfig(**dict(dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), **kw))


@pytest.mark.parametrize("mode,prompt", [("left-to-right", [CLS, 11, 12]), ("seq2seq", [CLS, 11, 12, 13, SEP])])
@pytest.mark.parametrize("readout", ["next", "mask"])
@pytest.mark.parametrize("how", [dict(), dict(num_beams=3, length_penalty=0.6),
                                 dict(do_sample=True, top_k=8, top_p=0.9, temperature=0.7, seed=5)])
def test_cache_gives_the_same_ids_as_no_cache(mode, prompt, readout, how):
    m = randomize(BertForUnifiedLM(config()), 1).eval()
    kw = dict(mode=mode, eos_token_id=SEP, max_new_tokens=12, mask_token_id=MASK if readout == "mask" else None, **how)
    with_cache = generate_ids(m, prompt, **kw)
    assert with_cache == generate_ids(m, prompt, use_cache=False, **kw)
    assert 0 < len(with_cache) <= 12


def test_greedy_is_the_argmax_of_a_full_forward_each_step():
    m = randomize(BertForUnifiedLM(config()), 2).eval()
    ids = [CLS, 11, 12]
    out = generate_ids(m, ids, eos_token_id=None, max_new_tokens=5)
    seq = list(ids)
    with torch.no_grad():
        for _ in range(5):
            x = torch.tensor([seq])
            seq.append(int(m(x, lm_mode="left-to-right").logits[0, -1].argmax()))
    assert out == seq[3:]


def test_filter_logits_by_hand():
    logits = torch.tensor([3.0, 1.0, 2.0, 0.0])  # probs ~ 0.64 0.09 0.24 0.03
    inf = float("-inf")
    assert filter_logits(logits, top_k=2).tolist() == [3.0, inf, 2.0, inf]
    assert filter_logits(logits, top_p=0.5).tolist() == [3.0, inf, inf, inf]  # the top token always stays
    assert filter_logits(logits, top_p=0.8).tolist() == [3.0, inf, 2.0, inf]
    assert filter_logits(logits, top_p=0.95).tolist() == [3.0, 1.0, 2.0, inf]
    torch.testing.assert_close(filter_logits(logits, temperature=2.0), logits / 2)


def test_sampling_is_seeded_and_sep_stops():
    m = randomize(BertForUnifiedLM(config()), 3).eval()
    a = generate_ids(m, [CLS, 11], do_sample=True, seed=7, max_new_tokens=20)
    assert a == generate_ids(m, [CLS, 11], do_sample=True, seed=7, max_new_tokens=20)
    assert a != generate_ids(m, [CLS, 11], do_sample=True, seed=8, max_new_tokens=20)
    with torch.no_grad():
        m.mlm.bias[SEP] = 100.0  # [SEP] always wins: nothing is generated
    assert generate_ids(m, [CLS, 11], eos_token_id=SEP) == []
    assert generate_ids(m, [CLS, 11], eos_token_id=SEP, num_beams=2) == []
    with pytest.raises(Exception, match="top_p"):
        generate_ids(m, [CLS, 11], top_p=0.0)


SENTENCES = ["the cat sat on the mat", "a dog ran over the hill", "one bird flew near the river",
             "my house is red and small"]
PAIRS = [("cat mat", "the cat sat on the mat"), ("dog hill", "a dog ran over the hill"),
         ("bird river", "one bird flew near the river")]


def tokenizer():
    words = sorted({w for s in SENTENCES for w in s.split()} | {w for p in PAIRS for w in p[0].split()})
    return Tokenizer.from_vocab({t: i for i, t in enumerate(SPECIAL + words)})


def overfit(tok, mode, rows, steps=200):
    """A tiny BertForUnifiedLM trained on ``rows`` (lists of ids, with types) until it has them by heart."""
    torch.manual_seed(0)
    m = BertForUnifiedLM(config(vocab_size=len(tok)))
    m.config.lm_mode, m.config.lm_readout = mode, "next"
    width = max(len(r[0]) for r in rows)
    ids = torch.tensor([r[0] + [0] * (width - len(r[0])) for r in rows])
    types = torch.tensor([r[1] + [0] * (width - len(r[1])) for r in rows])
    mask = (torch.arange(width)[None] < torch.tensor([len(r[0]) for r in rows])[:, None]).long()
    pos, nxt = next_token_targets(ids, mask, types, target_only=mode == "seq2seq")
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.0)
    m.train()
    for _ in range(steps):
        loss = m(ids, mask, types, lm_mode=mode, lm_positions=pos, lm_labels=nxt).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    # left-to-right: the first word after [CLS] is a guess among the sentences (log 4 on 4 of the
    # 27 targets, 0.205 of the mean); everything else is learnt by heart
    floor = 4 * torch.log(torch.tensor(4.0)).item() / nxt.numel() if mode == "left-to-right" else 0.0
    assert loss.item() < floor + 0.01
    return m.eval()


def test_a_tiny_model_overfit_on_sentences_generates_them_back(tmp_path, capsys):
    tok = tokenizer()
    rows = []
    for s in SENTENCES:
        ids = [tok.cls_id, *tok.encode_ids_batch([s])[0], tok.sep_id]
        rows.append((ids, [0] * len(ids)))
    m = overfit(tok, "left-to-right", rows)
    gen = TextGenerator(m, tok)
    for s in SENTENCES:
        first, rest = s.split(" ", 1)
        assert gen(first) == rest
        assert gen(first, num_beams=3) == rest
        assert gen(first, use_cache=False) == rest
    # the command: the model saved with its tokenizer, prompts from --prompt and from a file
    m.save_pretrained(tmp_path / "m", tokenizer=tok)
    assert cli(["generate", tmp_path / "m", "--prompt", "the"]) == 0
    assert capsys.readouterr().out == "cat sat on the mat\n"
    (tmp_path / "prompts.txt").write_text("a\none\n")
    assert cli(["generate", tmp_path / "m", tmp_path / "prompts.txt", "--jsonl", "--num-beams", "2"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines == [{"prompt": "a", "text": "dog ran over the hill"},
                     {"prompt": "one", "text": "bird flew near the river"}]
    # sampling from a file: prompt i uses seed SEED + i (equal to the API with that seed), so two
    # equal prompts get their own draws instead of echoing one random stream
    (tmp_path / "same.txt").write_text("the\nthe\n")
    assert cli(["generate", tmp_path / "m", tmp_path / "same.txt", "--sample", "--temperature", "5", "--seed", "3"]) == 0
    got = capsys.readouterr().out.splitlines()
    assert got == [gen("the", do_sample=True, temperature=5.0, seed=3), gen("the", do_sample=True, temperature=5.0, seed=4)]
    assert got[0] != got[1]


def test_a_tiny_seq2seq_model_overfit_on_pairs_generates_the_targets():
    tok = tokenizer()
    rows = []
    for src, tgt in PAIRS:
        a = [tok.cls_id, *tok.encode_ids_batch([src])[0], tok.sep_id]
        b = [*tok.encode_ids_batch([tgt])[0], tok.sep_id]
        rows.append((a + b, [0] * len(a) + [1] * len(b)))
    m = overfit(tok, "seq2seq", rows)
    gen = TextGenerator(m, tok)
    assert gen.mode == "seq2seq"
    for src, tgt in PAIRS:
        assert gen(src) == tgt
        assert gen(src, num_beams=3, length_penalty=1.0) == tgt


def test_generation_config_errors():
    with pytest.raises(Exception, match="beam search does not sample"):
        GenerationConfig(num_beams=2, do_sample=True).validate()
    with pytest.raises(Exception, match="max_new_tokens"):
        GenerationConfig(max_new_tokens=0).validate()
