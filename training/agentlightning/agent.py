"""The agent `agl-controller` runs for each rollout: triage one validated item with the LLM
backend, score the answer against the human label, report both to agl-server.

How agentlightning 1.0.2 runs it (agentlightning/controller/local_reconciler.py): for each
queued rollout the local controller starts `python -c ...` with `module:Class`, makes the
class with no arguments and calls `run()` (awaiting it when it is a coroutine). The process
gets `AGL_OPENAI_BASE_URL` (agl-server's proxy for this rollout and mode, which records every
call as a `model_request` event and forwards it to the policy being trained), `AGL_EVENT_URL`
(where events for this rollout attempt are POSTed), `AGL_KEY` (the bearer key the server
checks on both) and one variable per `config.local.env_map` entry: ours maps the whole input
(one row of `triage-bot export --format agentlightning`) to `TRIAGE_AGL_INPUT`, as JSON.
Exit code 0 marks the rollout succeeded, anything else failed.

Why it behaves like this:
- The prompt, the JSON schema and the validation are the bot's own (`core.backends.llm`), so
  the policy is trained on exactly the requests it will serve. There is no fallback to the
  embedded model: the reward must score the LLM's answer, and this venv has no torch.
- The reward is `core.rewards.score`, the function that scores the bot's own predictions,
  against the label in the input; it is posted as the `reward` event in RewardData's shape
  ({value, source, reason}) after a `prediction` event, and the trainer takes the last one.
- An answer outside the taxonomy is the policy's fault and earns the floor, -1. A timeout or
  an endpoint error is nobody's answer: no reward, exit 1, the rollout fails and the trainer
  fills it in (`reward_fillna_value`) rather than teaching the policy a network error.
- A row exported under another taxonomy fails the rollout: its severity order and category
  names would make the reward wrong.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from core.backends.llm import Fallback, InvalidReply, LLMClassifier
from core.models import Reward, Triage
from core.rewards import score
from core.runtime import load_runtime_settings
from core.settings import LLMSettings
from core.taxonomy import DEFAULT_CONFIG, Taxonomy, load_taxonomy
from training.agentlightning.rollouts import RolloutInput

INPUT_ENV = "TRIAGE_AGL_INPUT"
DEFAULT_MODEL = "agl-policy"  # the proxy replaces the name with the policy it serves
DEFAULT_TIMEOUT_S = 120.0  # a rollout waits on a busy trainer's vLLM, not on a user
INVALID_REPLY_REWARD = -1.0  # the floor of core.rewards.score's range
INVALID_REPLY_SOURCE = "invalid-reply"
EVENT_TIMEOUT_S = 30.0


class AgentError(RuntimeError):
    """The rollout cannot be scored (bad input, unreachable endpoint); it fails, unrewarded."""


def llm_settings(env: Mapping[str, str]) -> LLMSettings:
    """The bot's LLM settings, pointed at this rollout's proxy with the server's key."""
    base = LLMSettings.from_env(env)
    base_url = env.get("AGL_OPENAI_BASE_URL", "").strip()
    if not base_url:
        raise AgentError("AGL_OPENAI_BASE_URL is not set (agl-controller sets it)")
    return replace(
        base,
        model=base.model or DEFAULT_MODEL,
        base_url=base_url,
        api_key=env.get("AGL_KEY", "").strip() or "unused",
        timeout_s=base.timeout_s if env.get("TRIAGE_LLM_TIMEOUT") else DEFAULT_TIMEOUT_S,
        examples=0,  # no store here; the prompt is the taxonomy and the item
        concurrency=1,
        cooldown_s=0.0,
    )


def rollout_input(env: Mapping[str, str], taxonomy: Taxonomy) -> RolloutInput:
    raw = env.get(INPUT_ENV)
    if not raw:
        raise AgentError(f"{INPUT_ENV} is not set: map it to `input` in config.local.env_map")
    try:
        parsed = RolloutInput.model_validate_json(raw)
    except ValueError as exc:
        raise AgentError(f"{INPUT_ENV} is not an exported rollout row: {exc}") from None
    if parsed.taxonomy != taxonomy.fingerprint():
        raise AgentError(
            f"item {parsed.item.id} was exported under taxonomy {parsed.taxonomy}, "
            f"this agent scores with {taxonomy.fingerprint()}: export again"
        )
    return parsed


def invalid_reply_reward(item_id: str, model_version: str, reason: str) -> Reward:
    return Reward(
        item_id=item_id,
        model_version=model_version,
        value=INVALID_REPLY_REWARD,
        source=INVALID_REPLY_SOURCE,
        reason=reason,
    )


def prediction_data(triage: Triage) -> dict[str, Any]:
    return {
        "item_id": triage.item_id,
        "category": triage.category,
        "severity": triage.severity,
        "confidence": triage.confidence.category,
        "model_version": triage.model_version,
        "backend": triage.backend,
    }


def post_event(url: str, key: str, event_type: str, data: dict[str, Any]) -> None:
    """POST one event to agl-server; raises on anything but a 2xx."""
    from agentlightning.schemas import EventCreate

    body = EventCreate(event_type=event_type, data=data).model_dump_json().encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=EVENT_TIMEOUT_S) as reply:
        reply.read()


class TriageAgent:
    """`training.agentlightning.agent:TriageAgent`: one rollout, one item, one reward."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env

    def run(self) -> None:
        """Triage, score, report. Exits non-zero (rollout failed) when nothing was scored."""
        try:
            reward = self.rollout()
        except AgentError as exc:
            print(f"triage agent: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"triage agent: reward {reward.value:+.4f} ({reward.reason})", file=sys.stderr)

    def rollout(self) -> Reward:
        from agentlightning.schemas import RewardData

        env = self.env
        event_url = env.get("AGL_EVENT_URL", "").strip()
        if not event_url:
            raise AgentError("AGL_EVENT_URL is not set (agl-controller sets it)")
        key = env.get("AGL_KEY", "").strip()
        config = env.get("TRIAGE_CONFIG", "").strip() or DEFAULT_CONFIG
        taxonomy = load_taxonomy(config)
        task = rollout_input(env, taxonomy)
        classifier = LLMClassifier(
            taxonomy, llm_settings(env), runtime=load_runtime_settings(config)
        )
        item, label = task.feedback_item(), task.human_label()
        try:
            triage = classifier.llm_triage(item)
        except InvalidReply as exc:
            reward = invalid_reply_reward(item.id, classifier.llm_version, str(exc))
            prediction: dict[str, Any] = {"item_id": item.id, "invalid_reply": str(exc)}
        except Fallback as exc:
            raise AgentError(f"no answer to score: {exc}") from None
        else:
            reward = score(triage, label, taxonomy)
            prediction = prediction_data(triage)
        reward_data = RewardData(value=reward.value, source=reward.source, reason=reward.reason)
        try:
            post_event(event_url, key, "prediction", prediction)
            post_event(event_url, key, "reward", reward_data.model_dump(exclude_none=True))
        except OSError as exc:
            raise AgentError(f"could not post events to {event_url}: {exc}") from None
        return reward
