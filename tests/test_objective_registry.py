"""The objectives registry (issue 25, point 1) is the one source of objective names: the command
line's choices, `berts prepare`'s makers and label counts, the run config's list (and the old
spellings that map to it), the model's heads, and config.json (old `berts_*` switches upgraded)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from berts.config.schema import PretrainConfig, load_config
from berts.data import instances
from berts.errors import UserError
from berts.model.heads import BertForMaskedLM, BertForPreTraining
from berts.objectives import registry
from conftest import padded_batch, randomize

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_reading_the_registry_imports_no_torch():
    code = ("import sys; from berts.objectives import registry as r; print(' '.join(r.names())); "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=SRC))
    names, heavy = done.stdout.splitlines()
    assert heavy == "False False"
    assert names.split() == ["mlm", "electra", "unilm", "clm", "seq2seq", "nsp", "sop", "samedoc", "sbo",
                             "reorder", "distance", "wso"]
    kinds = {n: registry.get(n).kind for n in names.split()}
    assert [n for n, k in kinds.items() if k == "sentence"] == ["nsp", "sop", "samedoc", "reorder", "distance"]
    assert [n for n, k in kinds.items() if k == "token"] == ["mlm", "sbo", "wso"]


def choices(command: str, flag: str):
    from berts.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return tuple(next(a for a in sub._actions if flag in a.option_strings).choices)


def test_the_command_line_choices_are_the_registry():
    assert choices("prepare", "--objective") == registry.names("sentence") + ("none",)
    assert choices("pretrain", "--objectives") == registry.names() + ("auto",)
    assert choices("pretrain", "--objective") == ("auto", "none") + registry.names("sentence", "lm", "pair")


def test_prepare_reads_its_makers_and_labels_from_the_specs():
    assert instances.objectives() == registry.sentence_names()
    for name in registry.names("sentence"):
        spec = registry.get(name)
        assert instances.maker(name) is spec.load("maker")
        assert (instances.num_labels(name), instances.num_special(name)) == (spec.num_labels, spec.num_special)
    assert (instances.num_labels("reorder"), instances.num_special("reorder")) == (9, 4)
    assert (instances.num_labels("none"), instances.num_special("none")) == (0, 2)


@pytest.mark.parametrize("old, new, shards", [
    (["data.objective=sop", "data.sbo=true"], ["mlm", "sop", "sbo"], "sop"),
    (["data.objective=auto", "data.wso=true"], ["mlm", "distance", "wso"], "distance"),
    ([], ["mlm", "nsp"], "nsp"),  # the default: auto = the shards'
    (["data.objective=none"], ["mlm"], "nsp"),
    (["data.objective=clm"], ["clm"], "nsp"),
    (["data.objective=electra"], ["electra"], "none"),
])
def test_old_spellings_map_to_the_same_list(old, new, shards):
    meta = {"objective": shards}
    from_old = registry.resolve_objectives(load_config(PretrainConfig, sets=old), meta)
    listed = registry.resolve_objectives(load_config(PretrainConfig, sets=[f"data.objectives={new}"]), meta)
    assert from_old == listed == new
    auto = registry.resolve_objectives(load_config(PretrainConfig, sets=["data.objectives=[mlm, auto]"]), meta)
    assert auto == (["mlm"] if shards == "none" else ["mlm", shards])


def test_the_cli_flag_sets_the_list(tmp_path):
    from berts.commands.pretrain import _overrides
    from berts.cli import build_parser

    args = build_parser().parse_args(["pretrain", "--data", "d", "--objectives", "mlm", "sop", "sbo"])
    cfg = load_config(PretrainConfig, overrides=_overrides(args))
    assert cfg.data.objectives == ["mlm", "sop", "sbo"]
    assert registry.resolve_objectives(cfg, {"objective": "sop"}) == ["mlm", "sop", "sbo"]


@pytest.mark.parametrize("sets, meta, says", [
    (["data.objectives=[mlm, nsp, sop]"], None, "objectives: at most one sentence-level objective, got nsp, sop"),
    (["data.objectives=[sop, sbo]"], None, "objectives: sop needs mlm in the list"),
    (["data.objectives=[electra, sbo]"], None, "electra trains a model of its own and combines with no other"),
    (["data.objectives=[mlm, unilm]"], None, "unilm trains a model of its own"),
    (["data.objectives=[mlm, mlm]"], None, "objectives: mlm is listed twice"),
    (["data.objectives=[mlm, sopp]"], None, "--set data.objectives=[mlm, sopp]: data.objectives must be a list of mlm"),
    (["data.objectives=[mlm]", "data.sbo=true"], None, "data.objectives is set: drop data.sbo"),
    (["data.objectives=[mlm, sop]"], {"objective": "nsp"}, "sop needs shards prepared with --objective sop"),
    (["data.objective=electra", "data.sbo=true"], None, "set data.sbo: false"),
])
def test_combinations_are_checked_in_one_place(sets, meta, says):
    with pytest.raises(UserError) as err:
        cfg = load_config(PretrainConfig, sets=sets)  # what the shards do not decide is checked here already
        registry.resolve_objectives(cfg, meta)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_name_suggests_the_nearest():
    with pytest.raises(UserError, match=r"unknown objective 'sopp' \(did you mean sop\?\); known: mlm, "):
        registry.check_objectives(["mlm", "sopp"])


def test_the_model_builds_the_heads_its_config_names(tiny_config):
    m = BertForPreTraining(tiny_config.replace(objectives=["mlm", "reorder", "sbo", "wso"]))
    assert m.objective_names == ("mlm", "sbo", "wso", "structure") and m.seq_relationship is None
    assert m.loss_parts == ("mlm", "sbo", "wso", "reorder") and m.config.span_boundary_objective
    plain = BertForPreTraining(tiny_config)  # None: transformers' class, MLM + NSP/SOP's head
    assert plain.objective_names == ("mlm", "seq_relationship") and plain.sbo is None and plain.structure is None
    assert BertForMaskedLM(tiny_config.replace(objectives=["mlm", "sop", "wso"])).objective_names == ("mlm", "wso")
    with pytest.raises(TypeError, match="unexpected keyword argument 'sentence_reordr_label'"):
        plain(**padded_batch(), sentence_reordr_label=torch.tensor([0, 1, 2]))  # a typo, as transformers
    out = plain(**padded_batch(), sentence_reorder_label=torch.tensor([0, 1, 2]))  # a head it lacks: ignored
    assert out.structure_logits is None and out.losses is None


OLD_SWITCHES = {"berts_structure_objective": "distance", "berts_wso": True}


def test_a_directory_with_the_old_switches_loads(tiny_config, tmp_path):
    """config.json written before the switches were typed fields: berts_structure_objective,
    berts_wso, berts_lm_mode, berts_lm_readout map to objectives / lm_mode / lm_readout."""
    import berts
    from berts.model.heads import BertForUnifiedLM
    from berts.serve.generate import TextGenerator

    model = randomize(BertForPreTraining(tiny_config.replace(objectives=["mlm", "distance", "wso", "sbo"]))).eval()
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    d = json.loads(path.read_text())
    assert d["objectives"] == ["mlm", "distance", "wso", "sbo"]
    for key in ("objectives", "lm_mode", "lm_readout"):  # as an older berts wrote it
        d.pop(key)
    d.update(OLD_SWITCHES)
    assert d["span_boundary_objective"] is True
    path.write_text(json.dumps(d))
    back = berts.load(tmp_path / "m").eval()
    assert type(back) is BertForPreTraining
    assert sorted(back.config.objectives) == ["distance", "mlm", "sbo", "wso"]
    assert not set(OLD_SWITCHES) & set(back.config.extra)
    assert back.objective_names == model.objective_names
    batch = padded_batch()
    torch.testing.assert_close(back(**batch).structure_logits, model(**batch).structure_logits, rtol=0, atol=0)
    back.save_pretrained(tmp_path / "again")  # written back with the new names only
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert not set(OLD_SWITCHES) & set(again) and sorted(again["objectives"]) == ["distance", "mlm", "sbo", "wso"]

    lm = BertForUnifiedLM(tiny_config)
    lm.save_pretrained(tmp_path / "lm")
    path = tmp_path / "lm" / "config.json"
    d = json.loads(path.read_text())
    d.pop("lm_mode"), d.pop("lm_readout")
    d.update(berts_lm_mode="seq2seq", berts_lm_readout="mask")
    path.write_text(json.dumps(d))
    back = berts.load(tmp_path / "lm")
    assert (back.config.lm_mode, back.config.lm_readout) == ("seq2seq", "mask")
    assert not [k for k in back.config.extra if k.startswith("berts_lm")]
    gen = TextGenerator(back, tokenizer=None)
    assert (gen.mode, gen.readout) == ("seq2seq", "mask")
