"""Structured pruning (berts.compress.prune, `berts distill --student-init prune`): cutting nothing
gives the teacher exactly; cutting FFN neurons gives exactly the teacher with those neurons zeroed;
the attention scores of a student with fewer residual and head dimensions equal a hand computation
from the teacher's weights at the kept indices (with the teacher's 1/sqrt(head_dim)); importance
ignores padding; the command writes a plain Hugging Face directory whose weights are the pruned
model's, and refuses what it cannot cut in one line."""
import math

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
