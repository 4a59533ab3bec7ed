"""Isolated reference environments (real lerobot releases) for the parity tier.

The reference implementation is never installed into the project's own environment: each release
lives in its own virtual environment, created and filled with ``uv`` (a test dependency of the
project) and cached between runs under ``~/.cache/dask_stats/refenv/<name>``
(``DASK_STATS_REFENV_DIR`` overrides the parent).

A marker file is written only after a successful install *and* a successful import check, so an
interrupted or broken install is thrown away and redone on the next run.  The marker records what was
asked for (requirements, Python version, installer); changing a requirement below rebuilds the
environment.

One torch stack, stored once.  The three releases accept the same torch stack: torch 2.7.1,
torchvision 0.22.1, torchcodec 0.5 (0.3.3 pins torch<2.8, torchvision<0.23, torchcodec<0.6; 0.4.x
torch<2.11, torchvision<0.26, torchcodec<0.11; 0.6.1 torch>=2.7,<2.12, torchvision>=0.22,<0.27,
torchcodec>=0.3,<0.12), and lerobot 0.6.1 needs Python >= 3.12, so every environment is made from the
same Python 3.12 (``find_interpreter``) with that stack pinned.  uv unpacks each wheel once into its
cache (``<refenv dir>/uv-cache``, same file system) and hard-links the files into every environment:
torch and its ~2.7 GB of nvidia-* wheels are downloaded once and stored once, and so is every other
package two releases share at the same version.  No download is kept twice (uv keeps the unpacked
wheel, not the archive).  Without a Python 3.12, lerobot 0.3.3 and 0.4.x are made from the Python that
runs the tests (they still share one torch through the cache) and 0.6.1 is reported unavailable.

Why CUDA wheels: PyPI's Linux x86_64 torch wheels are CUDA builds, PyTorch's CPU index is not reachable
from these machines, and the only CPU wheel on their disk is torch 2.13.0 for CPython 3.11, outside every
lerobot release's torch pin (and torchvision >= 0.24 lost the ``VideoReader`` that lerobot 0.3.3's pyav
backend needs).  The stack is pinned in one place (``TORCH_STACK``): on a machine that reaches a CPU
build, point ``DASK_STATS_REFENV_TORCH_INDEX`` at that index (e.g. PyTorch's ``/whl/cpu``) and the
torch packages come from it instead (~1.5 GB less).

Use from tests::

    python = ensure_env("lerobot-0.3.3")          # installs on first use (minutes), then instant
    proc = run_in_env("lerobot-0.3.3", "reference/lerobot033_convert.py", dataset, out_jsonl)

From the command line (pre-warm the cache, e.g. in CI before pytest; prints the install times)::

    python tests/parity/refenv.py [lerobot-0.3.3 lerobot-0.4.x lerobot-0.6.1]

If an install fails, ``ensure_env`` raises ``RefEnvError``; ``require_env`` (pytest) turns that into a
loud failure when ``CI`` is true and into a skip with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "dask_stats_refenv.json"
SHARED_PYTHON = "3.12"  # lerobot 0.6.1's floor; every environment is made from it when it is found


@dataclass(frozen=True)
class EnvSpec:
    """What goes into one reference environment."""

    requirements: tuple[str, ...]
    import_check: str  # a Python statement that must succeed for the env to count as installed
    needs_ffmpeg: bool = True  # torchcodec loads the system FFmpeg libraries at run time
    install_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    # Made from SHARED_PYTHON when one is found (so that the torch files are shared); ``python_required``:
    # without it the env is unavailable, otherwise it falls back to the Python that runs the tests.
    python_required: bool = False


# The one torch stack of every environment (see the module docstring).  torchvision 0.22 still has
# torchvision.io.VideoReader, which lerobot 0.3.3's "pyav" backend needs (it is gone from 0.24 on).
TORCH_STACK = ("torch==2.7.1", "torchvision==0.22.1", "torchcodec==0.5")

ENVS: dict[str, EnvSpec] = {
    # The v2.0 -> v2.1 converter under test (reference.md §2-§4).
    # av<19: torchvision 0.22's VideoReader (0.3.3's "pyav" backend) calls av.open(metadata_errors=...),
    # which PyAV 19 removed.
    "lerobot-0.3.3": EnvSpec(
        requirements=("lerobot==0.3.3", *TORCH_STACK, "av<19"),
        import_check="import lerobot.datasets.v21.convert_stats, lerobot.datasets.lerobot_dataset, torchvision.io; "
        "torchvision.io.VideoReader",
    ),
    # The newest 0.4 release (0.4.4; the 0.4 line is finished): reads v3.0 only and ships the
    # v2.1 -> v3.0 converter.
    "lerobot-0.4.x": EnvSpec(
        requirements=("lerobot>=0.4,<0.5", *TORCH_STACK),
        import_check="import lerobot.datasets.v30.convert_dataset_v21_to_v30, lerobot.datasets.lerobot_dataset",
    ),
    # The current release, as users have it: the v3.0 loader our v3.0 output must satisfy.  Python >= 3.12.
    "lerobot-0.6.1": EnvSpec(
        requirements=("lerobot[dataset]==0.6.1", *TORCH_STACK),
        import_check="import lerobot, lerobot.datasets.lerobot_dataset, torchvision, av; "
        "assert lerobot.__version__ == '0.6.1', lerobot.__version__",
        python_required=True,
    ),
}


class RefEnvError(RuntimeError):
    """A reference environment could not be created (or is unusable)."""


# In-process memory: a failed install is not retried by every test, and installs started in the
# background by prefetch() are waited for instead of being started twice.
_FAILED: dict[str, RefEnvError] = {}
_PENDING: dict[str, threading.Event] = {}  # set when the background attempt for that name has finished
_PREFETCH_THREAD = "refenv-prefetch"


def cache_root() -> Path:
    override = os.environ.get("DASK_STATS_REFENV_DIR")
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dask_stats" / "refenv"


def env_dir(name: str) -> Path:
    return cache_root() / name


def env_python(name: str) -> Path:
    return env_dir(name) / "bin" / "python"


def uv_cache_dir() -> Path:
    """uv's cache for the reference environments: beside them, so that uv hard-links instead of copying."""
    return cache_root() / "uv-cache"


def _spec(name: str) -> EnvSpec:
    try:
        return ENVS[name]
    except KeyError:
        raise RefEnvError(f"unknown reference environment {name!r}; known: {sorted(ENVS)}") from None


@functools.cache
def env_interpreter(name: str) -> str:
    """The Python that environment ``name`` is made from: SHARED_PYTHON, else (when allowed) the running one."""
    try:
        return find_interpreter(SHARED_PYTHON)
    except RefEnvError:
        if _spec(name).python_required:
            raise
        return find_interpreter(None)


def _torch_index() -> str | None:
    return os.environ.get("DASK_STATS_REFENV_TORCH_INDEX") or None


def _wanted_marker(name: str) -> dict:
    spec = _spec(name)
    return {
        "name": name,
        "requirements": list(spec.requirements),
        "install_args": list(spec.install_args),
        "python": _python_version(env_interpreter(name)),
        "torch_index": _torch_index(),
        "installer": "uv",
    }


def _marker_ok(name: str) -> bool:
    marker = env_dir(name) / MARKER
    if not marker.is_file() or not env_python(name).exists():
        return False
    try:
        have = json.loads(marker.read_text())
        wanted = _wanted_marker(name)
    except (OSError, ValueError, RefEnvError):
        return False
    return all(have.get(k) == v for k, v in wanted.items())


@contextlib.contextmanager
def _lock(name: str):
    """One installer at a time per environment (threads, pytest-xdist workers, parallel CI jobs)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _base_python() -> str:
    """The interpreter the venvs are made from: the real one behind the project venv, if any."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if Path(base).exists() else sys.executable


@functools.cache
def _python_version(python: str | Path) -> str | None:
    """"3.12" for the interpreter at ``python``, or None when it does not run."""
    try:
        out = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, env=_clean_env(),
                             stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _pyenv_roots() -> list[Path]:
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(Path(os.environ["PYENV_ROOT"]))
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30, check=False)
            if out.returncode == 0 and out.stdout.strip():
                roots.append(Path(out.stdout.strip()))
    roots.append(Path.home() / ".pyenv")
    return list(dict.fromkeys(roots))


def _version_key(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in path.name.split("."))


def find_interpreter(version: str | None) -> str:
    """A Python executable of ``version`` ("3.12"); None means the one the tests run under.

    Looked for in order: ``DASK_STATS_PY312`` (for "3.12"; the digits follow the version), the running
    interpreter when it is that version, ``python3.12`` on PATH, then pyenv's versions
    (``$PYENV_ROOT``, ``pyenv root``, ``~/.pyenv``; the newest patch release first).
    Raises ``RefEnvError`` naming what was tried when none is found.
    """
    if version is None:
        return _base_python()
    var = "DASK_STATS_PY" + version.replace(".", "")
    tried: list[str] = []
    if os.environ.get(var):
        cand = os.environ[var]
        if _python_version(cand) == version:
            return cand
        raise RefEnvError(f"{var}={cand} is not a working Python {version} (it reports {_python_version(cand)})")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return _base_python()
    candidates: list[Path] = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    for root in _pyenv_roots():
        versions = root / "versions"
        if versions.is_dir():
            found = [d for d in versions.iterdir()
                     if d.name.startswith(version + ".") and d.name[len(version) + 1:].isdigit()]
            candidates += [d / "bin" / "python" for d in sorted(found, key=_version_key, reverse=True)]
        tried.append(str(versions))
    for cand in candidates:
        if cand.exists() and _python_version(cand) == version:
            return str(cand)
    raise RefEnvError(
        f"no Python {version} found (needed by this reference environment): set {var}=/path/to/python{version}, "
        f"put python{version} on PATH, or install it with pyenv (`pyenv install {version}`). "
        f"Looked at: {', '.join(tried + [str(c) for c in candidates]) or 'nothing'}"
    )


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RefEnvError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n--- last lines of {log} ---\n{tail}")


def ensure_env(name: str, *, verbose: bool = True) -> Path:
    """Return the Python of reference environment ``name``, creating it on first use.

    Raises ``RefEnvError`` when the install fails.  The environment is kept only if the install succeeded and
    ``spec.import_check`` runs; otherwise the next call starts from scratch.
    """
    spec = _spec(name)
    pending = _PENDING.get(name)
    if pending is not None and threading.current_thread().name != _PREFETCH_THREAD:
        pending.wait()
    if name in _FAILED:
        raise _FAILED[name]
    if _marker_ok(name):
        return env_python(name)
    try:
        return _install(name, spec, verbose)
    except RefEnvError as exc:
        _FAILED[name] = exc
        raise


def prefetch(*names: str) -> None:
    """Install the missing environments one after the other in a background thread.

    Tests that need the first one start as soon as it is ready while the next one installs.
    ``ensure_env`` waits for a pending background install of its environment instead of starting
    another.  (The first one downloads the shared torch stack; the others link it from uv's cache.)
    """
    todo = [n for n in names if n not in _PENDING and n not in _FAILED and not _marker_ok(n)]
    if not todo:
        return
    for name in todo:
        _PENDING[name] = threading.Event()

    def work():
        for name in todo:
            try:
                ensure_env(name)
            except RefEnvError:
                pass  # remembered in _FAILED; raised again by the ensure_env call that needs it
            finally:
                _PENDING[name].set()

    threading.Thread(target=work, name=_PREFETCH_THREAD, daemon=True).start()


def uv_binary() -> str:
    """The uv executable: the one installed with the project's test extras, else ``uv`` on PATH."""
    with contextlib.suppress(ImportError, FileNotFoundError):
        import uv

        return uv.find_uv_bin()
    found = shutil.which("uv")
    if found:
        return found
    raise RefEnvError("uv is not installed: the reference environments are made with it. "
                      "Install the test extras (pip install -e '.[test]') or `pip install uv`.")


def _install(name: str, spec: EnvSpec, verbose: bool) -> Path:
    with _lock(name):
        if _marker_ok(name):  # another process finished it while we waited
            return env_python(name)
        target = env_dir(name)
        if target.exists():
            shutil.rmtree(target)  # half-made or outdated: start again
        target.parent.mkdir(parents=True, exist_ok=True)
        log = target.parent / f"{name}.install.log"
        log.write_text("")
        t0 = time.monotonic()
        if verbose:
            print(f"[refenv] creating {target} ({' '.join(spec.requirements)}); log: {log}", file=sys.stderr, flush=True)
        env = _clean_env()
        # uv's own cache beside the envs (hard links, one copy of each wheel); PyPI as the index: uv does
        # not read pip's configuration.  Transient network errors are retried by uv itself.
        env.update(UV_CACHE_DIR=str(uv_cache_dir()), UV_LINK_MODE="hardlink", UV_NO_PROGRESS="1",
                   UV_PYTHON_DOWNLOADS="never", UV_HTTP_TIMEOUT="180")
        torch_index = _torch_index()
        index_args = ["--index", f"pytorch={torch_index}", "--index-strategy", "unsafe-best-match"] if torch_index else []
        try:
            uv = uv_binary()
            interpreter = env_interpreter(name)
            _run_logged([uv, "venv", "--quiet", "--python", interpreter, str(target)], log, env=env)
            py = str(env_python(name))
            _run_logged([uv, "pip", "install", "--python", py, *index_args, *spec.install_args, *spec.requirements],
                        log, env=env)
            _run_logged([py, "-c", spec.import_check], log, env=env)
            freeze = subprocess.run([uv, "pip", "freeze", "--python", py], capture_output=True, text=True,
                                    env=env).stdout
        except subprocess.CalledProcessError as exc:
            raise RefEnvError(f"could not set up {target}: {exc}") from exc
        except OSError as exc:
            raise RefEnvError(f"could not create {target}: {exc}") from exc
        seconds = time.monotonic() - t0
        marker = _wanted_marker(name) | {
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "install_seconds": round(seconds, 1),
            "freeze": freeze.splitlines(),
        }
        (target / MARKER).write_text(json.dumps(marker, indent=2))  # last: marks the env as complete
        if verbose:
            print(f"[refenv] {name} ready in {seconds:.0f} s", file=sys.stderr, flush=True)
        return env_python(name)


def installed_version(name: str, package: str = "lerobot") -> str | None:
    """The version of ``package`` seen in environment ``name`` (from the marker), or None."""
    marker = env_dir(name) / MARKER
    if not marker.is_file():
        return None
    for line in json.loads(marker.read_text()).get("freeze", []):
        if line.lower().startswith(package.lower() + "=="):
            return line.split("==", 1)[1]
    return None


def reference_env_vars(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for reference runs: offline, one OpenMP thread, nothing leaking from our venv."""
    env = _clean_env()
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    if extra:
        env.update(extra)
    return env


def check_ffmpeg(name: str) -> None:
    if _spec(name).needs_ffmpeg and shutil.which("ffmpeg") is None:
        raise RefEnvError(
            "ffmpeg is not installed: torchcodec (lerobot's default video decoder) needs the FFmpeg shared "
            "libraries at run time. Install Debian's package: apt-get install -y ffmpeg"
        )


def run_in_env(
    name: str,
    script: str | Path,
    *args: str | Path,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``script`` (a path; relative ones are resolved against ``tests/parity/``) in env ``name``.

    The process is offline (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1) with OMP_NUM_THREADS=1; ``env``
    adds variables (point ``HF_HOME`` at a temp dir to keep the datasets cache out of ~/.cache).
    With ``check`` a non-zero exit raises ``RefEnvError`` carrying stdout/stderr.
    """
    spec = _spec(name)
    python = ensure_env(name)
    check_ffmpeg(name)
    script = Path(script)
    if not script.is_absolute():
        script = HERE / script
    full_env = reference_env_vars({**spec.extra_env, **(env or {})})
    proc = subprocess.run(
        [str(python), str(script), *map(str, args)],
        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise RefEnvError(
            f"{name}: {script.name} {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-12000:]}"
        )
    return proc


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_env(name: str) -> Path:
    """pytest helper: the env's python; fails loudly in CI, skips locally, when it cannot be had."""
    import pytest

    try:
        python = ensure_env(name)
        check_ffmpeg(name)
        return python
    except RefEnvError as exc:
        msg = f"reference environment {name!r} unavailable: {exc}"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


def main(argv: list[str]) -> int:
    names = argv or [n for n in ENVS if n.startswith("lerobot-")]
    status = 0
    for name in names:
        t0 = time.monotonic()
        try:
            py = ensure_env(name)
        except RefEnvError as exc:
            print(f"{name}: FAILED\n{exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {py} (lerobot {installed_version(name)}, {time.monotonic() - t0:.1f} s)")
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
