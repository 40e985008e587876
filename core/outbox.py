"""The outbox: every card is posted, and every card rewrite made, from here.

An item is stored with its outbox entry first (`core.intake`); a worker per card channel
then claims due posts in micro-batches, triages the batch's new items together (one encoder
batch, off every request path), and hands each card to the platform's `CardPoster`:
- a post that fails (`PostFailed`: a 429, an outage) goes back with its own backoff
  (`next_attempt_at`, doubling per attempt, Retry-After honoured) and never holds up the
  posts behind it; a 429 also pauses this worker for its Retry-After;
- a post the platform refuses for good (`PostRefused`) gets one try as a minimal card,
  then is dead-lettered (`status="dead"`, counted by `stats`);
- a post whose earlier attempt may have reached the platform before a crash is looked up
  in the channel (`find`) first, so it is never posted twice;
- a vote marks the card stale (`request_update`), and the same queue rewrites it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from core.issues import is_issue_target, issue_link
from core.models import CardView, FeedbackItem, PostRecord, Triage
from core.owners import Router
from core.ports import CardPoster, PostFailed, PostRefused
from core.runtime import OutboxSettings
from core.service import TriageService
from core.store import STORE_UNAVAILABLE

log = logging.getLogger("triage_bot.outbox")

MODEL_REFRESH_SECONDS = 30.0  # how soon a model promoted elsewhere is served
MISSING_ITEM = "missing-item"  # the ref of a post whose item vanished from the store
_WAIT = object()  # `_thread_for`: not now


class Outbox:
    """One channel's outbox worker; `run_once` is one step, `serve` loops in a thread."""

    def __init__(
        self,
        service: TriageService,
        poster: CardPoster,
        *,
        worker_id: str,
        lease_seconds: float,
        settings: OutboxSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        issue_repo: str | None = None,
        on_result: Callable[[str], object] | None = None,
        router: Router | None = None,
        groups: bool = False,
    ) -> None:
        self.service = service
        self.store = service.store
        self.poster = poster
        self.target = poster.target
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.settings = settings or service.runtime.outbox
        self.clock = clock
        self.issue_repo = issue_repo  # cards offer "Create issue" in this GitHub repository
        self.router = router if router is not None and router.enabled else None
        # A card channel's outbox groups duplicates (`core.duplicates`): a new item like an
        # open card is posted as a reply in that card's thread, not as a card of its own.
        self.duplicates = service.duplicates if groups else None
        if self.duplicates is not None:
            self.duplicates.card_targets.add(self.target)
        # Told each item whose new post went out, was dead-lettered or will be retried (the
        # GitHub worker rewrites the item's chat cards to show it).
        self.on_result = on_result
        self.paused_until = 0.0  # a 429's Retry-After: nothing is posted before this
        self.wake_event = threading.Event()  # what `serve` waits on between rounds
        self._wakers: list[Callable[[], None]] = []
        # More upkeep of the worker's own (an escalation check), run with the service's.
        self.upkeep_tasks: list[Callable[[], object]] = []

    # -- what a card shows -------------------------------------------------------------
    def card_view(self, item: FeedbackItem | str) -> CardView | None:
        """The card of one item as it stands in the store (triaged now if it never was)."""
        found = self.store.get_item(item) if isinstance(item, str) else item
        if found is None:
            return None
        (triage,) = self.service.triage_items([found])
        post = self.store.get_post(found.id, self.target)
        return self._view(found, triage, post.detail.get("thread") if post else None)

    def _view(self, item: FeedbackItem, triage: Triage, thread_ref: str | None = None) -> CardView:
        """The card as it stands; `thread_ref`: the thread its message is in (a reply)."""
        view = CardView(
            item=item,
            triage=triage,
            votes=self.store.current_votes(item.id),
            label=self.store.get_label(item.id),
            similar=self.service.similar_validated(item),
            issues=[
                issue_link(post)
                for post in self.store.posts(item_id=item.id)
                if is_issue_target(post.target)
            ],
            issue_repo=self.issue_repo,
            owner=self.router.choose(item, triage.category) if self.router else None,
            owners=sorted(self.router.owners) if self.router else [],
            thread_ref=thread_ref,
        )
        # A grouped item shows as one even when grouping was turned off since.
        link = self.store.get_duplicate(item.id)
        if link is not None:
            view.duplicate_of = self.store.get_item(link.canonical_id)
            view.duplicate_score = link.similarity
        desk = self.duplicates
        if desk is not None:
            view.grouping = True
            if link is None:
                links = self.store.duplicates_of(item.id)
                members = [self.store.get_item(m.item_id) for m in links]
                view.group = sorted(
                    (m for m in members if m is not None), key=lambda m: m.received_at
                )
                view.candidates = desk.candidates(item)
        return view

    # -- queueing ------------------------------------------------------------------------
    def wake(self) -> None:
        """New work: from any thread (an event loop's worker registers with `on_wake`)."""
        self.wake_event.set()
        for wake in self._wakers:
            wake()

    def on_wake(self, wake: Callable[[], None]) -> None:
        self._wakers.append(wake)

    def request_update(self, item_id: str) -> bool:
        """Queue a rewrite of the item's card (after a vote); False if it has no card yet
        (it shows the votes when it is posted)."""
        queued = self.store.request_update(item_id, self.target)
        if queued:
            self.wake()
        return queued

    def recover(self) -> int:
        """Queue items stored for this channel whose outbox entry a crash prevented."""
        queued = 0
        for item in self.store.iter_items():
            wanted = self.target in item.metadata.get("post_to", [])
            if wanted and self.store.get_post(item.id, self.target) is None:
                queued += int(self.store.enqueue_post(item.id, self.target))
        if queued:
            self.wake()
        return queued

    # -- posting -------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim up to one batch of due posts, triage their new items together, deliver
        each; returns how many were handled (0: nothing due, or paused by a 429)."""
        if self.clock() < self.paused_until:
            return 0
        posts: list[PostRecord] = []
        with self.store.transaction():  # a batch's claims: one commit
            while len(posts) < self.settings.batch:
                post = self.store.claim_post(self.target, self.worker_id, self.lease_seconds)
                if post is None:
                    break
                posts.append(post)
        if not posts:
            return 0
        items: dict[str, FeedbackItem] = {}
        for post in posts:
            item = self.store.get_item(post.item_id)
            if item is None:
                log.error("outbox: item %s vanished; dropping its post", post.item_id)
                self.store.mark_posted(post.item_id, self.target, MISSING_ITEM, self.worker_id)
            else:
                items[item.id] = item
        triages = {t.item_id: t for t in self.service.triage_items(list(items.values()))}
        for post in posts:
            item = items.get(post.item_id)
            if item is None:
                continue
            if self.clock() < self.paused_until:  # a 429 earlier in this batch
                # Never sent: no attempt counted (a second attempt searches the platform
                # for the post first, and backs off longer).
                self._retry(
                    post,
                    self.paused_until - self.clock(),
                    "waiting out a rate limit",
                    attempted=False,
                )
                continue
            if post.ref is None and self.duplicates is not None:
                thread = self._thread_for(post, item)
                if thread is _WAIT:
                    continue
                assert thread is None or isinstance(thread, str)
                if (post.detail.get("thread") or None) != thread:
                    # Stored before the send: a crash after it leaves a reply whose thread
                    # (where Discord edits it) is known.
                    self.store.set_post_detail(item.id, self.target, {"thread": thread})
                self._deliver(post, self._view(item, triages[item.id], thread))
                continue
            self._deliver(post, self._view(item, triages[item.id], post.detail.get("thread")))
        return len(posts)

    def _thread_for(self, post: PostRecord, item: FeedbackItem) -> str | None | object:
        """Where a new item's message goes: the thread of its group's card (a duplicate),
        None (a card of its own), or _WAIT (its group's card is not posted yet: the post
        is given back for a moment, not counted as an attempt)."""
        assert self.duplicates is not None
        link = self.duplicates.check(item, self._has_card)
        if link is None:
            return None
        parent = self.store.get_post(link.canonical_id, self.target)
        if parent is None:
            return None  # grouped elsewhere, no card of its group here: one of its own
        if parent.status == "dead" or parent.ref == MISSING_ITEM:
            self.duplicates.unlink(item.id)  # its group's card was refused: it stands alone
            return None
        if parent.ref is None:
            self._retry(post, 1.0, "waiting for its group's card", attempted=False)
            return _WAIT
        # Its group's card may itself be a reply (grouped later): reply in that thread.
        return str(parent.detail.get("thread") or parent.ref)

    def _has_card(self, item_id: str) -> bool:
        """A card of the item is posted here, or on its way (a group's first report)."""
        post = self.store.get_post(item_id, self.target)
        return post is not None and post.status != "dead" and not post.detail.get("thread")

    def drain(self) -> int:
        """Post and rewrite until nothing is due (or a 429 pauses this worker)."""
        total = 0
        while handled := self.run_once():
            total += handled
        return total

    def _deliver(self, post: PostRecord, view: CardView) -> None:
        item_id = post.item_id
        try:
            if post.ref is not None:
                splitting = post.detail.get("split_from") == post.ref
                left = bool(post.detail.get("thread")) and view.duplicate_of is None
                if self.duplicates is not None and (splitting or left):
                    self._split_off(post, view)
                else:
                    self._rewrite(post, replace(view, edit=True))
                return
            found = None
            if post.attempts > 1:  # an earlier attempt may have reached the platform
                found = self.poster.find(view)
                if found is not None:
                    log.info("outbox: %s was already posted as %s; not reposting", item_id, found)
            try:
                ref = found if found is not None else self.poster.post(view)
            except PostRefused as refused:
                log.warning("outbox: %s refused (%s); posting a minimal card", item_id, refused)
                try:
                    ref = self.poster.post(view, minimal=True)
                except PostRefused as again:
                    log.error("outbox: %s refused twice (%s); dead-lettered", item_id, again)
                    self.store.dead_post(item_id, self.target, self.worker_id, str(again)[:500])
                    self._tell(item_id)
                    return
        except STORE_UNAVAILABLE:
            raise
        except PostFailed as exc:
            self._failed(post, exc)
            self._tell(item_id)
            return
        except Exception as exc:  # an unexpected client error: retried like a failure
            log.exception("outbox: posting %s failed", item_id)
            self._failed(post, PostFailed(f"{type(exc).__name__}: {exc}"))
            self._tell(item_id)
            return
        if self.store.mark_posted(item_id, self.target, ref, self.worker_id):
            if view.thread_ref is not None and view.duplicate_of is not None:
                self.store.set_post_detail(item_id, self.target, {"thread": view.thread_ref})
                self.request_update(view.duplicate_of.id)  # its card counts one more report
            self._tell(item_id)
            return
        if self.store.get_item(item_id) is None:
            log.warning(
                "outbox: %s was forgotten while its card was posted; delete card %s in %s",
                item_id,
                ref,
                self.target,
            )
            return
        # Our lease ran out mid-post and another worker holds the post now: it searches
        # the channel before posting, so it finds this card unless it searched first.
        log.warning(
            "outbox: lost the claim on %s while posting (lease %.0f s too short?)",
            item_id,
            self.lease_seconds,
        )

    def _tell(self, item_id: str) -> None:
        if self.on_result is not None:
            try:
                self.on_result(item_id)
            except STORE_UNAVAILABLE:
                raise
            except Exception:  # the post's own outcome is stored; only the news is lost
                log.exception("outbox: could not report the outcome of %s", item_id)

    def _rewrite(self, post: PostRecord, view: CardView) -> None:
        assert post.ref is not None
        try:
            self.poster.update(post.ref, view)
        except PostRefused as refused:
            log.warning("outbox: rewrite of %s refused (%s); minimal card", post.item_id, refused)
            try:
                self.poster.update(post.ref, view, minimal=True)
            except PostRefused as again:  # the old card stays; nothing more to try
                log.error("outbox: card of %s left as it was: %s", post.item_id, again)
        self.store.mark_posted(post.item_id, self.target, post.ref, self.worker_id)

    def _split_off(self, post: PostRecord, view: CardView) -> None:
        """A reply whose item left its group ("Not a duplicate"): the item gets a card of
        its own, and the old reply says where it went.

        The split is recorded before the new card is sent (`split_from`: the old reply), so
        a retry after a crash looks for the card it may have sent before sending one."""
        assert post.ref is not None
        old_ref = post.ref
        old_thread = str(post.detail.get("thread") or post.detail.get("split_thread") or "")
        retry = post.detail.get("split_from") == old_ref
        if not retry:
            self.store.set_post_detail(
                post.item_id,
                self.target,
                {"thread": None, "split_from": old_ref, "split_thread": old_thread},
            )
        own = replace(view, thread_ref=None)
        ref = self.poster.find(own) if retry else None
        if ref is None:
            try:
                ref = self.poster.post(own)
            except PostRefused:
                try:
                    ref = self.poster.post(own, minimal=True)
                except PostRefused as again:  # it stays a reply, in no group
                    log.error("outbox: %s could not get a card of its own: %s", post.item_id, again)
                    self.store.set_post_detail(
                        post.item_id, self.target, {"thread": old_thread, "split_from": None}
                    )
                    self.store.mark_posted(post.item_id, self.target, old_ref, self.worker_id)
                    return
        if not self.store.mark_posted(post.item_id, self.target, ref, self.worker_id):
            log.warning("outbox: lost the claim on %s while splitting it off", post.item_id)
            return
        if old_thread:
            try:
                # In its old thread and in no group: the renderers say it was split off.
                self.poster.update(old_ref, replace(view, thread_ref=old_thread, edit=True))
            except (PostFailed, PostRefused) as exc:  # the new card is out; this is a nicety
                log.warning("outbox: could not mark the old reply of %s: %s", post.item_id, exc)

    def _failed(self, post: PostRecord, exc: PostFailed) -> None:
        if exc.retry_after:
            self.paused_until = max(self.paused_until, self.clock() + exc.retry_after)
        # A rate limit's answer (it says how long to wait) means the platform did nothing:
        # not an attempt, so neither a search for the post next time nor a longer backoff.
        limited = bool(exc.retry_after)
        if post.ref is not None:  # a rewrite: a short, flat wait (its attempts count votes)
            backoff = min(self.settings.retry_max_seconds, 5 * self.settings.retry_base_seconds)
        elif limited:
            backoff = 0.0
        else:
            exponent = min(max(post.attempts - 1, 0), 20)
            backoff = min(
                self.settings.retry_max_seconds, self.settings.retry_base_seconds * 2**exponent
            )
        delay = max(backoff, exc.retry_after or 0.0)
        log.warning("outbox: %s not delivered (%s); retry in %.1f s", post.item_id, exc, delay)
        self._retry(post, delay, str(exc), attempted=not limited)

    def _retry(self, post: PostRecord, delay: float, error: str, *, attempted: bool = True) -> None:
        self.store.release_post(
            post.item_id,
            self.target,
            self.worker_id,
            delay_seconds=delay,
            error=error[:500],
            attempted=attempted,
        )

    # -- the worker thread ---------------------------------------------------------------
    def serve(self, stop: threading.Event) -> None:
        """Post until `stop` is set (a platform without an event loop runs this in a
        thread); waits for `wake` or a second between rounds, and picks up a model
        promoted elsewhere every MODEL_REFRESH_SECONDS, as well as what any process
        forgot (and, at start and daily, applies the retention setting)."""
        next_refresh = self.clock() + MODEL_REFRESH_SECONDS
        next_upkeep = self.clock()  # at start: a retention run, the audit events
        while not stop.is_set():
            if self.clock() >= next_upkeep:
                next_upkeep = self.clock() + MODEL_REFRESH_SECONDS
                try:
                    self.service.upkeep()
                    for task in self.upkeep_tasks:
                        task()
                except Exception:
                    log.exception("could not prune or apply what was forgotten")
            if self.clock() >= next_refresh:
                next_refresh = self.clock() + MODEL_REFRESH_SECONDS
                try:
                    if self.service.refresh_model():
                        log.info("now serving %s", self.service.engine.model_version)
                except Exception:
                    log.exception("could not refresh the promoted model")
            try:
                worked = self.run_once() > 0
            except STORE_UNAVAILABLE as exc:  # an outage: wait it out, no traceback per try
                log.warning("outbox: store unavailable (%s); retrying", type(exc).__name__)
                worked = False
                stop.wait(2.0)
            except Exception:  # keep the worker alive whatever one round does
                log.exception("outbox: a round failed")
                worked = False
                stop.wait(2.0)
            if not worked:
                pause = self.paused_until - self.clock()
                self.wake_event.wait(timeout=min(max(pause, 0.0), 5.0) if pause > 0 else 1.0)
                self.wake_event.clear()


def start_thread(outbox: Outbox, name: str) -> tuple[threading.Thread, threading.Event]:
    """Run `outbox.serve` in a daemon thread; set the returned event (and wake) to stop."""
    stop = threading.Event()
    thread = threading.Thread(target=outbox.serve, args=(stop,), name=name, daemon=True)
    thread.start()
    return thread, stop
