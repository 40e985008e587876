"""Cards that lead somewhere: a GitHub issue from a card, its state read back, and what
happens to it afterwards as a label and a reward.

An issue is one more destination of the outbox (target `github:<owner>/<name>`), so it is
created exactly once (a second click, a redelivered event and two workers all find the same
post), retried with backoff on GitHub's errors and rate limits, and looked up by its marker
after a crash. What a reviewer asked for (title, labels), who asked, and what GitHub says
of the issue since (state, labels) ride in the post's `detail`; its ref is the issue's URL.

What GitHub says back (a webhook delivery, or a poll) arrives here as an `IssueUpdate`:
- its state and labels are kept and every card of the item is rewritten to show them;
- a maintainer's relabel that maps to another category or severity is that maintainer's
  correction (reviewer `github:<login>`);
- closed as completed confirms the card as it was when the issue was opened: a vote of
  `OUTCOME_REVIEWER`, weighed at `[github] outcome_weight`, and an outcome reward;
- closed as not planned or as a duplicate gives the prediction `not_planned_reward`;
- reopened withdraws the outcome (its vote is retracted, its reward set to 0).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from core.models import (
    CardView,
    FeedbackItem,
    FieldConfidence,
    Label,
    PostRecord,
    Reward,
    Triage,
    ValidationKind,
    as_utc,
    utcnow,
)
from core.owners import Router
from core.rewards import OUTCOME_REVIEWER, OUTCOME_SOURCE, score
from core.runtime import GitHubSettings
from core.service import NotAllowedError, TriageService, UnknownItemError
from core.taxonomy import ConfigError
from core.votes import NOT_A_REVIEWER, Ballot, VoteDesk

log = logging.getLogger("triage_bot.issues")

ISSUE_TARGET_PREFIX = "github:"
MAX_TITLE_CHARS = 120  # a default title: the first line of the text, this long at most
GITHUB_OFF = "GitHub is not set up for this bot (TRIAGE_GITHUB_REPO and GITHUB_TOKEN)."
ISSUE_WAIT_SECONDS = 10.0  # how long the clicker's answer waits for GitHub's first answer

Status = Literal["creating", "retrying", "failed", "open", "closed", "reopened"]


def issue_target(repo: str) -> str:
    return f"{ISSUE_TARGET_PREFIX}{repo}"


def is_issue_target(target: str) -> bool:
    return target.startswith(ISSUE_TARGET_PREFIX)


def issue_number(url: str) -> int | None:
    """The number at the end of an issue's URL (`.../issues/12`)."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


@dataclass(frozen=True)
class IssueLink:
    """What a card shows of the item's issue."""

    repo: str
    status: Status
    url: str | None = None
    state_reason: str | None = None
    error: str | None = None
    labels: tuple[str, ...] = ()

    @property
    def number(self) -> int | None:
        return issue_number(self.url) if self.url else None

    @property
    def name(self) -> str:
        """`owner/name#12`, or the repository alone before the issue exists."""
        return f"{self.repo}#{self.number}" if self.number is not None else self.repo

    @property
    def state_text(self) -> str:
        """The issue's state in words, as GitHub's own UI puts it."""
        if self.status == "closed":
            reason = (self.state_reason or "completed").replace("_", " ")
            return f"closed as {reason}"
        if self.status == "retrying":
            return f"not created yet, retrying ({self.error})" if self.error else "retrying"
        if self.status == "failed":
            return f"could not be created ({self.error})" if self.error else "failed"
        return "being created" if self.status == "creating" else self.status


def offers_issue(view: CardView) -> bool:
    """A card offers "Create issue" where GitHub is set up and no issue is on its way."""
    return view.issue_repo is not None and not any(link.status != "failed" for link in view.issues)


def issue_reply(link: IssueLink, *, created: bool, name: str, text: Callable[[str], str]) -> str:
    """What the clicker alone sees after Create issue; `name` is the issue's name as the
    platform shows it (linked once it exists), `text` shows GitHub's words literally."""
    if link.status in ("open", "closed", "reopened"):
        verb = "Opened" if created else "This card already has"
        return f"{verb} {name} ({text(link.state_text)})."
    if link.status == "creating":
        return f"The issue in {name} is queued; the card links it once GitHub has it."
    if link.status == "retrying":
        return (
            f"GitHub did not take the issue yet: {text(link.error or '')}. "
            "The bot retries; the card links the issue once it exists."
        )
    return f"GitHub refused the issue: {text(link.error or '')}."


def issue_link(post: PostRecord) -> IssueLink:
    """A GitHub post as a card shows it: being created, retrying, failed, or its state."""
    repo = post.target.removeprefix(ISSUE_TARGET_PREFIX)
    labels = tuple(str(label) for label in post.detail.get("issue_labels", []))
    if post.status == "dead":
        return IssueLink(repo, "failed", error=post.last_error)
    if post.ref is None:
        status: Status = "retrying" if post.last_error else "creating"
        return IssueLink(repo, status, error=post.last_error)
    state = post.detail.get("state", "open")
    reason = post.detail.get("state_reason")
    if state == "closed":
        return IssueLink(repo, "closed", post.ref, reason, labels=labels)
    return IssueLink(repo, "reopened" if reason == "reopened" else "open", post.ref, labels=labels)


@dataclass(frozen=True)
class IssueDraft:
    """What "Create issue" opens: a reviewer may edit all three first (Slack's modal)."""

    title: str
    labels: list[str]
    action: str = ""


@dataclass(frozen=True)
class IssueUpdate:
    """What GitHub says of one issue (a webhook delivery or a poll), translated at the edge.

    `actor` is who changed it (None from a poll, which cannot tell); `actor_is_bot` is
    True for the bot's own token (its labels at creation are not a maintainer's)."""

    url: str
    state: Literal["open", "closed"]
    state_reason: str | None
    labels: list[str]
    updated_at: datetime
    actor: str | None = None
    actor_is_bot: bool = False
    action: str | None = None


@dataclass
class Applied:
    """What one update did, for the webhook's answer and the logs."""

    item_id: str | None
    changes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.item_id is None:
            return "not an issue the bot opened"
        return f"{self.item_id}: " + (", ".join(self.changes) or "nothing new")


class IssueDesk:
    """The one path from a card to its GitHub issue and back, shared by every platform."""

    def __init__(
        self,
        service: TriageService,
        votes: VoteDesk,
        repo: str,
        settings: GitHubSettings | None = None,
        wake: Callable[[], object] = lambda: None,
        router: Router | None = None,
    ) -> None:
        self.service = service
        self.store = service.store
        self.taxonomy = service.taxonomy
        self.votes = votes
        self.repo = repo
        self.target = issue_target(repo)
        self.settings = settings or service.runtime.github
        self.wake = wake  # the GitHub outbox worker
        self.router = router  # the item's owner is the issue's assignee
        self._check_label_maps()

    def _check_label_maps(self) -> None:
        for key, known in (
            ("category_labels", self.taxonomy.category_names),
            ("severity_labels", self.taxonomy.severity_names),
        ):
            for name in getattr(self.settings, key):
                if name not in known:
                    raise ConfigError(
                        f"[github.{key}] names {name!r}, which is not in the taxonomy "
                        f"({', '.join(known)})"
                    )

    # -- from a card to an issue ---------------------------------------------------------
    def _as_shown(self, item_id: str) -> tuple[FeedbackItem, Triage, Label | None]:
        item = self.store.get_item(item_id)
        triage = self.store.latest_triage(item_id)
        if item is None or triage is None:
            raise UnknownItemError(f"unknown item id {item_id!r}")
        return item, triage, self.store.get_label(item_id)

    def labels_for(self, category: str, severity: str) -> list[str]:
        wanted = [
            *self.settings.labels,
            self.settings.category_labels.get(category),
            self.settings.severity_labels.get(severity),
        ]
        return list(dict.fromkeys(label for label in wanted if label))

    def draft(self, item_id: str) -> IssueDraft:
        """The default title (the text's first line) and labels (the card's category and
        severity as they stand, through the label maps)."""
        item, triage, label = self._as_shown(item_id)
        category, severity = (
            (label.category, label.severity)
            if label
            else (
                triage.category,
                triage.severity,
            )
        )
        first = next((line.strip() for line in item.redacted_text.splitlines() if line.strip()), "")
        title = first if len(first) <= MAX_TITLE_CHARS else first[: MAX_TITLE_CHARS - 1] + "…"
        return IssueDraft(
            title=title or f"Feedback {item.id}",
            labels=self.labels_for(category, severity),
            action=(label.action if label and label.action else None) or triage.action,
        )

    def link(self, item_id: str) -> IssueLink | None:
        post = self.store.get_post(item_id, self.target)
        return issue_link(post) if post is not None else None

    def request(
        self,
        item_id: str,
        reviewer: str,
        platform: str,
        *,
        title: str | None = None,
        labels: Sequence[str] | None = None,
        roles: Iterable[str] = (),
        notify: dict[str, Any] | None = None,
        action: str | None = None,
    ) -> tuple[PostRecord, bool]:
        """Queue the item's issue (once: a second request finds the first) and count the
        click as the reviewer's confirmation unless the card was corrected. An `action` the
        reviewer rewrote is their correction of the action (a label the next look-alike
        learns from). Returns the post and whether this request queued it. Raises
        NotAllowedError or UnknownItemError."""
        roles = frozenset(roles)
        if not self.votes.may_vote(reviewer, roles):
            raise NotAllowedError(NOT_A_REVIEWER)
        item, triage, label = self._as_shown(item_id)
        default = self.draft(item_id)
        chosen_title = (title or "").strip() or default.title
        chosen_labels = (
            list(dict.fromkeys(x.strip() for x in labels if x.strip())) if labels else []
        )
        category, severity = (
            (label.category, label.severity)
            if label
            else (
                triage.category,
                triage.severity,
            )
        )
        choice = self.router.choose(item, category) if self.router is not None else None
        assignees = [choice.owner.github] if choice is not None and choice.owner.github else []
        detail = {
            "assignees": assignees,
            "title": chosen_title[:256],
            "labels": (chosen_labels if labels is not None else default.labels)[:20],
            "requested_by": {"reviewer": reviewer, "platform": platform, **(notify or {})},
            "requested_at": utcnow().isoformat(),
            # What the card held when the issue was asked for: what an outcome confirms,
            # and which prediction its reward goes to.
            "card": {"category": category, "severity": severity},
            "prediction": {
                "category": triage.category,
                "severity": triage.severity,
                "model_version": triage.model_version,
            },
        }
        corrected = label is not None and (label.category, label.severity) != (
            triage.category,
            triage.severity,
        )
        with self.store.transaction():
            queued = self.store.enqueue_post(item.id, self.target, detail)
            if not queued and self.store.requeue_post(item.id, self.target):
                # GitHub refused it for good last time: this click is another try.
                self.store.set_post_detail(item.id, self.target, detail)
                queued = True
            rewritten = (action or "").strip()
            if rewritten and " ".join(rewritten.split()) == " ".join(default.action.split()):
                rewritten = ""
            # The click's vote: a rewritten action is a correction of it (the card's category
            # and severity kept), else a confirmation unless someone corrected the card.
            vote = None
            if queued and rewritten:
                vote = Ballot(
                    item.id,
                    reviewer,
                    ValidationKind.CORRECT,
                    platform,
                    category,
                    severity,
                    rewritten,
                    roles=roles,
                )
            elif queued and not corrected:
                vote = Ballot(item.id, reviewer, ValidationKind.CONFIRM, platform, roles=roles)
            if vote is not None:
                self.votes.cast(vote)
        post = self.store.get_post(item.id, self.target)
        assert post is not None
        if queued:
            self.rewrite_cards(item.id)
            self.wake()
        return post, queued

    def wait(self, item_id: str, timeout: float, poll: float = 0.1) -> IssueLink | None:
        """The issue's link once its first attempt has an answer (created, failed, or
        retrying), or as it stands after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            link = self.link(item_id)
            if link is None or link.status != "creating" or time.monotonic() >= deadline:
                return link
            time.sleep(poll)

    def rewrite_cards(self, item_id: str) -> None:
        """Mark every chat card of the item stale (each platform's outbox rewrites its own,
        in whichever process serves it)."""
        for post in self.store.posts(item_id=item_id):
            if not is_issue_target(post.target):
                self.store.request_update(item_id, post.target)
        self.votes.card_changed(item_id)

    # -- from GitHub back to the card ----------------------------------------------------
    def apply(self, update: IssueUpdate) -> Applied:
        """Keep what GitHub says of an issue the bot opened; an update older than the one
        kept (webhooks arrive out of order) changes nothing."""
        post = self.store.find_post(self.target, update.url)
        if post is None:
            return Applied(None)
        applied = Applied(post.item_id)
        kept = post.detail.get("updated_at")
        at = as_utc(update.updated_at)
        if kept is not None and at < datetime.fromisoformat(kept):
            applied.changes.append("older than what is kept; ignored")
            return applied
        was_state = post.detail.get("state", "open")
        was_reason = post.detail.get("state_reason")
        was_labels = [
            str(x) for x in post.detail.get("issue_labels", post.detail.get("labels", []))
        ]
        with self.store.transaction():
            self.store.set_post_detail(
                post.item_id,
                self.target,
                {
                    "state": update.state,
                    "state_reason": update.state_reason,
                    "issue_labels": list(update.labels),
                    "updated_at": at.isoformat(),
                },
            )
            if not update.actor_is_bot and sorted(update.labels) != sorted(was_labels):
                applied.changes += self._relabelled(post, update)
            if (update.state, update.state_reason) != (was_state, was_reason):
                applied.changes += self._outcome(post, update, was_state)
        self.rewrite_cards(post.item_id)
        return applied

    def _category_and_severity(self, labels: Sequence[str]) -> tuple[str | None, str | None]:
        by_label_cat = {v.lower(): k for k, v in self.settings.category_labels.items()}
        by_label_sev = {v.lower(): k for k, v in self.settings.severity_labels.items()}
        lowered = [label.lower() for label in labels]
        category = next((by_label_cat[x] for x in lowered if x in by_label_cat), None)
        severity = next((by_label_sev[x] for x in lowered if x in by_label_sev), None)
        return category, severity

    def _relabelled(self, post: PostRecord, update: IssueUpdate) -> list[str]:
        """A maintainer's labels that say another category or severity than the card's:
        their correction (reviewer `github:<login>`)."""
        category, severity = self._category_and_severity(update.labels)
        label = self.store.get_label(post.item_id)
        triage = self.store.latest_triage(post.item_id)
        if triage is None:
            return []
        current = (label.category, label.severity) if label else (triage.category, triage.severity)
        category = category if category not in (None, current[0]) else None
        # Only a severity label the maintainer set counts: no severity label says nothing.
        severity = severity if severity not in (None, current[1]) else None
        if category is None and severity is None:
            return []
        reviewer = f"github:{update.actor}" if update.actor else "github:maintainer"
        self.service.vote(
            post.item_id,
            reviewer,
            ValidationKind.CORRECT,
            category=category,
            severity=severity,
            platform="github",
            learn=False,
            vetted=True,
        )
        self.votes.learner.kick()
        said = [f"category {category}"] * bool(category) + [f"severity {severity}"] * bool(severity)
        return [f"{reviewer} relabelled it: " + ", ".join(said)]

    def _outcome(self, post: PostRecord, update: IssueUpdate, was_state: str) -> list[str]:
        card = post.detail.get("card") or {}
        predicted = post.detail.get("prediction") or {}
        version = predicted.get("model_version")
        closed_as = (update.state_reason or "completed") if update.state == "closed" else None
        changes = []
        if closed_as == "completed" and card.get("category") and card.get("severity"):
            self.service.vote(
                post.item_id,
                OUTCOME_REVIEWER,
                ValidationKind.CORRECT,
                category=card["category"],
                severity=card["severity"],
                platform="github",
                learn=False,
                vetted=True,
            )
            self.votes.learner.kick()
            changes.append(f"closed as completed: confirms {card['category']} / {card['severity']}")
            if version:
                self._reward(post, version, predicted, card, "closed as completed")
        elif closed_as is not None:
            self._retract_outcome(post.item_id)
            reason = closed_as.replace("_", " ")
            changes.append(f"closed as {reason}")
            if version:
                self.store.put_reward(
                    Reward(
                        item_id=post.item_id,
                        model_version=version,
                        value=self.settings.not_planned_reward,
                        source=OUTCOME_SOURCE,
                        reason=f"issue {update.url} closed as {reason}",
                    )
                )
        elif was_state == "closed":
            self._retract_outcome(post.item_id)
            changes.append("reopened: the earlier outcome is withdrawn")
            if version:
                self.store.put_reward(
                    Reward(
                        item_id=post.item_id,
                        model_version=version,
                        value=0.0,
                        source=OUTCOME_SOURCE,
                        reason=f"issue {update.url} reopened: the earlier outcome is withdrawn",
                    )
                )
        return changes

    def _retract_outcome(self, item_id: str) -> None:
        votes = self.store.current_votes(item_id)
        if any(v.reviewer == OUTCOME_REVIEWER for v in votes):
            self.service.vote(
                item_id,
                OUTCOME_REVIEWER,
                ValidationKind.RETRACT,
                platform="github",
                learn=False,
                vetted=True,
            )
            self.votes.learner.kick()

    def _reward(
        self,
        post: PostRecord,
        version: str,
        predicted: dict[str, Any],
        card: dict[str, Any],
        why: str,
    ) -> None:
        """The prediction scored against the card an issue's outcome confirmed."""
        prediction = Triage(
            item_id=post.item_id,
            category=str(predicted.get("category")),
            severity=str(predicted.get("severity")),
            action="",
            confidence=FieldConfidence(category=1.0, severity=1.0),
            model_version=version,
        )
        outcome = Label(
            item_id=post.item_id,
            category=str(card["category"]),
            severity=str(card["severity"]),
            reviewers=[OUTCOME_REVIEWER],
            agreement=1.0,
        )
        reward = score(prediction, outcome, self.taxonomy)
        self.store.put_reward(
            reward.model_copy(
                update={
                    "source": OUTCOME_SOURCE,
                    "reason": f"issue {post.ref} {why}; {reward.reason}",
                }
            )
        )

    def linked_open(self) -> list[PostRecord]:
        """The posted issues whose state a poll should read (open, or closed recently
        enough that a reopen matters: every one, as GitHub's `since` filter keeps a poll
        to what changed)."""
        return [p for p in self.store.posts(target=self.target) if p.ref is not None]
