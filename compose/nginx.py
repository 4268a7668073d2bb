"""nginx for the local twin: compose/nginx.conf itself, with its `twin:` lines rewritten.

The compose file's load balancer and the twin's are one configuration: proxy settings, retries and
buffering come from compose/nginx.conf unchanged; only the lines marked `# twin: <what>` (listen
address, upstream servers, pid, logs, temp paths) are replaced so that nginx runs as a plain
process on 127.0.0.1, everything under its own directory.
"""

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from compose.procs import HOST, Proc, http_ok

TEMPLATE = Path(__file__).with_name("nginx.conf")
MARK = re.compile(r"^(?P<indent>\s*)(?P<line>.*?)\s*# twin: (?P<what>[\w ]+?)\s*$")
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("nginx is missing: apt-get install nginx (tests/setup-system.sh)")
    return found


def render(template: str, home: Path, port: int, upstreams: list[int]) -> str:
    """The template with each `twin:` line replaced for a loopback nginx living in `home`."""
    server = re.search(r"server \S+ (?P<options>[^;#]*);\s*# twin: upstreams", template)
    options = server.group("options").strip() if server else ""
    replacements: dict[str, Callable[[], list[str]]] = {
        "pid": lambda: [f"pid {home / 'nginx.pid'};"],
        "access_log": lambda: [f"access_log {home / 'access.log'} upstreams;"],
        "error_log": lambda: [f"error_log {home / 'error.log'} warn;"],
        "temp paths": lambda: [f"{name}_temp_path {home / name};" for name in TEMP_PATHS],
        "upstreams": lambda: [
            f"server {HOST}:{p} {options};".replace(" ;", ";") for p in upstreams
        ],
        "listen": lambda: [f"listen {HOST}:{port};"],
    }
    lines = []
    for line in template.splitlines():
        match = MARK.match(line)
        if match is None:
            lines.append(line)
            continue
        new = replacements[match.group("what")]()
        lines.extend(match.group("indent") + text for text in new)
    return "\n".join(lines) + "\n"


def nginx_proc(home: Path, rundir: Path, port: int, upstreams: list[int]) -> Proc:
    """nginx in the foreground (its PID is the master's), ready once it proxies /health."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)  # workers run as an unprivileged user when nginx starts as root
    config = home / "nginx.conf"
    config.write_text(render(TEMPLATE.read_text(), home, port, upstreams))
    argv = [
        nginx_binary(),
        *("-p", f"{home}/", "-c", str(config), "-e", str(home / "error.log")),
        *("-g", "daemon off;"),
    ]
    return Proc("nginx", argv, rundir, ready=http_ok(f"http://{HOST}:{port}/health"))
