"""Structured pruning (berts.compress.prune, `berts distill --student-init prune`): cutting nothing
gives the teacher exactly; cutting FFN neurons gives exactly the teacher with those neurons zeroed;
the attention scores of a student with fewer residual and head dimensions equal a hand computation
from the teacher's weights at the kept indices (with the teacher's 1/sqrt(head_dim)); importance
ignores padding; the command writes a plain Hugging Face directory whose weights are the pruned
model's, and refuses what it cannot cut in one line."""
import math

import pytest
import torch
from test_distill import batch_of, data, mlm_teacher, sets  # noqa: F401 (fixture)
from train_utils import cli, shards  # noqa: F401 (fixture)

from berts.compress.prune import _top, measure_importance, prune_model
from berts.model.config import BertConfig
from berts.model.heads import BertForSequenceClassification

TEXTS = ["the cat sat on a big red house", "a small blue tree near the river", "dog ran over the hill and the cat"]


def teacher_of(vocab, **kw):
    torch.manual_seed(0)
    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    shape.update(kw)
    config = BertConfig(vocab_size=vocab, max_position_embeddings=64, num_labels=2, **shape)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():  # LayerNorms and biases away from their init, so that cutting them shows
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    return model


def inputs(batch):
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def test_cutting_nothing_gives_the_teacher(data):  # noqa: F811
    teacher = teacher_of(data.tok.vocab_size)
    b = batch_of(data.tok, TEXTS)
    imp = measure_importance(teacher, [b])
    student = prune_model(teacher, teacher.config, imp, [0, 1]).eval()
    with torch.no_grad():
        assert torch.equal(student(**inputs(b)).logits, teacher(**inputs(b)).logits)


def test_cutting_neurons_equals_zeroing_them(data):  # noqa: F811
    teacher = teacher_of(data.tok.vocab_size)
    b = batch_of(data.tok, TEXTS)
    imp = measure_importance(teacher, [b])
    student = prune_model(teacher, teacher.config.replace(intermediate_size=24), imp, [0, 1]).eval()
    zeroed = teacher_of(data.tok.vocab_size)
    with torch.no_grad():
        for i, layer in enumerate(zeroed.bert.encoder.layers):
            drop = torch.ones(64, dtype=torch.bool)
            drop[_top(imp.neurons[i], 24)] = False
            layer.ffn.down.weight[:, drop] = 0  # a dropped neuron's output column
        assert torch.allclose(student(**inputs(b)).logits, zeroed(**inputs(b)).logits, atol=1e-6)
    # the kept neurons are the most active ones
    kept = _top(imp.neurons[0], 24)
    assert imp.neurons[0][kept].min() >= imp.neurons[0][~torch.isin(torch.arange(64), kept)].max()


def test_attention_scores_of_a_narrower_student_equal_a_hand_computation(data):  # noqa: F811
    teacher = teacher_of(data.tok.vocab_size)  # 4 heads of 8
    b = batch_of(data.tok, TEXTS)
    imp = measure_importance(teacher, [b])
    config = teacher.config.replace(num_hidden_layers=1, hidden_size=16, num_attention_heads=4, intermediate_size=32)
    student = prune_model(teacher, config, imp, [1]).eval()  # one layer: the teacher's second
    with torch.no_grad():
        out = student.bert(**inputs(b), output_hidden_states=True, output_attention_scores=True)
        x = out.hidden_states[0]  # [B, S, 16]: the student's embeddings, the input of its only layer
        qkv, h_t = teacher.bert.encoder.layers[1].attention.qkv, 32
        scores = []
        for head in range(4):
            d = _top(imp.q[1, head] * imp.k[1, head], 4) + head * 8  # the head's kept query/key dims
            dims = _top(imp.dims, 16)
            q = x @ qkv.weight[d][:, dims].T + qkv.bias[d]
            k = x @ qkv.weight[d + h_t][:, dims].T + qkv.bias[d + h_t]
            scores.append(q @ k.transpose(-1, -2) / math.sqrt(8))  # the teacher's scale
        assert torch.allclose(out.attention_scores[0], torch.stack(scores, 1), atol=1e-5)


def test_importance_leaves_padding_out(data):  # noqa: F811
    teacher = teacher_of(data.tok.vocab_size)
    b = batch_of(data.tok, TEXTS)
    padded = {k: torch.nn.functional.pad(b[k], (0, 8)) for k in ("input_ids", "attention_mask", "token_type_ids")}
    a, p = measure_importance(teacher, [b]), measure_importance(teacher, [padded])
    for key in ("dims", "heads", "q", "k", "v", "neurons"):
        assert torch.allclose(getattr(a, key), getattr(p, key), atol=1e-6), key


def test_distill_student_init_prune(data, tmp_path, capsys):  # noqa: F811
    import transformers

    import berts
    from berts.compress.transforms import PRUNE_EXAMPLES

    shape = ["--student-preset", "tiny", "--set", "model.num_hidden_layers=2", "--set", "model.hidden_size=16",
             "--set", "model.num_attention_heads=2", "--set", "model.intermediate_size=32"]
    out = tmp_path / "run"
    assert cli(["distill", "--method", "tinybert", "--teacher", data.classifier, *shape, "--student-init", "prune",
                "--train", data.train, "--out", out, "--max-steps", "1", "--lr", "1e-9", "--batch-size", "8",
                *sets()]) == 0
    capsys.readouterr()
    # the same cut by hand: layers 1 and 3 of 4 (TinyBERT's map 0, 2, 4), activations of the training rows
    from berts.data.classification import ClassificationDataset
    from berts.data.labels import LabelMap
    from berts.data.tables import Example

    teacher = berts.load(data.classifier).eval()
    rows = [line.split("\t") for line in data.train.read_text().splitlines()[1:]]
    examples = [Example(text=text, label=label) for text, label in rows]
    ds = ClassificationDataset(examples, data.tok, label_map=LabelMap(["no", "yes"]), max_length=128)
    n = min(len(ds), PRUNE_EXAMPLES)
    imp = measure_importance(teacher, [ds[(0, 0, list(range(i, min(n, i + 64))))] for i in range(0, n, 64)])
    config = teacher.config.replace(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=32)
    ours = prune_model(teacher, config, imp, [1, 3]).eval()
    hf = transformers.BertForSequenceClassification.from_pretrained(out / "final").eval()
    b = batch_of(data.tok, TEXTS)
    with torch.no_grad():
        assert torch.allclose(hf(**inputs(b)).logits, ours(**inputs(b)).logits, atol=1e-4)  # lr 1e-9

    # distill.prune_examples: fewer calibration rows (the demo's --quick)
    assert cli(["distill", "--method", "tinybert", "--teacher", data.classifier, *shape, "--student-init", "prune",
                "--train", data.train, "--out", tmp_path / "run5", "--max-steps", "1", "--batch-size", "8",
                "--set", "distill.prune_examples=5", *sets()]) == 0
    said = capsys.readouterr()
    assert "activations of the first 5 training examples" in said.out + said.err

    def refused(*argv):
        capsys.readouterr()
        assert cli(["distill", "--method", "tinybert", "--teacher", data.classifier, "--train", data.train,
                    "--out", tmp_path / "refused", *argv, *sets()]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    assert "--student-preset/--student-config" in refused("--student-layers", "0,2", "--student-init", "prune")
    wide = ["--student-preset", "tiny", "--set", "model.hidden_size=64", "--set", "model.num_attention_heads=2"]
    assert "larger than the teacher's" in refused(*wide, "--student-init", "prune")


def test_general_tinybert_from_a_pruned_encoder(shards, mlm_teacher, tmp_path):  # noqa: F811
    import berts

    out = tmp_path / "general"
    assert cli(["distill", "--method", "tinybert", "--teacher", mlm_teacher, "--data", shards, "--student-preset",
                "tiny", "--set", "model.num_hidden_layers=2", "--set", "model.hidden_size=16", "--set",
                "model.num_attention_heads=2", "--set", "model.intermediate_size=32", "--student-init", "prune",
                "--out", out, "--max-steps", "1", "--lr", "1e-9", "--batch-size", "8", *sets()]) == 0
    student, teacher = berts.load(out / "final"), berts.load(mlm_teacher)
    assert student.config.hidden_size == 16 and student.config.num_hidden_layers == 2
    # its embedding columns are 16 of the teacher's (lr 1e-9: one step moves nothing)
    t = teacher.bert.embeddings.word_embeddings.weight
    s = student.bert.embeddings.word_embeddings.weight if hasattr(student, "bert") else student.embeddings.word_embeddings.weight
    cols = [int(((t - s[:, [j]]).abs().max(0).values < 1e-6).nonzero()[0]) for j in range(16)]
    assert len(set(cols)) == 16 and cols == sorted(cols)


def test_prune_directory_writes_the_cut_model(data, tmp_path):  # noqa: F811
    """compress.transforms.prune_directory: a saved classifier -> a saved smaller one, equal to the
    in-memory cut on the same texts (max_length 128, the texts' activations); cutting nothing (the
    same shape, every layer) gives the source's logits exactly."""
    import berts
    from berts.compress.transforms import prune_directory

    src = tmp_path / "src"
    teacher_of(data.tok.vocab_size).save_pretrained(src, data.tok)
    same = prune_directory(src, tmp_path / "same", TEXTS)
    assert same["layers"] == [0, 1] and same["parameters"] == same["source_parameters"] and same["examples"] == 3
    b = batch_of(data.tok, TEXTS)
    source = berts.load(src).eval()
    with torch.no_grad():
        assert torch.equal(berts.load(tmp_path / "same").eval()(**inputs(b)).logits, source(**inputs(b)).logits)

    small = prune_directory(src, tmp_path / "small", TEXTS, num_hidden_layers=1, hidden_size=16,
                            num_attention_heads=2, intermediate_size=24)
    assert small["layers"] == [1]  # TinyBERT's map: student layer 1 <- teacher layer 2 (0-based 1)
    imp = measure_importance(source, [batch_of(data.tok, TEXTS)])
    config = source.config.replace(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=24)
    ours = prune_model(source, config, imp, [1]).eval()
    saved = berts.load(tmp_path / "small").eval()
    assert saved.config.num_hidden_layers == 1 and saved.config.id2label == source.config.id2label
    assert small["parameters"] == ours.num_parameters()
    with torch.no_grad():
        assert torch.allclose(saved(**inputs(b)).logits, ours(**inputs(b)).logits, atol=1e-6)


def modern_teacher(vocab, cls, **kw):
    """A small modern model (RoPE, a window, GeGLU, pre-LN without biases, no token types, ModernBERT's
    head on the pooler and, token_head transform, on every token), its norms away from their init."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab, max_position_embeddings=64, hidden_size=32, num_hidden_layers=3,
                        num_attention_heads=4, intermediate_size=48, num_labels=5, type_vocab_size=0,
                        position_embedding_type="rope", rope_theta=160000.0, local_rope_theta=10000.0,
                        sliding_window=4, global_attn_every_n_layers=3, norm_position="pre", first_attn_norm=False,
                        ffn="glu", bias=False, pooler_act="gelu", pooler_norm=True, token_head="transform")
    model = cls(config.replace(**kw)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    return model


def modern_inputs(batch):
    return {k: batch[k] for k in ("input_ids", "attention_mask")}


def _heads():
    from berts.tasks.qa import BertForQuestionAnswering
    from berts.tasks.token_classification import BertForTokenClassification

    return {"token": (BertForTokenClassification, "classifier"), "qa": (BertForQuestionAnswering, "qa_outputs")}


@pytest.mark.parametrize("kind", ["token", "qa"])
def test_a_modern_task_head_with_its_transform_is_cut_to_the_kept_dims(data, kind):  # noqa: F811
    """A modern token classifier / QA model whose head reads each token through ModernBERT's transform
    (dense, act, norm), pruned to a narrower residual stream, fewer layers, heads and GLU neurons: the
    student runs, and every weight is exactly the teacher's at the kept indices: the head's linear,
    its transform's dense (rows and columns) and norm, the pooler, the norms, the GLU's two halves."""
    cls, attr = _heads()[kind]
    teacher = modern_teacher(data.tok.vocab_size, cls)
    b = batch_of(data.tok, TEXTS)
    imp = measure_importance(teacher, [b])
    config = teacher.config.replace(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=24)
    student = prune_model(teacher, config, imp, [1, 2]).eval()
    with torch.no_grad():
        out = student(**modern_inputs(b))
    logits = out.logits if kind == "token" else torch.stack([out.start_logits, out.end_logits], -1)
    assert logits.shape[:2] == b["input_ids"].shape and torch.isfinite(logits).all()

    dims = _top(imp.dims, 16)
    head, cut = getattr(teacher, attr), getattr(student, attr)
    assert torch.equal(cut.weight, head.weight[:, dims]) and torch.equal(cut.bias, head.bias)
    tt, ct = head.transform, cut.transform
    assert torch.equal(ct.dense.weight, tt.dense.weight[dims][:, dims]) and torch.equal(ct.dense.bias, tt.dense.bias[dims])
    assert tt.norm.bias is None and ct.norm.bias is None  # bias false: the norms have none
    assert torch.equal(ct.norm.weight, tt.norm.weight[dims])
    se, de = teacher.bert, student.bert
    assert de.embeddings.position_embeddings is None and de.embeddings.token_type_embeddings is None
    assert torch.equal(de.embeddings.word_embeddings.weight, se.embeddings.word_embeddings.weight[:, dims])
    assert torch.equal(de.embeddings.LayerNorm.weight, se.embeddings.LayerNorm.weight[dims])
    assert torch.equal(de.encoder.final_norm.weight, se.encoder.final_norm.weight[dims])
    for j, i in enumerate([1, 2]):
        sl, dl = se.encoder.layers[i], de.encoder.layers[j]
        if j:  # first_attn_norm false: the student's layer 0 reads the embedding norm, it has none of its own
            assert torch.equal(dl.attention.norm.weight, sl.attention.norm.weight[dims])
        neurons = _top(imp.neurons[i], 24)
        assert torch.equal(dl.ffn.up.weight[:24], sl.ffn.up.weight[neurons][:, dims])  # the value half
        assert torch.equal(dl.ffn.up.weight[24:], sl.ffn.up.weight[neurons + 48][:, dims])  # its gate rows
        assert torch.equal(dl.ffn.down.weight, sl.ffn.down.weight[dims][:, neurons])


@pytest.mark.parametrize("kind", ["token", "qa"])
def test_cutting_nothing_from_a_modern_model_gives_the_teacher(data, kind):  # noqa: F811
    """Every modern weight goes where the teacher had it: the same shape gives the same logits."""
    cls, _ = _heads()[kind]
    teacher = modern_teacher(data.tok.vocab_size, cls)
    b = batch_of(data.tok, TEXTS)
    student = prune_model(teacher, teacher.config, measure_importance(teacher, [b]), [0, 1, 2]).eval()
    with torch.no_grad():
        a, t = student(**modern_inputs(b)), teacher(**modern_inputs(b))
    for name in ("logits",) if kind == "token" else ("start_logits", "end_logits"):
        assert torch.equal(getattr(a, name), getattr(t, name))


def test_modern_pruning_refuses_what_it_cannot_cut(data):  # noqa: F811
    from berts.compress.prune import check_prunable
    from berts.errors import UserError

    teacher = modern_teacher(data.tok.vocab_size, _heads()["token"][0])
    t = teacher.config
    for change, words in (({"hidden_size": 16, "num_attention_heads": 4}, "RoPE"),  # head_dim 8 -> 4
                          ({"ffn": "standard"}, "ffn"), ({"norm_position": "post"}, "norm_position")):
        with pytest.raises(UserError) as e:
            check_prunable(t, t.replace(**change))
        assert words in str(e.value) and len(str(e.value).splitlines()) == 1
    # a student head without the teacher's transform would lose it: refused, not cut silently
    imp = measure_importance(teacher, [batch_of(data.tok, TEXTS)])
    with pytest.raises(UserError) as e:
        prune_model(teacher, t.replace(token_head="linear"), imp, [0, 1, 2])
    assert "token_head" in str(e.value) and len(str(e.value).splitlines()) == 1


def test_prune_directory_cuts_a_saved_modern_token_classifier(data, tmp_path):  # noqa: F811
    """compress.transforms.prune_directory on a saved modern token classifier (a ModernBERT directory):
    the saved student equals the in-memory cut, head transform included."""
    import berts
    from berts.compress.transforms import prune_directory

    src = tmp_path / "src"
    cls, _ = _heads()["token"]
    modern_teacher(data.tok.vocab_size, cls).save_pretrained(src, data.tok)
    source = berts.load(src).eval()
    assert source.config.token_head == "transform"
    small = prune_directory(src, tmp_path / "small", TEXTS, num_hidden_layers=2, hidden_size=16,
                            num_attention_heads=2, intermediate_size=24)
    imp = measure_importance(source, [batch_of(data.tok, TEXTS)])
    config = source.config.replace(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=24)
    ours = prune_model(source, config, imp, small["layers"]).eval()
    saved = berts.load(tmp_path / "small").eval()
    b = batch_of(data.tok, TEXTS)
    with torch.no_grad():
        assert torch.allclose(saved(**modern_inputs(b)).logits, ours(**modern_inputs(b)).logits, atol=1e-6)
    assert torch.equal(saved.classifier.transform.dense.weight, ours.classifier.transform.dense.weight)


def test_distill_student_init_prune_from_a_modern_classifier(data, tmp_path):  # noqa: F811
    """`berts distill --student-init prune` through the CLI from a modern classifier (a ModernBERT
    directory, whose pooler is ModernBERT's head: dense, gelu, norm), logit distillation (TinyBERT's
    compares heads one to one, and RoPE keeps head_dim: no narrower student): the student (tiny-modern's
    switches, narrower) holds the teacher's weights at the kept dims, pooler norm included (lr 1e-9:
    one step moves nothing). (`--student-init prune` takes encoder and classifier students only, so
    a token classifier is pruned by compress.transforms.prune_directory, tested above.)"""
    import berts
    from berts.model.heads import BertForSequenceClassification as Classifier

    teacher_dir = tmp_path / "teacher"
    labels = dict(num_labels=2, id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1})
    modern_teacher(data.tok.vocab_size, Classifier, sliding_window=64, **labels).save_pretrained(teacher_dir, data.tok)
    shape = ["--student-preset", "tiny-modern", "--set", "model.num_hidden_layers=2", "--set", "model.hidden_size=16",
             "--set", "model.num_attention_heads=2", "--set", "model.intermediate_size=24"]
    out = tmp_path / "run"
    assert cli(["distill", "--method", "logit-mse", "--teacher", teacher_dir, *shape, "--student-init", "prune",
                "--train", data.train, "--out", out, "--max-steps", "1", "--lr", "1e-9", "--batch-size", "8",
                *sets()]) == 0
    student, source = berts.load(out / "final").eval(), berts.load(teacher_dir).eval()
    assert student.config.hidden_size == 16 and student.config.pooler_norm and student.config.ffn == "glu"
    t, s = source.bert.pooler, student.bert.pooler
    cols = [int(((source.bert.embeddings.word_embeddings.weight - student.bert.embeddings.word_embeddings.weight[:, [j]])
                 .abs().max(0).values < 1e-6).nonzero()[0]) for j in range(16)]  # the kept residual dims
    assert len(set(cols)) == 16 and cols == sorted(cols)
    torch.testing.assert_close(s.norm.weight, t.norm.weight[cols], atol=1e-6, rtol=0)
    torch.testing.assert_close(s.dense.weight, t.dense.weight[cols][:, cols], atol=1e-6, rtol=0)
    torch.testing.assert_close(student.classifier.weight, source.classifier.weight[:, cols], atol=1e-6, rtol=0)
