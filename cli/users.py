"""`artgw users add|passwd|token|rm|list`: edit the users file (`--auth-file`).

Each edit re-reads the file under a lock, changes it with tomlkit (comments and layout stay),
checks the result as the server would, and replaces the file atomically (a temp file beside it,
fsynced, renamed over it): a crash leaves the old file or the new one, never half of one. A
running server picks the change up by itself (or at once on SIGHUP).
"""

import contextlib
import fcntl
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from cli.options import options_for

MIN_PASSWORD = 8


def _require_auth_extra() -> None:
    try:
        import argon2  # noqa: F401
        import tomlkit  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "artgw users needs the auth extra: pip install 'artgw[auth]'"
        ) from None


@click.group()
def users() -> None:
    """Manage the users file named by --auth-file (ARTGW_AUTH_FILE)."""
    _require_auth_extra()


def _path(auth_file: str) -> Path:
    if not auth_file:
        raise click.UsageError("name the users file with --auth-file or ARTGW_AUTH_FILE")
    return Path(auth_file)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One editor at a time (a lock file beside it: the file itself is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def edit(path: Path, change: Callable[[Any, dict[str, int]], object]) -> object:
    """Apply `change(document, hashing parameters)` to the file and save it; returns its result."""
    import tomlkit

    from gateway.auth.users_file import AuthFileError, parse

    with _locked(path):
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        try:
            current = parse(text, str(path))
        except AuthFileError as exc:
            raise click.ClickException(f"{exc} (fix it by hand first)") from None
        document = tomlkit.parse(text)
        result = change(document, current.hashing)
        new_text = tomlkit.dumps(document)
        try:
            parse(new_text, str(path))
        except AuthFileError as exc:
            raise click.ClickException(str(exc)) from None
        write_atomically(path, new_text)
    return result


def _users_table(document: Any) -> Any:
    import tomlkit

    if "users" not in document:
        document["users"] = tomlkit.table(is_super_table=True)
    return document["users"]


def _existing(document: Any, name: str) -> Any:
    table = document.get("users", {})
    if name not in table:
        raise click.ClickException(f"no user {name!r} in the users file")
    return table[name]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.ClickException(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def _hash(password: str, params: dict[str, int]) -> str:
    from gateway.auth.hashing import hash_password

    return hash_password(password, params)


AUTH_FILE = options_for("auth_file")
PASSWORD_STDIN = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


@users.command()
@click.argument("name")
@click.option("--group", "groups", multiple=True, help="A group of the user; repeatable.")
@click.option("--no-password", is_flag=True, help="No password: the user signs in with tokens.")
@PASSWORD_STDIN
@AUTH_FILE
def add(
    name: str, groups: tuple[str, ...], no_password: bool, password_stdin: bool, auth_file: str
) -> None:
    """Add user NAME (asks for the password unless --no-password)."""
    import tomlkit

    if not name or ":" in name or name != name.strip():
        raise click.UsageError("a user name must be non-empty, without ':' or surrounding spaces")
    password = None if no_password else _read_password(password_stdin)

    def change(document: Any, params: dict[str, int]) -> None:
        table = _users_table(document)
        if name in table:
            raise click.ClickException(f"user {name!r} exists already (artgw users passwd)")
        user = tomlkit.table()
        if password is not None:
            user["password"] = _hash(password, params)
        if groups:
            user["groups"] = list(groups)
        table[name] = user

    edit(_path(auth_file), change)
    click.echo(f"Added user {name}.")


@users.command()
@click.argument("name")
@PASSWORD_STDIN
@AUTH_FILE
def passwd(name: str, password_stdin: bool, auth_file: str) -> None:
    """Set the password of user NAME."""
    password = _read_password(password_stdin)

    def change(document: Any, params: dict[str, int]) -> None:
        _existing(document, name)["password"] = _hash(password, params)

    edit(_path(auth_file), change)
    click.echo(f"Password of {name} changed.")


@users.command()
@click.argument("name")
@click.option("--label", default="token", show_default=True, help="What the token is for.")
@click.option("--revoke", is_flag=True, help="Remove the token(s) with this label instead.")
@AUTH_FILE
def token(name: str, label: str, revoke: bool, auth_file: str) -> None:
    """Make an API token for NAME (printed once: only its hash is kept), or --revoke one."""
    import tomlkit

    from gateway.auth.hashing import new_token, token_hash

    secret = new_token()

    def change(document: Any, params: dict[str, int]) -> int:
        user = _existing(document, name)
        tokens = user.get("tokens", tomlkit.array())
        kept = [t for t in tokens if t.get("label") != label] if revoke else list(tokens)
        removed = len(tokens) - len(kept)
        if not revoke:
            entry = tomlkit.inline_table()
            entry.update({"label": label, "hash": token_hash(secret)})
            kept.append(entry)
        array = tomlkit.array()
        array.extend(kept)
        user["tokens"] = array.multiline(len(kept) > 1)
        return removed

    removed = edit(_path(auth_file), change)
    if revoke:
        click.echo(f"Revoked {removed} token(s) labelled {label!r} of {name}.")
    else:
        click.echo(secret)


@users.command()
@click.argument("name")
@AUTH_FILE
def rm(name: str, auth_file: str) -> None:
    """Remove user NAME (grants naming user:NAME stay, and apply to nobody)."""

    def change(document: Any, params: dict[str, int]) -> None:
        _existing(document, name)
        del document["users"][name]

    edit(_path(auth_file), change)
    click.echo(f"Removed user {name}.")


@users.command(name="list")
@AUTH_FILE
def list_users(auth_file: str) -> None:
    """List the users: name, groups, whether a password is set, token labels."""
    from gateway.auth.users_file import AuthFileError, load

    path = _path(auth_file)
    try:
        loaded = load(path)
    except AuthFileError as exc:
        raise click.ClickException(str(exc)) from None
    for user in sorted(loaded.users.values(), key=lambda u: u.name):
        groups = ",".join(user.groups) or "-"
        tokens = ",".join(t.label for t in user.tokens) or "-"
        password = "password" if user.password else "no password"
        click.echo(f"{user.name}\tgroups={groups}\t{password}\ttokens={tokens}")
