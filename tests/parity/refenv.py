"""Isolated reference environments (real lerobot releases) for the parity tier.

The reference implementation is never installed into the project's own environment: each release
lives in its own virtual environment, created with ``python -m venv`` + ``pip`` and cached between
runs under ``~/.cache/dask_stats/refenv/<name>`` (``DASK_STATS_REFENV_DIR`` overrides the parent).

A marker file is written only after a successful install *and* a successful import check, so an
interrupted or broken install is thrown away and redone on the next run.  The marker records what was
asked for; changing a requirement below rebuilds the environment.

Use from tests::

    python = ensure_env("lerobot-0.3.3")          # installs on first use (minutes), then instant
    proc = run_in_env("lerobot-0.3.3", "reference/lerobot033_convert.py", dataset, out_jsonl)

From the command line (pre-warm the cache, e.g. in CI before pytest)::

    python tests/parity/refenv.py lerobot-0.3.3 lerobot-0.4.x

If an install fails, ``ensure_env`` raises ``RefEnvError``; the pytest helpers turn that into a loud
failure when ``CI`` is true and into a skip with the reason otherwise (``require_env``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE_SCRIPTS = HERE / "reference"
MARKER = "dask_stats_refenv.json"


@dataclass(frozen=True)
class EnvSpec:
    """What goes into one reference environment."""

    requirements: tuple[str, ...]
    import_check: str  # a Python statement that must succeed for the env to count as installed
    needs_ffmpeg: bool = True  # torchcodec loads the system FFmpeg libraries at run time
    pip_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)


ENVS: dict[str, EnvSpec] = {
    # The v2.0 -> v2.1 converter under test (reference.md §2-§4).  lerobot pins its own torch (<2.8),
    # torchvision (<0.23, which still has torchvision.io.VideoReader for the pyav backend) and
    # torchcodec (<0.6).  The machine-wide pip constraint (torch<=2.14.1) does not get in the way.
    "lerobot-0.3.3": EnvSpec(
        requirements=("lerobot==0.3.3",),
        import_check=(
            "import lerobot.datasets.v21.convert_stats, lerobot.datasets.lerobot_dataset, "
            "torchvision.io; torchvision.io.VideoReader"
        ),
    ),
    # The newest 0.4 release: reads v3.0 only and ships the v2.1 -> v3.0 converter.
    "lerobot-0.4.x": EnvSpec(
        requirements=("lerobot>=0.4,<0.5",),
        import_check="import lerobot.datasets.v30.convert_dataset_v21_to_v30, lerobot.datasets.lerobot_dataset",
    ),
}


class RefEnvError(RuntimeError):
    """A reference environment could not be created (or is unusable)."""


def cache_root() -> Path:
    override = os.environ.get("DASK_STATS_REFENV_DIR")
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dask_stats" / "refenv"


def env_dir(name: str) -> Path:
    return cache_root() / name


def env_python(name: str) -> Path:
    return env_dir(name) / "bin" / "python"


def _spec(name: str) -> EnvSpec:
    try:
        return ENVS[name]
    except KeyError:
        raise RefEnvError(f"unknown reference environment {name!r}; known: {sorted(ENVS)}") from None


def _wanted_marker(name: str, spec: EnvSpec) -> dict:
    return {
        "name": name,
        "requirements": list(spec.requirements),
        "pip_args": list(spec.pip_args),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def _marker_ok(name: str, spec: EnvSpec) -> bool:
    marker = env_dir(name) / MARKER
    if not marker.is_file() or not env_python(name).exists():
        return False
    try:
        have = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    want = _wanted_marker(name, spec)
    return all(have.get(k) == v for k, v in want.items())


@contextlib.contextmanager
def _lock(name: str):
    """One installer at a time per environment (pytest-xdist workers, parallel CI jobs)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _base_python() -> str:
    """A real interpreter to build the venv from (not the project venv's, to stay isolated)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if Path(base).exists() else sys.executable


def _run_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RefEnvError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n--- last lines of {log} ---\n{tail}")


def ensure_env(name: str, *, verbose: bool = True) -> Path:
    """Return the Python of reference environment ``name``, creating it on first use.

    Raises ``RefEnvError`` when the install fails.  The environment is kept only if pip succeeded and
    ``spec.import_check`` runs; otherwise the next call starts from scratch.
    """
    spec = _spec(name)
    if _marker_ok(name, spec):
        return env_python(name)
    with _lock(name):
        if _marker_ok(name, spec):  # another process finished it while we waited
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
        pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        pip_env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        try:
            _run_logged([_base_python(), "-m", "venv", str(target)], log)
            py = str(env_python(name))
            _run_logged(
                [py, "-m", "pip", "install", "--no-input", "--progress-bar", "off", *spec.pip_args, *spec.requirements],
                log, env=pip_env,
            )
            _run_logged([py, "-c", spec.import_check], log, env=pip_env)
            freeze = subprocess.run([py, "-m", "pip", "freeze"], capture_output=True, text=True, env=pip_env).stdout
        except RefEnvError:
            raise
        except OSError as exc:
            raise RefEnvError(f"could not create {target}: {exc}") from exc
        seconds = time.monotonic() - t0
        marker = _wanted_marker(name, spec) | {
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "install_seconds": round(seconds, 1),
            "freeze": freeze.splitlines(),
        }
        (target / MARKER).write_text(json.dumps(marker, indent=2))  # last: marks the env as complete
        if verbose:
            print(f"[refenv] {name} ready in {seconds:.0f} s", file=sys.stderr, flush=True)
        return env_python(name)


def installed_version(name: str, package: str = "lerobot") -> str | None:
    marker = env_dir(name) / MARKER
    if not marker.is_file():
        return None
    for line in json.loads(marker.read_text()).get("freeze", []):
        if line.lower().startswith(package.lower() + "=="):
            return line.split("==", 1)[1]
    return None


def reference_env_vars(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for reference runs: offline, one OpenMP thread, nothing leaking from our venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS=env.get("PYTHONWARNINGS", "default"),
    )
    if extra:
        env.update(extra)
    return env


def run_in_env(
    name: str,
    script: str | Path,
    *args: str | Path,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``script`` (a path, relative ones resolved against ``tests/parity/``) in environment ``name``.

    The process is offline (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1) with OMP_NUM_THREADS=1; ``env``
    adds variables (``HF_HOME`` is worth pointing at a temp dir so the datasets cache stays out of ~).
    With ``check`` a non-zero exit raises ``RefEnvError`` carrying stdout/stderr.
    """
    spec = _spec(name)
    python = ensure_env(name)
    script = Path(script)
    if not script.is_absolute():
        script = HERE / script
    if spec.needs_ffmpeg and shutil.which("ffmpeg") is None:
        raise RefEnvError(
            "ffmpeg is not installed: torchcodec (lerobot's video decoder) needs the FFmpeg shared "
            "libraries at run time. Install it with: apt-get install -y ffmpeg"
        )
    full_env = reference_env_vars({**spec.extra_env, **(env or {})})
    proc = subprocess.run(
        [str(python), str(script), *map(str, args)],
        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd,
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
    """pytest helper: the env's python, or fail loudly in CI / skip locally when it cannot be had."""
    import pytest

    try:
        python = ensure_env(name)
        if _spec(name).needs_ffmpeg and shutil.which("ffmpeg") is None:
            raise RefEnvError(
                "ffmpeg is not installed (torchcodec needs the FFmpeg shared libraries): apt-get install -y ffmpeg"
            )
        return python
    except RefEnvError as exc:
        msg = f"reference environment {name!r} unavailable: {exc}"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


def main(argv: list[str]) -> int:
    names = argv or sorted(ENVS)
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
