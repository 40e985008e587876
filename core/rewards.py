"""From votes to labels and rewards: the contract between the bot and every trainer.

- A vote (confirm / correct / noise / reject / retract) is an event; never deleted.
  A reject says "wrong" without a correction: no label, reward -1 (core.service).
- An item's label is the consensus of its reviewers' *current* votes (each reviewer's
  latest, retracted ones dropped), per field, weighted by reviewer weight (their
  track record, `TriageService.reviewer_weights`), ties broken by the most recent vote.
- What a trainer consumes is `triage-bot export labels`: per validated item its id,
  redacted text, source, form type, page, final category / severity / action, reviewers,
  agreement, the reward of the prediction ({value, source, reason}) and its model version.
- An item's GitHub issue adds to both (core.issues): closed as completed is a vote of
  OUTCOME_REVIEWER, weighed below a reviewer (`[github] outcome_weight`, default 0.5);
  a maintainer's relabel on GitHub is that maintainer's correction; each outcome leaves a
  reward of source OUTCOME_SOURCE (completed: scored against the card it confirmed; not
  planned or duplicate: `not_planned_reward`; reopened: 0, withdrawn).
- A prediction's reward scores it against that label, field by field, in [-1, 1]:
  category right +1 / wrong -1 (weight 0.6); severity by ordinal distance, exact +1 down
  to -1 at the far end (weight 0.4). A plain confirm is therefore +1.
  The record has Agent Lightning's RewardData shape (value, source, reason) and names
  the model version that made the prediction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from core.models import Label, Reward, Triage, Validation, ValidationKind
from core.taxonomy import Taxonomy

CATEGORY_WEIGHT = 0.6
SEVERITY_WEIGHT = 0.4
REWARD_SOURCE = "human-validation"
# What happens to an item's GitHub issue counts too (core.issues): closed as completed is a
# vote of this reviewer, weighed at `[github] outcome_weight`; every outcome also leaves a
# reward of this source beside the votes' one.
OUTCOME_REVIEWER = "github:outcome"
OUTCOME_SOURCE = "github-outcome"


def _winner(values: list[tuple[str, float, int]]) -> tuple[str, float]:
    """(value, weight, recency) -> the value with most weight, latest vote breaking ties."""
    totals: dict[str, float] = defaultdict(float)
    latest: dict[str, int] = {}
    for value, weight, order in values:
        totals[value] += weight
        latest[value] = max(latest.get(value, -1), order)
    best = max(totals, key=lambda v: (round(totals[v], 9), latest[v]))
    return best, totals[best] / sum(totals.values())


def consensus(
    votes: Sequence[Validation], weights: Mapping[str, float] | None = None
) -> Label | None:
    """The label of one item from its current votes, or None when nobody has a vote."""
    live = [v for v in votes if v.kind != ValidationKind.RETRACT and v.category and v.severity]
    if not live:
        return None
    live.sort(key=lambda v: v.created_at)
    weight = {v.reviewer: (weights or {}).get(v.reviewer, 1.0) for v in live}
    category, cat_share = _winner(
        [(v.category or "", weight[v.reviewer], i) for i, v in enumerate(live)]
    )
    severity, sev_share = _winner(
        [(v.severity or "", weight[v.reviewer], i) for i, v in enumerate(live)]
    )
    actions = [v.action for v in live if v.action and v.category == category]
    agreement = min(cat_share, sev_share)
    return Label(
        item_id=live[0].item_id,
        category=category,
        severity=severity,
        action=actions[-1] if actions else None,
        reviewers=sorted(weight),
        agreement=round(agreement, 4),
        disagreement=agreement < 1.0,
        updated_at=live[-1].created_at,
    )


def score(triage: Triage, label: Label, taxonomy: Taxonomy) -> Reward:
    """The reward of one prediction against the consensus label."""
    cat = 1.0 if triage.category == label.category else -1.0
    order = taxonomy.severity_names
    if triage.severity in order and label.severity in order:
        distance = abs(order.index(triage.severity) - order.index(label.severity))
        sev = 1.0 - 2.0 * distance / (len(order) - 1)
    else:
        sev = -1.0
    value = round(CATEGORY_WEIGHT * cat + SEVERITY_WEIGHT * sev, 4)
    parts = [
        f"category {triage.category} {'=' if cat > 0 else '!='} {label.category}",
        f"severity {triage.severity} vs {label.severity} ({sev:+.2f})",
        f"{len(label.reviewers)} reviewer(s), agreement {label.agreement:.2f}",
    ]
    return Reward(
        item_id=triage.item_id,
        model_version=triage.model_version,
        value=max(-1.0, min(1.0, value)),
        source=REWARD_SOURCE,
        reason="; ".join(parts),
    )
