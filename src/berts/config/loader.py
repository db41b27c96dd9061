"""Reading a configuration: YAML files -> typed dataclass values, with ``file:line`` in every error.

    cfg = load_config(PretrainConfig, ["configs/model/tiny.yaml", "configs/budget/smoke.yaml"],
                      ["optim.lr=5e-4"])          # defaults, then each file left to right, then --set
    s = load_settings(DemoSettings(), "demo.yaml", ["budget=30m"])   # a flat dataclass, the same rules

What is ours and what is pydantic's. Turning a value into a field's type (``"1e-3"`` -> 0.001,
``3.0`` -> 3, ``[0.9, 0.98]`` -> list[float], unions, Literals) is pydantic's lax mode
(``TypeAdapter`` per annotation, cached; pydantic 2, a dependency since then). What pydantic does
not know stays here: which file and line a key came from (PyYAML's node marks), duplicate keys
(YAML keeps the last silently), the nearest key for a typo (difflib), ``--set a.b=c``, merging
several files, the model section's open set of keys (any BertConfig field), and the one-line
messages (``c.yaml:3: optim.lr must be a number, got 'fast'``). pydantic's models were not used for
the sections: their errors carry no file:line, and a section would become a BaseModel that every
reader of the schema has to know. OmegaConf was not chosen: it is not installed, its merge and
interpolation are more than a run config needs, and its errors lose the file as well.
Cost: pydantic's import is about 0.1 s, paid only when a value is set (never by ``--help``).
Lines (wc -l): config/ was one 678-line schema.py; now schema.py 234 (sections only), loader.py
~410, validate.py ~210 (with the checks that were in runs/pretrain.py, runs/finetune.py,
compress/distil.py and compress/fastbert.py, about 85 lines there). The hand-written ``coerce``
(77 lines) is 24 here; what grew is new: several files merged, the flat settings of the demo and
the bench (load_settings), show_config for them, check_run.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from berts.config.validate import validate
from berts.errors import UserError


# ----------------------------------------------------------------------------- YAML with lines
def _line_map(node, prefix=(), out=None) -> dict[tuple[str, ...], int]:
    """(section, key, ...) -> 1-based line of each mapping key in a composed YAML document."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                path = prefix + (str(key.value),)
                out[path] = key.start_mark.line + 1
                _line_map(value, path, out)
    return out


def _check_duplicates(node, path, prefix=()) -> None:
    """YAML takes the last of two equal keys silently: a second ``optim:`` section would replace
    the first. Refuse it, naming both lines."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                name, line = str(key.value), key.start_mark.line + 1
                if name in seen:
                    what = "section" if not prefix else "key"
                    raise UserError(f"{path}:{line}: duplicate {what} {'.'.join(prefix + (name,))} "
                                    f"(first at line {seen[name]}): merge them into one")
                seen[name] = line
                _check_duplicates(value, path, prefix + (name,))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicates(item, path, prefix)


def read_yaml(path: str | Path) -> tuple[dict, dict[tuple[str, ...], int]]:
    """(the mapping in ``path``, {key path: line}); a bad file is a UserError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the config ({exc.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text) if data else None
        _check_duplicates(node, path)
        lines = _line_map(node) if data else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{loc}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config is a mapping of sections (model:, data:, optim:, ...)")
    return data, lines


def _as_paths(paths) -> list:
    """None, one path, or a list of them (``--config a.yaml b.yaml``) -> a list."""
    if paths is None:
        return []
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


# ----------------------------------------------------------------------------- values
def _type_name(tp) -> str:
    """A field's type in words, for messages: ``an integer or null``, ``auto | fp32 | bf16``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) if not isinstance(a, str) else a for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


class _Mismatch(Exception):
    pass


def _leaves(tp) -> tuple:
    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)


@functools.cache
def _adapter(tp):
    # ~0.1 s: paid when a value is set, not by --help
    from pydantic import ConfigDict, TypeAdapter

    return TypeAdapter(tp, config=ConfigDict(coerce_numbers_to_str=True))  # a column index 0 -> "0"


def coerce(value: Any, tp) -> Any:
    """``value`` as type ``tp`` (a dataclass field annotation) or raise _Mismatch. pydantic's lax
    mode, after three rules of ours: ``null``/``none`` is None where None is allowed, a Literal's
    choice matches in any case (``BF16``), and true/false is not a number."""
    leaves = _leaves(tp)
    if isinstance(value, str):
        low = value.strip().lower()
        if type(None) in leaves and low in ("null", "none", "~"):
            return None
        for leaf in leaves:
            if typing.get_origin(leaf) is Literal and low in typing.get_args(leaf):
                return low
    if type(value) in leaves and type(value) in (int, float, str, bool, type(None)):
        return value  # already the field's type, as most YAML values are: no adapter to build
    if isinstance(value, bool) and not any(leaf in (bool, Any) or typing.get_origin(leaf) is Literal
                                           for leaf in leaves):
        raise _Mismatch
    from pydantic import ValidationError

    try:
        return _adapter(tp).validate_python(value)
    except ValidationError:
        raise _Mismatch from None


def _finite(value, dotted: str, loc: str):
    """nan and inf read as numbers (``--set optim.lr=nan``, YAML's ``.inf``): no key means them."""
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        raise UserError(f"{loc}: {dotted} must be a finite number, got {value!r}")
    return value


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known)})"
    return f"unknown {kind} {name}{hint}"


@functools.cache
def _hints(cls) -> dict[str, Any]:
    return {k: v for k, v in typing.get_type_hints(cls).items() if typing.get_origin(v) is not typing.ClassVar}


def _extra_hints(section) -> dict[str, Any]:
    """A section's keys besides its fields (the model section: BertConfig's), or {}."""
    extra = getattr(section, "extra_keys", None)
    if extra is None:
        return {}
    hints = dict(_hints(extra()))
    for key in getattr(section, "not_keys", ("extra",)):  # fields of that class that are not keys here
        hints.pop(key, None)
    return hints


# ----------------------------------------------------------------------------- setting keys
def set_key(section, section_name: str, keys: tuple[str, ...] | str, value: Any, loc: str) -> None:
    """section.<key> = value, type-checked against the section's annotations. ``section_name`` ""
    for a flat dataclass (DemoSettings, BenchOptions): its keys are named alone."""
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    hints = _hints(type(section))
    prefix = f"{section_name}." if section_name else ""
    dotted = prefix + ".".join(keys)
    extra = _extra_hints(section) if hasattr(section, "overrides") else {}
    key = keys[0]
    if extra and key == "overrides" and len(keys) > 1:
        keys = keys[1:]  # model.overrides.hidden_size == model.hidden_size
        key = keys[0]
    if extra and key not in hints:
        if key not in extra:
            known = [prefix + k for k in list(hints) + list(extra) if k != "overrides"]
            raise UserError(f"{loc}: " + _unknown("key", prefix + key, known))
        if len(keys) != 1:
            raise UserError(f"{loc}: {dotted} is not a key")
        try:
            section.overrides[key] = _finite(coerce(value, extra[key]), prefix + key, loc)
        except _Mismatch:
            raise UserError(f"{loc}: {prefix}{key} must be {_type_name(extra[key])}, got {value!r}") from None
        return
    if key not in hints:
        raise UserError(f"{loc}: " + _unknown("key", prefix + key, [prefix + k for k in hints]))
    if len(keys) != 1:
        raise UserError(f"{loc}: {dotted} is not a key ({prefix}{key} has no sub-keys)")
    if extra and key == "overrides":
        if not isinstance(value, dict):
            raise UserError(f"{loc}: {dotted} must be a mapping of model config fields")
        for k, v in value.items():
            set_key(section, section_name, str(k), v, loc)
        return
    try:
        setattr(section, key, _finite(coerce(value, hints[key]), dotted, loc))
    except _Mismatch:
        raise UserError(f"{loc}: {dotted} must be {_type_name(hints[key])}, got {value!r}") from None


def set_value(cfg, path: tuple[str, ...], value: Any, loc: str) -> None:
    """cfg.<section>.<key> = value with type checking; ``loc`` prefixes error messages."""
    sections = [f.name for f in dataclasses.fields(cfg)]
    if len(path) < 2:
        if len(path) == 1 and path[0] in sections:
            raise UserError(f"{loc}: {path[0]} is a section: give section.key=value")
        raise UserError(f"{loc}: " + _unknown("section", path[0] if path else "''", sections))
    if path[0] not in sections:
        raise UserError(f"{loc}: " + _unknown("section", path[0], sections))
    set_key(getattr(cfg, path[0]), path[0], path[1:], value, loc)


def apply_dict(cfg, data: dict, source: str = "config", lines: dict | None = None):
    """Merge a nested dict (as read from YAML) into ``cfg``, key by key, so that a second file
    changes only the keys it names (a mapping-valued key, such as train.class_weights, is replaced
    whole); errors name ``source:line``."""
    lines = lines or {}
    sections = [f.name for f in dataclasses.fields(cfg)]
    for section_name, body in data.items():
        loc = f"{source}:{lines[(str(section_name),)]}" if (str(section_name),) in lines else source
        if str(section_name) not in sections:
            raise UserError(f"{loc}: " + _unknown("section", str(section_name), sections))
        if body is None:
            continue
        if not isinstance(body, dict):
            raise UserError(f"{loc}: section {section_name} must be a mapping of key: value")
        for key, value in body.items():
            path = (str(section_name), str(key))
            set_value(cfg, path, value, f"{source}:{lines[path]}" if path in lines else loc)
    return cfg


def parse_set(item: str) -> tuple[tuple[str, ...], Any]:
    """``section.key=value`` -> ((section, key), value); the value is read as YAML."""
    if "=" not in item:
        raise UserError(f"--set {item}: expected section.key=value")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key:
        raise UserError(f"--set {item}: expected section.key=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    if value is None and text.strip().lower() not in ("null", "none", "~"):
        value = text  # e.g. a column named "#1 String", which YAML reads as a comment
    return tuple(key.split(".")), value


def build_config(cls, paths=None, sets: list[str] | None = None, overrides: dict | None = None):
    """Defaults of ``cls``, then each YAML file left to right (later wins), then ``overrides`` (a
    nested dict from command-line flags), then each ``--set section.key=value``. Types checked at
    every step; the checks across keys are not made (``--show-config`` shows a config as it is)."""
    cfg = cls()
    for path in _as_paths(paths):
        data, lines = read_yaml(path)
        apply_dict(cfg, data, str(path), lines)
    if overrides:
        apply_dict(cfg, overrides, "command line")
    for item in sets or []:
        key, value = parse_set(item)
        set_value(cfg, key, value, f"--set {item}")
    return cfg


def load_config(cls, paths=None, sets: list[str] | None = None, overrides: dict | None = None):
    """build_config, then berts.config.validate.validate (the values make sense together)."""
    cfg = build_config(cls, paths, sets, overrides)
    validate(cfg)
    return cfg


def load_settings(obj, paths=None, sets: list[str] | None = None, source: str = "--set"):
    """A flat dataclass (DemoSettings, BenchOptions) from YAML files of ``key: value`` and
    ``key=value`` items, by the rules of load_config: typed, file:line, the nearest key."""
    for path in _as_paths(paths):
        data, lines = read_yaml(path)
        for key, value in data.items():
            where = f"{path}:{lines[(str(key),)]}" if (str(key),) in lines else str(path)
            set_key(obj, "", str(key), value, where)
    for item in sets or []:
        key, value = parse_set(item)
        set_key(obj, "", key, value, f"{source} {item}")
    return obj


# ----------------------------------------------------------------------------- writing
def _plain(value):
    """YAML's safe dumper writes lists, not tuples."""
    return list(value) if isinstance(value, tuple) else value


def config_to_dict(cfg) -> dict:
    """{section: {key: value}} (a flat dataclass: {key: value}); model overrides written inline."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not dataclasses.is_dataclass(value):
            out[f.name] = _plain(value)
            continue
        section = {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
        if "overrides" in section:  # model: overrides are written inline, as they are read
            section.update(section.pop("overrides"))
        out[f.name] = section
    return out


def config_from_dict(cls, data: dict):
    """The inverse of config_to_dict (e.g. for a checkpoint's resolved config)."""
    cfg = apply_dict(cls(), data, "saved config")
    validate(cfg)
    return cfg


def dump_config(cfg) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


def save_config(cfg, path: str | Path) -> None:
    Path(path).write_text("# resolved configuration (berts)\n" + dump_config(cfg), encoding="utf-8")


# ----------------------------------------------------------------------------- --show-config
def _field_comments(cls) -> dict[str, str]:
    """{field: its trailing ``# comment``} from the dataclass source (and its bases')."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.+)$", source, re.MULTILINE):
            out[m.group(1)] = m.group(2).strip()
    return out


def _rows(obj, prefix: str) -> list[tuple]:
    """(key, value, type, note) for each key of one section (or a flat dataclass)."""
    rows = []
    hints, notes = _hints(type(obj)), _field_comments(type(obj))
    for key in (k.name for k in dataclasses.fields(obj)):
        if key != "overrides":
            rows.append((prefix + key, getattr(obj, key), _type_name(hints[key]), notes.get(key, "")))
    if hasattr(obj, "extra_keys"):  # the model section: BertConfig's fields, their defaults the class'
        extra_cls = obj.extra_keys()
        extra_notes, defaults = _field_comments(extra_cls), extra_cls()
        for key, tp in _extra_hints(obj).items():
            value = obj.overrides.get(key, getattr(defaults, key))
            note = "set" if key in obj.overrides else getattr(obj, "default_note", "default: the model's (BertConfig's here)")
            if extra_notes.get(key):
                note += "; " + extra_notes[key]
            rows.append((prefix + key, value, _type_name(tp), note))
    return rows


def show_config(cfg) -> str:
    """Every ``--set`` key of a config, one a line: ``section.key  value  (type)  # what it is``.
    ``cfg`` is the config as it would run (its class' defaults, then the files and the flags given),
    so ``berts finetune --show-config`` is the defaults and ``--config F --show-config`` F's values.
    The model section also takes any model config field (``model.hidden_size``), listed after it
    with BertConfig's defaults (a model directory's own config.json has the last word)."""
    sectioned = all(dataclasses.is_dataclass(getattr(cfg, f.name)) for f in dataclasses.fields(cfg))
    if sectioned:
        rows = [r for f in dataclasses.fields(cfg) for r in _rows(getattr(cfg, f.name), f.name + ".")]
    else:
        rows = _rows(cfg, "")

    def shown(v):
        v = _plain(v)
        return "null" if v is None else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()

    width = max(len(r[0]) for r in rows)
    vwidth = min(max(len(shown(r[1])) for r in rows), 24)
    what = "SECTION.KEY" if sectioned else "KEY"
    lines = [f"# every --set {what}=VALUE of {type(cfg).__name__}: key, value, (type), what it is"]
    for key, value, tp, note in rows:
        lines.append(f"{key:<{width}}  {shown(value):<{vwidth}}  ({tp})" + (f"  # {note}" if note else ""))
    return "\n".join(lines)
