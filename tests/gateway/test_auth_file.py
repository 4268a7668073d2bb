"""The users file: what it accepts, what it refuses (saying where), and `artgw users`, which edits
it atomically and keeps its comments."""

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from gateway.auth.hashing import token_hash, verify_password
from gateway.auth.permissions import Permission
from gateway.auth.users_file import ARGON2_DEFAULTS, AuthFileError, load, parse
from tests.auth_users import FAST, UsersFile

FAST_TABLE = "[hashing]\n" + "".join(f"{k} = {v}\n" for k, v in FAST.items())


def test_a_full_file_is_read(tmp_path: Path) -> None:
    loaded = load(UsersFile(tmp_path / "users.toml").write())
    assert sorted(loaded.users) == ["admin", "other", "reader", "writer"]
    assert loaded.users["writer"].groups == ("team",)
    assert loaded.users["admin"].tokens[0].label == "test"
    assert [g.permission for g in loaded.grants] == [
        Permission.ADMIN,
        Permission.READ,
        Permission.WRITE,
        Permission.DELETE,
    ]
    assert loaded.grants[2].artifacts == ("team",)
    assert loaded.hashing == FAST


def test_production_defaults_are_argon2_cffis() -> None:
    assert (
        parse("").hashing
        == ARGON2_DEFAULTS
        == {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[users.bob]\npassword = 'hunter22'\n", "plain text is refused"),
        ("[users.bob]\npasword = '$argon2id$x'\n", "unknown key 'pasword' in users.bob"),
        ("[user.bob]\n", "unknown key 'user' in the file"),
        ("[[grants]]\nto = ['bob']\npermission = 'read'\nall = true\n", "unknown subject 'bob'"),
        (
            "[[grants]]\nto = ['user:bob']\npermission = 'own'\nall = true\n",
            "unknown permission 'own'",
        ),
        ("[[grants]]\nto = ['user:bob']\npermission = 'read'\n", "grants nothing"),
        ("[[grants]]\nto = ['user:b']\npermission = 'read'\nartifacts = ['../x']\n", "real names"),
        ("[[grants]]\nto = ['user:b']\npermission = 'read'\nartifacts = ['/']\n", "all = true"),
        ("[users.bob]\ntokens = [{label = 'x', hash = 'abc'}]\n", "sha256:<64 hex digits>"),
        ("[hashing]\nmemory_cost = 8\nparallelism = 4\n", "at least 8 x parallelism"),
        (
            "[oidc]\njwks = 'k.json'\nissuer = 'i'\naudience = 'a'\nalgorithms = ['HS256']\n",
            "public-key",
        ),
        ("[oidc]\njwks = 'k.json'\nissuer = 'i'\n", "'audience' in oidc"),
        ("not toml at all = = =", "not valid TOML"),
        ('[users."a:b"]\n', "without ':'"),
    ],
)
def test_mistakes_are_refused_saying_where(text: str, says: str) -> None:
    with pytest.raises(AuthFileError, match=None) as caught:
        parse(text, "users.toml")
    assert says in str(caught.value)
    assert str(caught.value).startswith("users.toml: ")
    assert "hunter22" not in str(caught.value)


def test_artifact_prefixes_are_normalised() -> None:
    grant = parse(
        "[[grants]]\nto = ['anonymous']\npermission = 'read'\nartifacts = ['/a/b/']\n"
    ).grants[0]
    assert grant.artifacts == ("a/b",)


# -- artgw users ---------------------------------------------------------------------------------


def run(*args: str, stdin: str = "") -> str:
    result = CliRunner().invoke(main, ["users", *args], input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str, stdin: str = "") -> str:
    result = CliRunner().invoke(main, ["users", *args], input=stdin, catch_exceptions=False)
    assert result.exit_code != 0
    return result.output


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "users.toml"
    path.parent.mkdir()
    path.write_text("# the team's users\n" + FAST_TABLE)
    return path


def test_add_passwd_token_rm_list(users_file: Path) -> None:
    f = f"--auth-file={users_file}"
    assert "Added user alice" in run(
        "add", "alice", "--group", "team", "--password-stdin", f, stdin="first-password\n"
    )
    alice = load(users_file).users["alice"]
    assert alice.password and alice.password.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert verify_password(alice.password, "first-password")
    assert alice.groups == ("team",)

    run("passwd", "alice", "--password-stdin", f, stdin="second-password\n")
    alice = load(users_file).users["alice"]
    assert verify_password(alice.password or "", "second-password")
    assert not verify_password(alice.password or "", "first-password")

    token = run("token", "alice", "--label", "ci", f).strip()
    assert token.startswith("artgw_") and len(token) > 40
    alice = load(users_file).users["alice"]
    assert [(t.label, t.hash) for t in alice.tokens] == [("ci", token_hash(token))]
    assert token not in users_file.read_text()  # only its hash is kept

    run("add", "bob", "--no-password", f)
    assert "alice\tgroups=team\tpassword\ttokens=ci" in run("list", f)
    assert "bob\tgroups=-\tno password\ttokens=-" in run("list", f)
    assert "Revoked 1 token(s)" in run("token", "alice", "--label", "ci", "--revoke", f)
    assert load(users_file).users["alice"].tokens == ()
    run("rm", "bob", f)
    assert sorted(load(users_file).users) == ["alice"]
    text = users_file.read_text()
    assert text.startswith("# the team's users\n")  # comments and layout are kept
    assert "second-password" not in text


def test_refusals_leave_the_file_as_it_was(users_file: Path) -> None:
    f = f"--auth-file={users_file}"
    run("add", "alice", "--password-stdin", f, stdin="first-password\n")
    before = users_file.read_bytes()
    assert "exists already" in fails(
        "add", "alice", "--password-stdin", f, stdin="other-password\n"
    )
    assert "at least 8 characters" in fails(
        "passwd", "alice", "--password-stdin", f, stdin="short\n"
    )
    assert "no user 'carol'" in fails("rm", "carol", f)
    assert users_file.read_bytes() == before
    assert sorted(p.name for p in users_file.parent.iterdir()) == ["users.toml", "users.toml.lock"]


def test_a_broken_file_is_not_edited(users_file: Path) -> None:
    users_file.write_text("[users.x]\npassword = 'plain'\n")
    assert "plain text is refused" in fails(
        "add", "y", "--no-password", f"--auth-file={users_file}"
    )
    assert users_file.read_text() == "[users.x]\npassword = 'plain'\n"


def test_a_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    run("add", "alice", "--password-stdin", f"--auth-file={path}", stdin="first-password\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_file_is_named_by_the_environment(
    users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTGW_AUTH_FILE", str(users_file))
    run("add", "env-user", "--no-password")
    assert "env-user" in load(users_file).users
    monkeypatch.delenv("ARTGW_AUTH_FILE")
    assert "--auth-file" in fails("list")


def test_a_crash_while_saving_leaves_the_old_file(
    users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = f"--auth-file={users_file}"
    run("add", "alice", "--password-stdin", f, stdin="first-password\n")
    before = users_file.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", crash)
    result = CliRunner().invoke(main, ["users", "add", "bob", "--no-password", f])
    assert result.exit_code != 0
    assert users_file.read_bytes() == before
    assert sorted(p.name for p in users_file.parent.iterdir()) == ["users.toml", "users.toml.lock"]
