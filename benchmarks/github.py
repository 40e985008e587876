"""`triage-bot bench github`: "Create issue" under load, from the modal to the card's link.

The bot runs as `triage-bot serve slack` in its own process (HTTP mode, a scratch SQLite
store), as in `benchmarks/load.py`, with GitHub pointed at a fake of its REST API
(`tests/fakes/github.py`) served from this process. N feedback items come in by the signed
`/feedback` webhook; once every card is posted, each card's Create issue modal is submitted
(a signed Slack `view_submission`; the button's click and `views.open` are skipped, the view
carries `cards.modal_metadata` as the real modal does), a few in flight at a time.

Per click it measures the ack of the submission (what Slack waits for: the issue is queued
in the store before it) and the time from sending it until Slack (the fake) is told to show
the issue's html_url on the card: the `chat.update` that first carries it, timed where the
fake received it (the fake's clock is this process's). Then it checks: exactly N issues on
GitHub, one per item (by the body's `triage-bot:item=<id>` marker), as many creates answered
201, every card showing its own issue's link, and every post in the store `posted` with the
issue's URL as its ref.

`fault="ratelimit"`: GitHub answers some creates (`rate_limits`, spread over the click
burst) with its secondary rate limit (403 + `retry-after: 1`); every issue must still
arrive exactly once (the retries after a 403 look the issue up by its marker first).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from slack_sdk.signature import SignatureVerifier

from benchmarks.load import (
    CHANNEL,
    SIGNING_SECRET,
    BotProcess,
    Outcome,
    Progress,
    Sender,
    _ms,
    _quiet,
    burst_figures,
    cards_by_item,
    feedback_bodies,
    fire,
    item_id_of,
    wait_until,
)
from bot.slack.cards import ISSUE_VIEW, modal_metadata
from tests.fakes.github import FakeGitHub
from tests.fakes.slack_api import FakeSlack

GITHUB_REPO = "bench/web"
GITHUB_TOKEN = "ghp-bench"
ISSUE_TARGET = f"github:{GITHUB_REPO}"
CLICKER = "UCLICK"
FAULTS = ("ratelimit",)
MARKER = re.compile(r"<!-- triage-bot:item=(.+?) -->")


# -- payloads ----------------------------------------------------------------------------------
def issue_submission(
    item_id: str, card_ts: str, *, user: str, title: str, labels: str, channel: str = CHANNEL
) -> dict[str, Any]:
    """The Create issue modal as Slack submits it (`view_submission`), for one card."""
    return {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A1",
        "view": {
            "id": f"V{uuid.uuid4().hex[:10].upper()}",
            "type": "modal",
            "callback_id": ISSUE_VIEW,
            "private_metadata": modal_metadata(item_id, channel, card_ts),
            "state": {
                "values": {
                    "title": {"value": {"type": "plain_text_input", "value": title}},
                    "labels": {"value": {"type": "plain_text_input", "value": labels}},
                }
            },
        },
    }


def send_interaction(sender: Sender, key: str, payload: dict[str, Any]) -> Outcome:
    """A signed interactivity request (`payload=` form field), as Slack posts it; retried
    like Slack on a 5xx or no answer, signed afresh at each attempt."""
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()

    def headers() -> dict[str, str]:
        ts = str(int(time.time()))
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(
                SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
            ),
        }

    return sender.send(key, "/slack/events", body, headers)


# -- what GitHub and Slack (the fakes) hold ------------------------------------------------------
def issues_by_item(gh: FakeGitHub, repo: str = GITHUB_REPO) -> dict[str, list[dict[str, Any]]]:
    """item id -> every issue whose body carries that item's marker."""
    out: dict[str, list[dict[str, Any]]] = {}
    for issue in gh.issues(repo):
        found = MARKER.search(str(issue.get("body") or ""))
        if found:
            out.setdefault(found.group(1), []).append(issue)
    return out


def cards_linked(fake: FakeSlack, urls: dict[str, str]) -> set[str]:
    """The items whose card (as Slack holds it now) shows their issue's URL."""
    linked = set()
    for message in fake.messages(CHANNEL):
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        item_id = payload.get("item_id")
        url = urls.get(str(item_id))
        if url and url in json.dumps(message.get("blocks") or []):
            linked.add(str(item_id))
    return linked


def first_linked_update(
    fake: FakeSlack, ts_to_item: dict[str, str], urls: dict[str, str]
) -> dict[str, float]:
    """item id -> when the fake received the first `chat.update` of its card carrying its
    issue's URL (monotonic, this process's clock)."""
    out: dict[str, float] = {}
    for call in fake.calls("chat.update"):
        if call.failed:
            continue
        item_id = ts_to_item.get(str(call.params.get("ts")))
        if item_id is None or item_id in out:
            continue
        url = urls.get(item_id)
        if url and url in json.dumps(call.params.get("blocks") or []):
            out[item_id] = call.at
    return out


def store_posts(store_url: str, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """item id -> (status, ref) of its GitHub post in the bot's store."""
    from core.store import open_store

    store = open_store(store_url)
    try:
        out = {}
        for item_id in ids:
            post = store.get_post(item_id, ISSUE_TARGET)
            if post is not None:
                out[item_id] = (str(post.status), post.ref)
        return out
    finally:
        store.close()


# -- the run -----------------------------------------------------------------------------------
def run_github(
    clicks: int = 200,
    *,
    concurrency: int = 4,
    fault: str | None = None,
    rate_limits: int | None = None,
    link_timeout: float | None = None,
    progress: Progress = _quiet,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """The whole benchmark; returns its figures and checks (see the module docstring).

    `rate_limits`: how many creates the `ratelimit` fault answers 403 (default N/25, at
    least 2; fewer when there are fewer clicks). `link_timeout`: how long to wait for every
    card to show its link (default 60 s, 0.5 s more a click and 5 s more a rate limit)."""
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
    if clicks < 1:
        raise ValueError("need at least one click")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    limits = (rate_limits if rate_limits is not None else max(2, clicks // 25)) if fault else 0
    own_dir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="triage-github-")) if workdir is None else workdir
    store_url = f"sqlite:///{work / 'bench.db'}"
    run = uuid.uuid4().hex[:6]
    try:
        with FakeGitHub(token=GITHUB_TOKEN) as gh, contextlib.ExitStack() as cleanup:
            fake = cleanup.enter_context(FakeSlack())
            gh.add_repo(GITHUB_REPO)
            bot = BotProcess(
                store_url,
                fake.base_url,
                work / "bot.log",
                env={
                    "TRIAGE_GITHUB_REPO": GITHUB_REPO,
                    "GITHUB_TOKEN": GITHUB_TOKEN,
                    "GITHUB_API_URL": gh.base_url,
                    "TRIAGE_GITHUB_TIMEOUT": "10",
                },
            )
            cleanup.callback(bot.stop)  # whatever happens, no bot process is left behind
            progress("starting the bot", 0, 1)
            start_seconds = bot.start()
            progress("starting the bot", 1, 1)
            sender = Sender(bot.port, give_up_after=60.0)

            # 1. the feedback items, and their cards
            bodies = feedback_bodies(clicks, run)
            ids = [item_id_of(b) for b in bodies]
            jobs = [(lambda i=i, b=b: sender.feedback(ids[i], b)) for i, b in enumerate(bodies)]
            feed, _ = fire(jobs, 8, lambda n: progress("submitting feedback", n, clicks))
            rejected = [o.key for o in feed if not o.accepted]
            if rejected:
                raise RuntimeError(f"{len(rejected)} feedback submissions refused: {rejected[:3]}")
            post_started = time.monotonic()

            def posted() -> bool:
                count = len(set(ids) & set(cards_by_item(fake)))
                progress("posting cards", count, clicks)
                return count >= clicks

            if not wait_until(posted, timeout=max(60.0, clicks * 0.5), every=0.25):
                raise RuntimeError(f"not every card was posted: {bot.log_tail()}")
            post_seconds = time.monotonic() - post_started
            cards = {i: ts[0] for i, ts in cards_by_item(fake).items()}
            ts_to_item = {ts: i for i, ts in cards.items()}

            # 2. the Create issue submissions, a few in flight
            sent_at: dict[str, float] = {}
            injected: list[float] = []
            inject_at = (
                {max(1, round(clicks * (k + 1) / (limits + 1))) for k in range(limits)}
                if limits
                else set()
            )
            lock = threading.Lock()

            def click(i: int, item_id: str) -> Outcome:
                payload = issue_submission(
                    item_id,
                    cards[item_id],
                    user=CLICKER,
                    title=f"Bench issue {run}-{i}",
                    labels="triage-bot, bug",
                )
                sent_at[item_id] = time.monotonic()
                return send_interaction(sender, item_id, payload)

            def clicked(count: int) -> None:
                progress("Create issue submissions", count, clicks)
                if count in inject_at:
                    with lock:  # the next create is answered 403 + retry-after 1
                        gh.secondary_rate_limit(
                            retry_after=1,
                            path_contains=f"/repos/{GITHUB_REPO}/issues",
                            method="POST",
                        )
                        injected.append(time.monotonic())

            click_jobs = [(lambda i=i, x=x: click(i, x)) for i, x in enumerate(ids)]
            outcomes, click_seconds = fire(click_jobs, concurrency, clicked)
            first_sent = min(sent_at.values())

            # 3. GitHub creates each issue (the bot's outbox), and Slack's card shows it
            urls: dict[str, str] = {}

            def all_linked() -> bool:
                for item_id, found in issues_by_item(gh).items():
                    urls.setdefault(item_id, str(found[0]["html_url"]))
                count = len(cards_linked(fake, urls) & set(ids))
                progress("cards showing their issue", count, clicks)
                return count >= clicks

            timeout = link_timeout or (60.0 + clicks * 0.5 + limits * 5.0)
            every_linked = wait_until(all_linked, timeout=timeout, every=0.25)
            time.sleep(1.0)  # a duplicate create would land now, not after the checks
            by_item = issues_by_item(gh)
            urls = {i: str(found[0]["html_url"]) for i, found in by_item.items()}
            linked_now = cards_linked(fake, urls)
            linked_at = first_linked_update(fake, ts_to_item, urls)
            creates = gh.calls_to("POST", f"/repos/{GITHUB_REPO}/issues")
            # Where the bot looked an issue up by its marker (a retried create): the list of
            # the newest issues first, then search (GitHub allows 30 searches a minute).
            lists = gh.calls_to("GET", f"/repos/{GITHUB_REPO}/issues")
            searches = gh.calls_to("GET", "/search/issues")
            told = [
                c
                for c in fake.calls("chat.postEphemeral")
                if c.params.get("user") == CLICKER and "github.test" in str(c.params.get("text"))
            ]
            health = bot.health()
            bot_alive = bot.alive
            bot.stop()
            issues = gh.issues(GITHUB_REPO)
        posts = store_posts(store_url, ids)

        accepted = [o for o in outcomes if o.accepted]
        refused = [o.key for o in outcomes if not o.accepted or b"errors" in o.final.body]
        latencies = [linked_at[i] - sent_at[i] for i in ids if i in linked_at and i in sent_at]
        span = (max(linked_at.values()) - first_sent) if linked_at else 0.0
        created = [c for c in creates if c.status == 201]
        statuses = Counter(str(c.status) for c in creates)
        twice = sorted(i for i, found in by_item.items() if len(found) > 1)
        strays = sorted(set(by_item) - set(ids))
        missing = sorted(set(ids) - set(by_item))
        unlinked = sorted(set(ids) - linked_now)
        bad_posts = sorted(
            i for i in ids if posts.get(i) != ("posted", urls.get(i)) or urls.get(i) is None
        )
        checks: dict[str, Any] = {
            "submissions_acked": len(accepted) == clicks and not refused,
            "issues_exactly_n": len(issues) == clicks,
            "one_issue_per_item": not twice and not strays and not missing,
            "creates_answered_201": len(created) == clicks,
            "every_card_linked": not unlinked,
            "store_posts_posted_with_url": not bad_posts,
            "missing_issues": missing[:5],
            "issues_twice": twice[:5],
            "cards_not_linked": unlinked[:5],
            "posts_not_matching": [[i, *posts.get(i, ("none", None))] for i in bad_posts[:5]],
        }
        if fault == "ratelimit":
            checks["every_rate_limit_answered"] = statuses.get("403", 0) == len(injected) > 0
        figures: dict[str, Any] = {
            "clicks": clicks,
            "concurrency": concurrency,
            "fault": fault,
            "store": "sqlite",
            "bot_start_seconds": round(start_seconds, 1),
            "cards_posted_seconds": round(post_seconds, 2),
            "submissions": burst_figures(outcomes, click_seconds),
            "card_link_ms": _ms(latencies),
            "cards_linked_seconds": round(span, 2),
            "issues_per_s": round(len(latencies) / span, 1) if span else None,
            "github": {
                "issues": len(issues),
                "creates_by_status": dict(sorted(statuses.items())),
                "rate_limits_injected": len(injected),
                "issue_list_reads": len([c for c in lists if c.path.endswith("/issues")]),
                "searches": len(searches),
            },
            "clicker_told_the_link": len(told),
            "bot_alive_at_end": bot_alive and health[0] == 200,
            "checks": checks,
        }
        figures["ok"] = bool(
            every_linked
            and figures["bot_alive_at_end"]
            and all(v for v in checks.values() if isinstance(v, bool))
        )
        return figures
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
