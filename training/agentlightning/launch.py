"""`triage-bot train --algo grpo`: GRPO on the LLM policy with Agent Lightning 1.0.2 and verl.

What runs (agentlightning 1.0.2 is three services, not a library to call):
- `agl-server` on loopback: rollouts and events in memory, and the OpenAI proxy the agent
  calls, which forwards to the vLLM servers the trainer registers and records every call;
- `agl-controller` (local runner): starts `training.agentlightning.agent:TriageAgent` in a
  subprocess per queued rollout;
- `agentlightning.verl.entrypoint.run_ppo(config, train_rows, validation_rows)`, in this
  process: verl's trainer with Ray and vLLM, which enqueues one rollout per exported row
  (times `rollout.n`, the GRPO group), waits for their rewards and updates the policy.

Why it checks first: verl, vLLM, Ray and a CUDA GPU are only on a training box, and the core
venv is Python 3.11, where agentlightning does not install. Each missing piece is one line
naming it and how to install it, before anything starts. Every import of agentlightning,
verl, torch or hydra is inside a function: the core package never needs them.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.agentlightning.agent import INPUT_ENV
from training.agentlightning.rollouts import DEFAULT_OUT, TRAIN_FILE, VALIDATION_FILE, read_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RL_CONFIG = REPO_ROOT / "config" / "agl-grpo.yaml"
RUN_DIR = Path("out") / "agl-grpo"
AGENT_CLASS = "training.agentlightning.agent:TriageAgent"
READY_TIMEOUT_S = 60.0
MAX_PARALLEL_ROLLOUTS = 64

RL_VENV = (
    "use the Python 3.12 `rl` venv: `bash scripts/rl-venv` (agent and tests), or for training "
    "on a CUDA box a Python 3.12 venv with `pip install -e '.[rl]' 'verl[vllm]==0.8.0'`, "
    "then `triage-bot train --algo grpo` from it"
)
INSTALL = {
    "agentlightning": "pip install -e '.[rl]' (Python 3.12)",
    "verl": "pip install 'verl[vllm]==0.8.0' (brings Ray; needs a CUDA build of torch)",
    "vllm": "pip install 'vllm>=0.8.5,<=0.12.0' (the range verl 0.8.0 supports)",
    "ray": "pip install 'ray[default]>=2.41' (verl installs it)",
    "torch": "pip install torch with CUDA (verl and vllm pull a matching build)",
}


class RLSetupError(RuntimeError):
    """What stops GRPO training before it starts; one line for the user."""


def missing_requirement() -> str | None:
    """The first missing piece of the GRPO stack, as one line, or None when all is there."""
    if importlib.util.find_spec("agentlightning") is None and sys.version_info < (3, 12):
        version = ".".join(map(str, sys.version_info[:3]))
        return f"agentlightning is missing: it needs Python >= 3.12 and this is {version}; " + (
            RL_VENV
        )
    for module in ("agentlightning", "verl", "vllm", "ray", "torch"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: {INSTALL[module]}"
    import torch

    if not torch.cuda.is_available():
        return (
            "no CUDA GPU: torch.cuda.is_available() is False; GRPO with verl and vLLM needs "
            "an NVIDIA GPU and a CUDA build of torch (see README, Agent Lightning (RL))"
        )
    return None


def load_datasets(data_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The exported train and validation rows; both must be non-empty (run_ppo asserts it)."""
    export = f"triage-bot export --format agentlightning --out {data_dir}"
    parts = []
    for name in (TRAIN_FILE, VALIDATION_FILE):
        path = data_dir / name
        if not path.is_file():
            raise RLSetupError(f"{path}: no such file; run `{export}` first")
        rows = read_rows(path)
        if not rows:
            raise RLSetupError(
                f"{path} is empty: validate more items (two at least), then `{export}`"
            )
        parts.append(rows)
    return parts[0], parts[1]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RLSetupError(f"{name} is not installed: {INSTALL.get(name, 'pip install ' + name)}")
    return Path(next(iter(spec.submodule_search_locations)))


def compose_config(config_path: Path, overrides: Sequence[str] = ()) -> Any:
    """agentlightning's verl config (verl's ppo_trainer plus its own keys), then our YAML
    on top, then `overrides` (KEY=VALUE).

    Theirs is composed as the primary config because it sets `hydra.searchpath`, which Hydra
    takes from a primary config only; ours is merged onto the result, whose struct flag turns
    a misspelt key into an error. The search path is given as a folder found without
    importing verl, so the config composes before Ray or CUDA is touched.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not config_path.is_file():
        raise RLSetupError(f"{config_path}: no such config file")
    agl_config = _package_dir("agentlightning") / "verl"
    verl_config = _package_dir("verl") / "trainer" / "config"
    try:
        with initialize_config_dir(str(agl_config), version_base=None):
            base = compose(
                config_name="config", overrides=[f"hydra.searchpath=[file://{verl_config}]"]
            )
        # A free-form map (variable -> input path): its keys are ours to choose.
        OmegaConf.set_struct(base.agentlightning.local.env_map, False)
        ours = OmegaConf.load(config_path)
        return OmegaConf.merge(base, ours, OmegaConf.from_dotlist(list(overrides)))
    except (HydraException, OmegaConfBaseException) as exc:
        message = " ".join(str(exc).split())
        raise RLSetupError(f"{config_path}: {message}") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AglServices:
    """agl-server and agl-controller running on loopback, and how to reach them."""

    url: str
    key: str
    server: subprocess.Popen[bytes]
    controller: subprocess.Popen[bytes]
    run_dir: Path

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.run_dir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RLSetupError(f"agl-server exited with code {proc.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RLSetupError(f"agl-server did not answer /healthz in {READY_TIMEOUT_S:.0f}s")
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _hydra_args(run_dir: Path) -> list[str]:
    """Keep Hydra's run folder (its log) in ours, and no .hydra copy of the config."""
    return [f"hydra.run.dir={run_dir}", "hydra.output_subdir=null"]


@contextmanager
def agl_services(
    *,
    model: str,
    run_dir: Path,
    max_rollouts: int = 8,
    poll_interval_s: float = 1.0,
    key: str | None = None,
) -> Iterator[AglServices]:
    """Start agl-server (its proxy serving `model`) and a local agl-controller; stop both.

    The controller runs agents with this interpreter and the repository on PYTHONPATH, so
    `training.agentlightning.agent` imports without an installed project too.
    """
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    key = key or secrets.token_hex(16)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    server_log = run_dir / "server.log"
    controller_log = run_dir / "controller.log"
    with server_log.open("wb") as out:  # a file, not a pipe: a chatty service cannot block
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentlightning.server",
                "host=127.0.0.1",
                f"port={port}",
                f"key='{key}'",
                f"default_proxy.model_name='{model}'",
                *_hydra_args(run_dir / "server"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    controller: subprocess.Popen[bytes] | None = None
    try:
        _wait_ready(url, server, server_log)
        with controller_log.open("wb") as out:
            controller = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agentlightning.controller",
                    "runner_type=local",
                    f"agl_server.url={url}",
                    f"agl_server.key='{key}'",
                    f"local_runner.maximum_size={max_rollouts}",
                    f"local_runner.poll_interval={poll_interval_s}",
                    *_hydra_args(run_dir / "controller"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        yield AglServices(url, key, server, controller, run_dir)
    finally:
        if controller is not None:
            _stop(controller)  # first: it marks its live rollouts failed on the way out
        _stop(server)


def train_grpo(
    data_dir: Path = DEFAULT_OUT,
    config_path: Path | None = None,
    overrides: Sequence[str] = (),
    run_dir: Path = RUN_DIR,
) -> None:
    """Check the stack, load the export, start the services and run verl's GRPO trainer."""
    missing = missing_requirement()
    if missing:
        raise RLSetupError(missing)
    train_rows, validation_rows = load_datasets(data_dir)
    config = compose_config(config_path or DEFAULT_RL_CONFIG, overrides)
    from agentlightning.verl.entrypoint import run_ppo
    from omegaconf import OmegaConf

    batch = int(config.data.train_batch_size)
    if len(train_rows) < batch:
        # verl drops an incomplete last batch: fewer rows than one batch would train nothing.
        raise RLSetupError(
            f"{data_dir / TRAIN_FILE} has {len(train_rows)} row(s), fewer than "
            f"data.train_batch_size={batch}: validate more items, or --rl-set "
            f"data.train_batch_size={len(train_rows)}"
        )
    model = str(config.actor_rollout_ref.model.path)
    group = batch * int(config.actor_rollout_ref.rollout.n)
    with agl_services(
        model=model, run_dir=run_dir, max_rollouts=min(group, MAX_PARALLEL_ROLLOUTS)
    ) as services:
        OmegaConf.update(config, "agentlightning.agl_base_url", services.url)
        OmegaConf.update(config, "agentlightning.agl_key", services.key)
        if not config.agentlightning.local.agent_class:
            OmegaConf.update(config, "agentlightning.local.agent_class", AGENT_CLASS)
            OmegaConf.update(config, "agentlightning.local.env_map", {INPUT_ENV: "input"})
        run_ppo(config, train_rows, validation_rows)
