"""Effective settings and where each came from: flags > environment > project .semsearch.toml > user config > defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.errors import SemsearchError
from semsearch.userdirs import ENV_HOME, default_index_dir, user_config_file

PROJECT_FILE = ".semsearch.toml"
MODES = ("hybrid", "semantic", "keyword")
MAX_TOP_K = 10_000  # hits one query may ask for (-k, top_k, the MCP tools' k)
DEFAULT_MODEL_NAMES = ("all-MiniLM-L6-v2", "default")


class ConfigError(SemsearchError):
    pass


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    parse: Callable[[Any, str, Path | None], Any]  # (raw value, where it came from, folder for relative paths)
    default: Callable[[], Any]
    accumulates: bool = False  # lists: every level adds to the ones below instead of replacing them


@dataclass(frozen=True)
class Value:
    value: Any
    source: str  # "flag", "env NAME", "project file PATH", "user file PATH" or "default"


@dataclass
class Settings:
    values: dict[str, Value]
    user_file: Path
    project_file: Path | None
    parts: dict[str, list[Value]] = field(default_factory=dict)  # accumulated settings, each part with its source

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name].value
        except KeyError:
            raise AttributeError(name) from None

    def source(self, name: str) -> str:
        return self.values[name].source

    def is_default(self, name: str) -> bool:
        return self.values[name].source == "default"

    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        for name, v in self.values.items():
            if name in self.parts:
                out[name] = {
                    "value": _plain(v.value),
                    "source": v.source,
                    "parts": [{"value": _plain(p.value), "source": p.source} for p in self.parts[name]],
                }
            else:
                out[name] = {"value": _plain(v.value), "source": v.source}
        return {
            "settings": out,
            "user_file": str(self.user_file),
            "user_file_exists": self.user_file.is_file(),
            "project_file": str(self.project_file) if self.project_file else None,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        from semsearch.storespec import mask

        return mask(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# -- parsing one value -------------------------------------------------------------------------


def _path(raw: Any, where: str, base: Path | None) -> Path:
    if not isinstance(raw, str | os.PathLike) or not str(raw):
        raise ConfigError(f"{where} must be a folder path, not {raw!r}.")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return Path(os.path.normpath(path))


def _model(raw: Any, where: str, base: Path | None) -> str:
    if isinstance(raw, str) and raw in DEFAULT_MODEL_NAMES:
        return raw
    return str(_path(raw, where, base))


def _positive_int(raw: Any, where: str, base: Path | None) -> int:
    try:
        value = int(raw) if not isinstance(raw, bool) and str(raw).strip().lstrip("+").isdigit() else None
    except (TypeError, ValueError):
        value = None
    if value is None or value < 1:
        raise ConfigError(f"{where} must be a whole number of at least 1, not {raw!r}.")
    return value


def _top_k(raw: Any, where: str, base: Path | None) -> int:
    value = _positive_int(raw, where, base)
    if value > MAX_TOP_K:
        raise ConfigError(f"{where} must be a whole number from 1 to {MAX_TOP_K}, not {raw!r}.")
    return value


def _chunk_size(raw: Any, where: str, base: Path | None) -> int:
    value = _positive_int(raw, where, base)
    if not 32 <= value <= 100_000:
        raise ConfigError(f"{where} is {value} tokens; use at least 32 and at most 100000 (or leave it unset).")
    return value


def _mode(raw: Any, where: str, base: Path | None) -> str:
    if raw not in MODES:
        raise ConfigError(f"{where} is {raw!r}; use one of: {', '.join(MODES)}.")
    return raw


def _min_score(raw: Any, where: str, base: Path | None) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where} is a relevance from 0 to 1 (0: every hit), not {raw!r}.")
    return value


def _bool(raw: Any, where: str, base: Path | None) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{where} must be true or false, not {raw!r}.")


def _globs(raw: Any, where: str, base: Path | None) -> list[str]:
    if isinstance(raw, str):  # the environment: comma-separated
        return [g.strip() for g in raw.split(",") if g.strip()]
    if isinstance(raw, list | tuple) and all(isinstance(g, str) for g in raw):
        return [g for g in raw if g]
    raise ConfigError(f"{where} must be a list of glob strings, not {raw!r}.")


def _store(raw: Any, where: str, base: Path | None) -> str:
    from semsearch import storespec

    if not isinstance(raw, str) or not storespec.is_url(raw.strip()):
        shown = storespec.mask(raw) if isinstance(raw, str) else repr(raw)
        raise ConfigError(f"{where} must be a postgresql://USER@HOST/DATABASE URL, not {shown}.")
    try:
        storespec.parse(raw.strip())
    except SemsearchError as e:
        raise ConfigError(f"{where}: {e}") from None
    return raw.strip()


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("model", "SEMSEARCH_MODEL", _model, lambda: "all-MiniLM-L6-v2"),  # the model of new indexes
        Setting("index", ENV_HOME, _path, default_index_dir),
        # A PostgreSQL database instead of the index folder (postgresql://USER@HOST/DB?index=NAME): a shared index.
        Setting("store", "SEMSEARCH_STORE", _store, lambda: None),
        Setting("exclude", "SEMSEARCH_EXCLUDE", _globs, list, accumulates=True),  # globs never indexed
        Setting("chunk_size", "SEMSEARCH_CHUNK_SIZE", _chunk_size, lambda: None),  # None: the model's limit
        Setting("mode", "SEMSEARCH_MODE", _mode, lambda: "hybrid"),  # the default search mode
        Setting("top_k", "SEMSEARCH_TOP_K", _top_k, lambda: 10),  # hits a query shows
        # the least relevance a hit needs to be shown (0: every hit); None: the calibrated cut-off
        Setting("min_score", "SEMSEARCH_MIN_SCORE", _min_score, lambda: None),
        # follow every symbolic link, as rg -L (default: only links that stay inside the indexed folders)
        Setting("follow", "SEMSEARCH_FOLLOW", _bool, lambda: False),
    )
}


# -- the files -----------------------------------------------------------------------------------


def find_project_file(start: Path | None = None) -> Path | None:
    """The nearest ``.semsearch.toml`` in the current folder or above it."""
    folder = (start or Path.cwd()).absolute()
    for candidate in (folder, *folder.parents):
        file = candidate / PROJECT_FILE
        if file.is_file():
            return file
    return None


def read_file(path: Path, label: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read the {label} {path} ({e}); fix or remove it.") from None
    import tomllib  # only when there is a file to read: most queries find none, and it costs 2 ms

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"The {label} {path} is not valid TOML ({e}); fix or remove it.") from None
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"Unknown setting {unknown[0]!r} in {path}; the settings are: {', '.join(SETTINGS)}.")
    return data


# -- resolving --------------------------------------------------------------------------------------


_FLAGS: dict[str, Any] = {}  # flags every command takes (--store), set by the command line


def set_flag(name: str, value: Any) -> None:
    if value is None:
        _FLAGS.pop(name, None)
    else:
        _FLAGS[name] = value


def resolve(
    flags: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """The effective settings. ``flags`` holds what the command line gave (None: not given)."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in {**_FLAGS, **(flags or {})}.items() if v is not None and v != []}
    unknown = set(flags) - set(SETTINGS)
    if unknown:
        raise ValueError(f"not settings: {sorted(unknown)}")
    user_file = user_config_file(env)
    project_file = find_project_file(cwd)
    levels: list[tuple[str, dict[str, Any], Path | None]] = [
        (f"user file {user_file}", read_file(user_file, "user config file"), user_file.parent),
    ]
    if project_file is not None:
        levels.append((f"project file {project_file}", read_file(project_file, "project file"), project_file.parent))
    levels.append(
        ("env", {name: env[s.env] for name, s in SETTINGS.items() if env.get(s.env, "").strip()}, cwd or Path.cwd())
    )
    levels.append(("flag", dict(flags), cwd or Path.cwd()))

    values: dict[str, Value] = {}
    parts: dict[str, list[Value]] = {}
    for name, setting in SETTINGS.items():
        chosen = Value(setting.default(), "default")
        collected: list[Value] = []
        for label, data, base in levels:
            if name not in data:
                continue
            source = f"env {setting.env}" if label == "env" else label
            flag = {"top_k": "-k"}.get(name, f"--{name.replace('_', '-')}")
            where = {"env": f"${setting.env}", "flag": flag}.get(label, f"{name!r} in the {source}")
            parsed = setting.parse(data[name], where, base)
            if setting.accumulates:
                collected.extend(Value(item, source) for item in parsed)
            else:
                chosen = Value(parsed, source)
        if setting.accumulates:
            parts[name] = collected
            chosen = Value([v.value for v in collected], ", ".join(_ordered_sources(collected)) or "default")
        values[name] = chosen
    store, index = values["store"], values["index"]
    # A store setting wins over the index folder, but not over an --index given on the command line to it.
    if store.value is not None and not (index.source == "flag" and store.source != "flag"):
        from semsearch.storespec import select

        values["index"] = Value(select(store.value, index.value), store.source)
    return Settings(values, user_file, project_file, parts)


def _ordered_sources(values: list[Value]) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v.source not in seen:
            seen.append(v.source)
    return seen
