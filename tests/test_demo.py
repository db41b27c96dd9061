"""The main job end to end on small text made here (the real one fetches registry corpora)."""
import json
import random

from berts.demo import DemoInputs, DemoSettings, run_demo

ZH_WORDS = ["经济", "发展", "人民", "国家", "建设", "改革", "开放", "世界", "和平", "合作", "新年", "城市",
            "很好", "喜欢", "满意", "推荐", "很差", "失望", "难用", "退货"]  # the review words must be in the vocabulary
EN_WORDS = ["the", "market", "grew", "city", "council", "voted", "for", "new", "roads", "and", "schools", "today"]


def corpus(path, words, joiner, rng, docs=60):
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(docs):
            for _ in range(rng.randint(3, 6)):
                sent = joiner.join(rng.choice(words) for _ in range(rng.randint(5, 12)))
                f.write(sent + ("。" if joiner == " " and words is ZH_WORDS else ".") + "\n")
            f.write("\n")


def sentiment(path, rng, n):
    good, bad = ["很好", "喜欢", "满意", "推荐"], ["很差", "失望", "难用", "退货"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("text\tlabel\n")
        for _ in range(n):
            label = rng.choice(["pos", "neg"])
            core = rng.choice(good if label == "pos" else bad)
            filler = "".join(rng.choice(ZH_WORDS) for _ in range(rng.randint(1, 4)))
            f.write(f"{filler}{core}{filler}\t{label}\n")


def baseline_accuracy(model_dir, test):
    import torch
    import transformers

    rows = [line.split("\t") for line in test.read_text(encoding="utf-8").splitlines()[1:]]
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    batch = tok([r[0] for r in rows], padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    names = [model.config.id2label[i] for i in predicted]
    return sum(n == r[1] for n, r in zip(names, rows)) / len(rows)


def test_demo_end_to_end(tmp_path):
    rng = random.Random(0)
    corpus(tmp_path / "zh.txt", ZH_WORDS, " ", rng)  # gold segmentation: words separated by spaces
    corpus(tmp_path / "en.txt", EN_WORDS, " ", rng)
    for split, n in (("train", 400), ("dev", 100), ("test", 100)):
        sentiment(tmp_path / f"{split}.tsv", rng, n)
    inputs = DemoInputs([tmp_path / "zh.txt", tmp_path / "en.txt"], tmp_path / "train.tsv", tmp_path / "dev.tsv",
                        tmp_path / "test.tsv")
    settings = DemoSettings(preset="tiny", vocab_size=200, limit_alphabet=200, max_seq_length=64,
                            pretrain_budget="5m", pretrain_steps=15, pretrain_batch=16,
                            finetune_budget="5m", finetune_steps=250, finetune_epochs=20, finetune_lr=1e-3, finetune_eval_every=25,
                            finetune_max_length=32, workers=1)
    report = run_demo(tmp_path / "out", inputs, settings)

    assert [s["exit"] for s in report["steps"]] == [0] * 7  # 5 steps + the random-init baseline
    # the baseline's test accuracy is what transformers computes from the saved directory (an oracle
    # outside berts), on the same rows: evaluate's number is checked, not merely in [0, 1]
    assert report["baseline_test"]["accuracy"] == baseline_accuracy(tmp_path / "out" / "baseline" / "best",
                                                                    tmp_path / "test.tsv")
    assert report["pretrain"]["last"]["train"]["step"] == 15
    assert report["test"]["accuracy"] > 0.9 and report["test"]["examples"] == 100
    assert report["transformers"]["same_token_ids"] is True
    assert report["transformers"]["max_abs_logit_diff"] < 1e-4
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["test"] == report["test"]
    text = (tmp_path / "out" / "report.md").read_text()
    assert "berts pretrain" in text and "test (best checkpoint): accuracy" in text
