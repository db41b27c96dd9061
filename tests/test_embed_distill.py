"""`berts distill --method embedding`: the student's pooled embedding regresses a sentence
encoder teacher's (MSE, the teacher's pooling), and the result is a sentence-transformers directory."""
import json

import numpy as np
import torch

from train_utils import TINY, cli, shards  # noqa: F401 (fixture)

RUN = [x for item in TINY if not item.startswith("model.") for x in ("--set", item)]


def _teacher(shards, root, hidden=32):  # noqa: F811
    from berts.embed.st_format import write_st_dir
    from berts.model.config import BertConfig
    from berts.model.encoder import BertModel
    from berts.tokenizer.wordpiece import load_tokenizer

    meta = json.loads((shards / "meta.json").read_text())
    tok = load_tokenizer(shards.parent / "tok")
    torch.manual_seed(1)
    model = BertModel(BertConfig(vocab_size=int(meta["vocab_size"]), hidden_size=hidden, num_hidden_layers=4,
                                 num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64))
    write_st_dir(root / "teacher", model, tok, ["cls", "mean"], True, 32)  # cls+mean concatenated, normalised
    return root / "teacher", model, tok


def test_loss_is_the_mse_of_the_pooled_embeddings(shards, tmp_path):  # noqa: F811
    from berts.compress.embedding.task import EmbeddingDistillTask
    from berts.embed.encoder import Encoder

    path, teacher, tok = _teacher(shards, tmp_path)
    student = Encoder.from_pretrained(path).model  # a copy: equal to the teacher, zero loss
    task = EmbeddingDistillTask(student, teacher.eval(), None, modes=("cls", "mean"), normalize=True)
    enc = tok(["the cat sat", "a big red house by the river"], padding=True, return_tensors="pt")
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    student.eval()
    losses, metrics = task.loss(task.modules(), batch)
    assert float(losses["mse"]) < 1e-10 and abs(float(metrics["cos"]) - 1) < 1e-5
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.05 * torch.randn_like(p))
        losses, _ = task.loss(task.modules(), batch)
        # by hand: both pooled (cls ++ mean over real tokens), not normalised, mean over rows and dims
        def pooled(m):
            h = m(**batch).last_hidden_state
            mask = batch["attention_mask"][:, :, None].float()
            return torch.cat([h[:, 0], (h * mask).sum(1) / mask.sum(1)], -1)
        want = (pooled(student) - pooled(teacher)).pow(2).mean()
    torch.testing.assert_close(losses["mse"], want, rtol=1e-5, atol=1e-7)


def test_distill_method_embedding_writes_a_sentence_encoder(shards, tmp_path):  # noqa: F811
    path, _, _ = _teacher(shards, tmp_path)
    out = tmp_path / "student"
    assert cli(["distill", "--method", "embedding", "--teacher", path, "--student-layers", "0,3", "--data", shards,
                "--out", out, "--max-steps", "6", "--batch-size", "8", "--lr", "1e-3", *RUN]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"mse"' in x]
    assert rows and {"mse", "cos"} <= set(rows[0])
    final = out / "final"
    modules = json.loads((final / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    from berts.embed.encoder import Encoder

    enc = Encoder.from_pretrained(final)
    assert enc.pooling.modes == ("cls", "mean") and enc.model.config.num_hidden_layers == 2
    v = enc.encode("the cat sat on the hill")  # one string: one vector
    assert v.shape == (64,) and abs(np.linalg.norm(v) - 1) < 1e-5


def test_compare_reports_retrieval_speed_and_size_of_teacher_and_student(shards, tmp_path, capsys):  # noqa: F811
    path, _, _ = _teacher(shards, tmp_path)
    out = tmp_path / "student"
    assert cli(["distill", "--method", "embedding", "--teacher", path, "--student-layers", "0,3", "--data", shards,
                "--out", out, "--max-steps", "2", "--batch-size", "8", *RUN]) == 0
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = ["the cat sat on the hill", "a big red house", "the river ran by the tree", "a small blue bird"]
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": t[:12]}) + "\n"
                                                for i, t in enumerate(docs)))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(4)))
    capsys.readouterr()
    assert cli(["compare", path, out / "final", "--eval-file", beir, "--repeats", "1"]) == 0
    table = capsys.readouterr().out
    assert "ndcg@10" in table and str(out / "final") in table
    from berts.embed.encoder import Encoder
    from berts.embed.metrics import evaluate_retrieval, read_beir
    from berts.tools.compare import compare

    rows = compare([path, out / "final"], beir, repeats=1)
    enc = Encoder.from_pretrained(out / "final")
    want = evaluate_retrieval(lambda t: enc.encode(t), *read_beir(beir, "test"))["ndcg@10"]
    assert rows[1]["score"] == want and rows[1]["layers"] == 2 and rows[0]["layers"] == 4
    assert rows[1]["params"] < rows[0]["params"] and rows[1]["size_mb"] < rows[0]["size_mb"]
