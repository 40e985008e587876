"""Agent Lightning end to end, on loopback, in the Python 3.12 `rl` venv.

What is real: a SQLite store whose items and votes go through TriageService (in the core
venv, which has torch), `triage-bot export --format agentlightning`, agl-server and
agl-controller (agentlightning 1.0.2, started by our launcher), our agent run by the
controller, agl-server's OpenAI proxy in front of llama-cpp-python serving SmolLM2, and
`core.rewards.score`. This test plays the part of verl's trainer, which is the one piece
that needs a GPU: it enqueues rollouts made from the exported rows the way
`AglRolloutManager` does and reads their events back the way it does.

A tiny stand-in endpoint replaces the model server for the failure paths (a reply outside
the taxonomy, an endpoint error): it is the outside world, not our code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agentlightning.schemas import Event, Rollout, RolloutCreate, RolloutState
from omegaconf import OmegaConf

from core.models import FieldConfidence, Triage
from core.rewards import REWARD_SOURCE, score
from core.taxonomy import load_taxonomy
from training.agentlightning.agent import INPUT_ENV, INVALID_REPLY_SOURCE
from training.agentlightning.launch import (
    DEFAULT_RL_CONFIG,
    AglServices,
    RLSetupError,
    agl_services,
    compose_config,
    load_datasets,
    missing_requirement,
    train_grpo,
)
from training.agentlightning.rollouts import (
    TRAIN_FILE,
    VALIDATION_FILE,
    RolloutInput,
    read_rows,
    rollout_row,
)

REPO = Path(__file__).resolve().parents[2]
CORE_PYTHON = Path(os.environ.get("TRIAGE_CORE_PYTHON") or REPO / ".venv" / "bin" / "python")
MODEL = "smollm2"  # what the llm_server fixture serves; agl-server's proxy model name
ROLLOUT_TIMEOUT_S = 300.0
TAXONOMY = load_taxonomy()


# -- the services ------------------------------------------------------------------------------
class Api:
    """agl-server's HTTP API, as the trainer's rollout manager calls it."""

    def __init__(self, services: AglServices) -> None:
        self.url, self.key = services.url, services.key

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            raw = reply.read()
        return json.loads(raw) if raw else None

    def serve_model(self, endpoint: str) -> None:
        """Point the proxy at one model server, as the trainer does with its vLLM servers."""
        self.call("DELETE", "/api/models")
        self.call("POST", "/api/models", [{"model": MODEL, "endpoint": endpoint}])

    def enqueue(self, inputs: list[dict[str, Any]], *, is_train: bool) -> list[str]:
        """One rollout per input, configured from config/agl-grpo.yaml's agent settings."""
        local = OmegaConf.to_container(OmegaConf.load(DEFAULT_RL_CONFIG).agentlightning.local)
        requests = [
            RolloutCreate(
                input=row,
                is_train=is_train,
                config={"timeout_seconds": int(ROLLOUT_TIMEOUT_S), "local": local},
                metadata={},
                rollout_id=uuid.uuid4().hex,
            )
            for row in inputs
        ]
        payload = [r.model_dump(mode="json", exclude_none=True) for r in requests]
        return [
            Rollout.model_validate(r).rollout_id
            for r in self.call("POST", "/api/rollouts", payload)
        ]

    def wait(self, rollout_ids: list[str], services: AglServices) -> dict[str, Rollout]:
        deadline = time.monotonic() + ROLLOUT_TIMEOUT_S
        while True:
            done = {
                rid: Rollout.model_validate(self.call("GET", f"/api/rollouts/{rid}")["rollout"])
                for rid in rollout_ids
            }
            if all(
                r.status.state in (RolloutState.SUCCEEDED, RolloutState.FAILED)
                for r in done.values()
            ):
                return done
            if time.monotonic() > deadline:
                pytest.fail(
                    f"rollouts not finished in {ROLLOUT_TIMEOUT_S:.0f}s: "
                    f"{[r.status.state for r in done.values()]}\n{services.log('controller')}",
                    pytrace=False,
                )
            time.sleep(0.5)

    def events(self, rollout_id: str, fmt: str | None = None) -> list[Event]:
        query = "?format=triplet" if fmt else ""
        return [
            Event.model_validate(e)
            for e in self.call("GET", f"/api/rollouts/{rollout_id}/events{query}")
        ]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AglServices]:
    run_dir = tmp_path_factory.mktemp("agl")
    with agl_services(model=MODEL, run_dir=run_dir, max_rollouts=2, poll_interval_s=0.3) as running:
        yield running


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Items and votes through TriageService in a real SQLite store, then the real export."""
    if not CORE_PYTHON.exists():
        pytest.skip(f"no core venv at {CORE_PYTHON} (bash scripts/install)")
    tmp = tmp_path_factory.mktemp("store")
    store_url = f"sqlite:///{tmp / 'store.db'}"
    made = subprocess.run(
        [str(CORE_PYTHON), str(REPO / "tests" / "rl" / "make_store.py"), store_url],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    out = tmp / "agl"
    export = subprocess.run(
        [
            str(CORE_PYTHON.parent / "triage-bot"),
            "export",
            "--format",
            "agentlightning",
            "--store",
            store_url,
            "--out",
            str(out),
            "--validation-share",
            "0.34",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert export.returncode == 0, export.stderr[-3000:]
    made_out = json.loads(made.stdout)
    return {
        **made_out,
        "summary": json.loads(export.stdout),
        "labels": {r["id"]: r for r in made_out["labels"]},
        "dir": out,
    }


class StandIn:
    """An OpenAI-compatible endpoint that answers outside the taxonomy, or with a 400 when
    the feedback asks for one: a broken model server, for the agent's failure paths."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                last = body["messages"][-1]["content"]
                if "ENDPOINT-ERROR" in last:
                    status, reply = 400, {"error": {"message": "the model is unavailable"}}
                else:
                    content = json.dumps(
                        {"category": "hacked", "severity": "critical", "confidence": 1}
                    )
                    message = {"role": "assistant", "content": content}
                    reply = {
                        "id": "chatcmpl-standin",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", MODEL),
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    }
                    status = 200
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _by_type(events: list[Event], event_type: str) -> list[Event]:
    return [e for e in events if e.event_type == event_type]


# -- the tests ---------------------------------------------------------------------------------
def test_export_is_what_the_trainer_and_the_agent_read(exported: dict[str, Any]) -> None:
    train, validation = load_datasets(exported["dir"])  # what `train --algo grpo` hands run_ppo
    assert exported["summary"]["train"] == len(train) and exported["summary"]["validation"] == len(
        validation
    )
    assert train and validation
    rows = train + validation
    assert sorted(r["data_id"] for r in rows) == sorted(exported["validated"])
    assert not {r["data_id"] for r in rows} & set(exported["unexported"])  # unlabelled, rejected
    assert [r["extra_info"]["index"] for r in train] == list(range(len(train)))
    for row in rows:
        task = RolloutInput.model_validate(row)
        record = exported["labels"][task.item.id]
        assert (task.label.category, task.label.severity) == (
            record["category"],
            record["severity"],
        )
        assert task.item.text == record["text"] and exported["email"] not in json.dumps(row)
        assert task.taxonomy == TAXONOMY.fingerprint()
    assert read_rows(exported["dir"] / TRAIN_FILE) == train
    # The shipped config hands each row to the agent whole, in the variable it reads.
    local = OmegaConf.load(DEFAULT_RL_CONFIG).agentlightning.local
    assert local.agent_class == "training.agentlightning.agent:TriageAgent"
    assert dict(local.env_map) == {INPUT_ENV: "input"}
    assert (exported["dir"] / VALIDATION_FILE).read_text().count("\n") == len(validation)


def test_rewards_from_human_labels_reach_agl_server(
    exported: dict[str, Any], services: AglServices, llm_server: str
) -> None:
    api = Api(services)
    api.serve_model(llm_server)
    train, validation = load_datasets(exported["dir"])
    # Two train rollouts and one validation one: each mode of the proxy, on a 2-core budget.
    train, validation = train[:2], validation[:1]
    # verl's trainer sends the row plus its own keys; the agent must not mind them.
    train_inputs = [{**row, "index": i, "uid": uuid.uuid4().hex} for i, row in enumerate(train)]
    ids = api.enqueue(train_inputs, is_train=True) + api.enqueue(validation, is_train=False)
    finished = api.wait(ids, services)

    rows = {rid: row for rid, row in zip(ids, train_inputs + validation, strict=True)}
    for rid, rollout in finished.items():
        assert rollout.status.state == RolloutState.SUCCEEDED, (
            rollout.status.error_message,
            services.log("controller"),
        )
        events = api.events(rid)
        (prediction,) = _by_type(events, "prediction")
        rewards = _by_type(events, "reward")
        assert rewards and events[-1] == rewards[-1], [e.event_type for e in events]
        # The prediction is the policy's own answer, as the proxy recorded it.
        calls = [e for e in _by_type(events, "model_request") if e.data["status"] == "ok"]
        assert calls, "the agent did not reach the model through agl-server's proxy"
        answer = json.loads(calls[-1].data["response"]["choices"][0]["message"]["content"])
        assert (prediction.data["category"], prediction.data["severity"]) == (
            answer["category"],
            answer["severity"],
        )
        assert calls[-1].data["model"] == MODEL
        mode_temperature = 1.0 if rollout.is_train else 0.7  # agl-server's default proxy config
        assert calls[-1].data["request"]["temperature"] == mode_temperature
        assert exported["email"] not in json.dumps([e.data["request"] for e in calls])
        # The reward is the bot's reward of that answer against the human label.
        task = RolloutInput.model_validate(rows[rid])
        triage = Triage(
            item_id=task.item.id,
            category=prediction.data["category"],
            severity=prediction.data["severity"],
            action="",
            confidence=FieldConfidence(category=0.5, severity=0.5),
            model_version=prediction.data["model_version"],
        )
        expected = score(triage, task.human_label(), TAXONOMY)
        assert rewards[-1].data == {
            "value": expected.value,
            "source": REWARD_SOURCE,
            "reason": expected.reason,
        }
        # ... and the value the trainer takes: the last reward of the triplet view.
        triplet_rewards = _by_type(api.events(rid, fmt="triplet"), "reward")
        assert triplet_rewards[-1].data["value"] == expected.value


def test_an_answer_outside_the_taxonomy_earns_the_floor_and_an_endpoint_error_no_reward(
    services: AglServices,
) -> None:
    standin = StandIn()
    try:
        api = Api(services)
        api.serve_model(standin.url)
        record = {
            "id": "fb_standin",
            "text": "The checkout page returns a 500 error",
            "category": "website-bug",
            "severity": "critical",
            "reviewers": ["alice"],
            "agreement": 1.0,
        }
        broken = {**record, "id": "fb_broken", "text": "ENDPOINT-ERROR please"}
        stale = rollout_row({**record, "id": "fb_stale"}, "0ld7axon")
        inputs = [
            rollout_row(record, TAXONOMY.fingerprint()),
            rollout_row(broken, TAXONOMY.fingerprint()),
            stale,
        ]
        ids = api.enqueue(inputs, is_train=True)
        finished = api.wait(ids, services)
    finally:
        standin.close()
    invalid, failed, wrong_taxonomy = (finished[rid] for rid in ids)

    assert invalid.status.state == RolloutState.SUCCEEDED
    (reward,) = _by_type(api.events(ids[0]), "reward")
    assert reward.data["value"] == -1.0 and reward.data["source"] == INVALID_REPLY_SOURCE
    assert "category" in reward.data["reason"]
    (prediction,) = _by_type(api.events(ids[0]), "prediction")
    assert prediction.data["invalid_reply"] == reward.data["reason"]

    # An endpoint error is nobody's answer: the rollout fails, with no reward to learn from.
    assert failed.status.state == RolloutState.FAILED
    assert not _by_type(api.events(ids[1]), "reward")
    # A row exported under another taxonomy would be scored wrongly: it fails too.
    assert wrong_taxonomy.status.state == RolloutState.FAILED
    assert not _by_type(api.events(ids[2]), "reward")
    assert "exported under taxonomy 0ld7axon" in services.log("controller", tail=20000)


def test_train_grpo_stops_at_once_naming_what_is_missing(tmp_path: Path) -> None:
    missing = missing_requirement()
    if missing is None:
        pytest.skip("verl, vLLM and a GPU are all here: this is a training box")
    started = time.monotonic()
    with pytest.raises(RLSetupError) as raised:
        train_grpo(tmp_path / "nothing-exported")
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert message == missing and "\n" not in message
    module = message.split()[0]
    assert module in {"verl", "vllm", "ray", "torch", "no"}
    assert "pip install" in message or "CUDA" in message


def test_load_datasets_explains_a_missing_export(tmp_path: Path) -> None:
    with pytest.raises(RLSetupError, match="triage-bot export --format agentlightning"):
        load_datasets(tmp_path)
    (tmp_path / TRAIN_FILE).write_text("")
    (tmp_path / VALIDATION_FILE).write_text("")
    with pytest.raises(RLSetupError, match="is empty"):
        load_datasets(tmp_path)


def test_the_agent_imports_without_torch() -> None:
    """The controller imports the agent in this venv, which has no torch (nor should need it)."""
    probe = (
        "import sys, training.agentlightning.agent, training.agentlightning.launch; "
        "sys.exit('torch' in sys.modules or 'agentlightning' in sys.modules)"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]


@pytest.mark.skipif(importlib.util.find_spec("verl") is None, reason="verl is not installed")
def test_the_grpo_config_composes_onto_verl_and_agentlightning() -> None:
    """Where verl is installed (a training box): the shipped config is valid against it."""
    config = compose_config(DEFAULT_RL_CONFIG, ["trainer.total_epochs=1"])
    assert config.algorithm.adv_estimator == "grpo"
    assert config.actor_rollout_ref.rollout.name == "vllm" and config.trainer.total_epochs == 1
    assert config.agentlightning.local.env_map[INPUT_ENV] == "input"
    with pytest.raises(RLSetupError, match="totl_epochs"):
        compose_config(DEFAULT_RL_CONFIG, ["trainer.totl_epochs=1"])


def test_read_rows_keeps_unicode_line_separators_inside_strings(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"text": "copied\u2028from a page\u0085and\u2029on"}, {"text": "two"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    assert read_rows(path) == rows
