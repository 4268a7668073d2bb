"""Click options generated from the settings table, and their conversion into `Settings`."""

import json
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from backends.mounts import Mount
from gateway.settings import SETTINGS, Setting, Settings, default_workers

F = Callable[..., Any]
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")


def setting_options(command: F) -> F:
    """Decorate `command` with one click option per row of the settings table."""
    return options_for(*(setting.name for setting in SETTINGS))(command)


def options_for(*names: str) -> Callable[[F], F]:
    """Decorate `command` with the options of just these settings, in the table's order."""
    rows = [setting for setting in SETTINGS if setting.name in names]

    def decorate(command: F) -> F:
        for setting in reversed(rows):
            command = _option(setting)(command)
        return command

    return decorate


def _option(setting: Setting) -> Callable[[F], F]:
    kwargs: dict[str, Any] = {"envvar": setting.env, "show_default": True, "help": setting.help}
    if setting.type is bool and setting.default:  # on by default: --name / --no-name
        flags = f"{setting.flag}/--no-{setting.flag[2:]}"
        return click.option(flags, setting.name, default=True, **kwargs)
    if setting.type is bool:
        return click.option(setting.flag, setting.name, is_flag=True, default=False, **kwargs)
    if setting.multiple:
        return click.option(setting.flag, setting.name, multiple=True, default=(), **kwargs)
    return click.option(
        setting.flag, setting.name, type=setting.type, default=setting.default, **kwargs
    )


def build_settings(values: dict[str, Any]) -> Settings:
    values = dict(values)
    server_opts = values.pop("gunicorn_opts") + " " + values.pop("uvicorn_opts")
    values.update(parse_server_opts(server_opts, values))
    values["storage_options"] = storage_options(values)
    values["mounts"] = mounts(values)
    values["log_level"] = values["log_level"].lower()
    if values["log_level"] not in LOG_LEVELS:
        raise click.BadParameter(f"one of {', '.join(LOG_LEVELS)}", param_hint="--log-level")
    values["log_format"] = values["log_format"].lower()
    if values["log_format"] not in LOG_FORMATS:
        raise click.BadParameter(f"one of {', '.join(LOG_FORMATS)}", param_hint="--log-format")
    if values["workers"] <= 0:
        values["workers"] = default_workers()
    return Settings(**values)


def storage_options(values: dict[str, Any]) -> dict[str, Any]:
    """The file of --storage-options-file, overridden by each --storage-option (both popped)."""
    options = load_options_file(values.pop("storage_options_file"))
    options.update(parse_storage_options(values.pop("storage_option")))
    return options


def mounts(values: dict[str, Any]) -> tuple[Mount, ...]:
    """The mounts of --mounts-file, then each --mount (both popped). A --mount of a prefix that
    the file also names replaces its URL and keeps the file's storage options."""
    table = load_options_file(values.pop("mounts_file"), "--mounts-file")
    found: dict[str, Mount] = {}
    try:
        for prefix, entry in table.items():
            mount = _file_mount(prefix, entry)
            found[mount.prefix] = mount
        for text in values.pop("mount"):
            mount = Mount.parse(text)
            known = found.get(mount.prefix)
            options = known.storage_options if known else {}
            found[mount.prefix] = Mount(mount.prefix, mount.url, options)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mount") from None
    missing = [m.prefix for m in found.values() if not m.url]
    if missing:
        raise click.BadParameter(f"mount {missing[0]!r} has no url", param_hint="--mounts-file")
    return tuple(found.values())


def _file_mount(prefix: str, entry: Any) -> Mount:
    if not isinstance(entry, dict) or not isinstance(entry.get("storage_options", {}), dict):
        raise ValueError(f"mount {prefix!r}: expected a table with url and storage_options")
    return Mount.of(prefix, str(entry.get("url", "")), entry.get("storage_options", {}))


def parse_server_opts(text: str, current: dict[str, Any]) -> dict[str, Any]:
    """Honour --log-level, --workers/-w and --timeout/-t from gunicorn/uvicorn option strings."""
    names = {"--log-level": "log_level", "--workers": "workers", "-w": "workers"}
    names |= {"--timeout": "timeout", "-t": "timeout", "--timeout-keep-alive": "timeout"}
    found: dict[str, Any] = {}
    words = shlex.split(text)
    while words:
        word = words.pop(0)
        flag, _, inline = word.partition("=")
        if flag in names and (inline or words):
            value = inline or words.pop(0)
            setting = names[flag]
            found[setting] = int(value) if isinstance(current[setting], int) else value
        else:
            click.echo(f"artgw: ignoring server option {word!r}", err=True)
    return found


def parse_storage_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"expected key=value, got {pair!r}", param_hint="--storage-option"
            )
        options[key] = _maybe_json(value)
    return options


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_options_file(path: str, hint: str = "--storage-options-file") -> dict[str, Any]:
    if not path:
        return {}
    text = Path(path).read_text()
    try:
        loaded = tomllib.loads(text) if path.endswith(".toml") else json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint=hint) from exc
    if not isinstance(loaded, dict):
        raise click.BadParameter(f"{path}: expected a table", param_hint=hint)
    return loaded
