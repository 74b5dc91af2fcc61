"""The side-by-side benchmark's peers: nginx and a LiteLLM proxy in front of the fake
endpoint, each installed from the package registries by the benchmark itself and started
as a real process on a free port (``python -m tests.bench.sidebyside`` uses them).

- nginx: Debian's package (``apt-get install nginx`` when it is missing and we are root),
  run in the foreground on a generated configuration under a temporary prefix.
- LiteLLM's proxy: PyPI's ``litellm[proxy]``, installed once into its own virtualenv by
  ``tests/peers/install.py`` (the peer tests' cache), run offline as the peer tests run it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from tests.bench import harness
from tests.bench.harness import Process

LITELLM_KEY = "sk-sidebyside-litellm-0c1d"
STARTUP_TIMEOUT = 180.0
NGINX_READ_TIMEOUT = "600s"


def _log(text: str) -> None:
    print(f"[sidebyside] {text}", file=sys.stderr, flush=True)


def children(pid: int) -> list[int]:
    """Every living descendant of ``pid`` (from /proc; [] elsewhere)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# --- setup: install what is missing ---------------------------------------------------------
def ensure_nginx() -> str:
    """The nginx binary; installs Debian's package first when it is missing and this
    process may (root, apt-get); otherwise exits with what to do."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            "sidebyside: nginx is not installed and this process cannot install it "
            "(needs root and apt-get): install nginx (e.g. apt-get install nginx) and run again"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _log("nginx not found: apt-get install -y -qq nginx")
    install = ["apt-get", "install", "-y", "-qq", "nginx"]
    if subprocess.run(install, env=env, stdout=sys.stderr).returncode != 0:
        _log("apt-get install failed: apt-get update, then once more")
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=sys.stderr, check=True)
        subprocess.run(install, env=env, stdout=sys.stderr, check=True)
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        raise SystemExit("sidebyside: apt-get installed nginx but no nginx binary was found")
    return found


def ensure_litellm() -> Path:
    """LiteLLM's proxy from PyPI, in the peer tests' cache (installed the first time)."""
    from tests.peers import install

    install.CACHE.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(sys.stderr):
        install.install_litellm()
    return install.LITELLM_BIN


def nginx_version(binary: str) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True)
    return (done.stderr or done.stdout).strip().rsplit("/", 1)[-1] or "?"


# --- nginx ----------------------------------------------------------------------------------
NGINX_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    upstream fake {{
        server 127.0.0.1:{fake_port};
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout {read_timeout};
        }}
    }}
{app}}}
"""

NGINX_APP = """\
    upstream app {{
        least_conn;
{servers}
        keepalive 32;
    }}
    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout {read_timeout};
            proxy_send_timeout {read_timeout};
        }}
    }}
"""


class Nginx(Process):
    """nginx's master process; ``app_url`` is set when it also fronts the app workers."""

    app_url: str | None = None

    def relay_pids(self) -> list[int]:
        return [self.pid, *children(self.pid)]


def _user_line() -> str:
    """As root nginx's workers switch to nobody; name its group (Debian: nogroup)."""
    if os.geteuid() != 0:
        return ""
    try:
        nobody = pwd.getpwnam("nobody")
        return f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};\n"
    except KeyError:
        return ""


def nginx_conf(prefix: Path, port: int, fake_port: int, app: tuple[int, list[int]] | None) -> str:
    app_block = ""
    if app is not None:
        app_port, workers = app
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in workers)
        app_block = NGINX_APP.format(
            servers=servers, port=app_port, read_timeout=NGINX_READ_TIMEOUT
        )
    return NGINX_CONF.format(
        user=_user_line(),
        prefix=prefix,
        port=port,
        fake_port=fake_port,
        read_timeout=NGINX_READ_TIMEOUT,
        app=app_block,
    )


def start_nginx(
    binary: str, workdir: Path, fake: Process, app_workers: list[Process] | None = None
) -> Nginx:
    """nginx in the foreground in front of the fake endpoint (and of ``app_workers``, on
    a second port, with the websocket upgrade), one worker process, no access log."""
    prefix = workdir / "nginx"
    prefix.mkdir()
    prefix.chmod(0o755)  # its workers run as nobody when we are root
    port = harness.free_port()
    app = None
    if app_workers:
        app = (harness.free_port(), [int(w.url.rsplit(":", 1)[1]) for w in app_workers])
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, port, int(fake.url.rsplit(":", 1)[1]), app))
    log = workdir / "nginx.log"
    argv = [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf),
            "-g", "daemon off;"]  # fmt: skip
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, cwd=prefix, stdout=out, stderr=subprocess.STDOUT)
    process = Nginx("nginx", popen, f"http://127.0.0.1:{port}", prefix / "error.log")
    harness.wait_for_http(process, "/v1/models")
    if app is not None:
        process.app_url = f"http://127.0.0.1:{app[0]}"
        harness.wait_for_http(Nginx("nginx (app)", popen, process.app_url, process.log), "/healthz")
    return process


# --- LiteLLM --------------------------------------------------------------------------------
LITELLM_CONFIG = """\
model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      api_base: {upstream}
      api_key: sk-fake-upstream-key
litellm_settings:
  turn_off_message_logging: true
general_settings:
  master_key: {key}
"""


class LiteLLM(Process):
    def relay_pids(self) -> list[int]:
        return [self.pid, *children(self.pid)]


def start_litellm(binary: Path, workdir: Path, fake: Process) -> LiteLLM:
    """LiteLLM's proxy with model ``demo`` relayed to the fake, as its CLI starts it by
    default (uvicorn, one worker process), offline: the cost map from the package, no
    telemetry, logging at ERROR (no access log), no database, no callbacks."""
    config = workdir / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(upstream=f"{fake.url}/v1", key=LITELLM_KEY))
    from tests.peers import install

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))},
        **install.OFFLINE,
        "DO_NOT_TRACK": "1",
        "NO_COLOR": "1",
        "LITELLM_LOG": "ERROR",
    }
    port = harness.free_port()
    log = workdir / "litellm.log"
    argv = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    process = LiteLLM("litellm", popen, f"http://127.0.0.1:{port}", log)
    harness.wait_for_http(process, "/health/liveliness", timeout=STARTUP_TIMEOUT)
    return process
