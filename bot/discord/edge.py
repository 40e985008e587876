"""The Discord edge: a discord.py client that translates Discord events into core calls,
and `DiscordPoster`, the Discord side of the outbox.

Intake, the outbox and votes are core's (`core.intake`, `core.outbox`, `core.votes`);
here, in Discord's idiom:
- Every component's custom_id carries the item id (`triage:confirm:<item_id>`) and is
  matched by `DynamicItem` templates registered at start-up, so a card's buttons and menus
  keep working after a restart without any per-card state in memory.
- Interactions are deferred first (Discord's ack), then the vote or the submission is
  stored; the card is posted or rewritten by the outbox, learning happens in the learner.
- Store and model calls block (SQLite, torch), so they run in a thread executor: the
  gateway heartbeat and other events are never held up. The outbox runs there too, and
  reaches Discord through `DiscordPoster`, which hands each call back to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import tasks

from bot.charts import digest_png
from bot.chat_text import clip, printable
from bot.discord import embeds
from bot.discord.settings import DiscordSettings
from bot.github.edge import GitHubEdge
from bot.github.settings import GitHubSettings
from core.digest import Digest, DigestSchedule, build_digest, claim_due, parse_period
from core.escalation import Escalator, escalation_target
from core.governance import InputError
from core.intake import Accepted, Intake, Submission
from core.issues import GITHUB_OFF, ISSUE_WAIT_SECONDS, offers_issue
from core.models import CardView, ValidationKind
from core.outbox import Outbox
from core.owners import Router
from core.ports import PostFailed, PostRefused
from core.replies import DisputeNotices, dispute_target
from core.service import NotAllowedError, TriageService, UnknownItemError
from core.taxonomy import Taxonomy
from core.themes import build_themes, merge_by_keys, rename_by_key
from core.votes import NOT_A_REVIEWER, REVIEWERS_ONLY, Ballot, Learner, ReviewerRule, VoteDesk

log = logging.getLogger("triage_bot.discord")
T = TypeVar("T")

SWEEP_SECONDS = 10.0  # how often posts waiting out a backoff (or a dead worker's) are retried
RECONCILE_LIMIT = 500  # messages of channel history searched for an already-posted card
CALL_TIMEOUT = 120.0  # one Discord call from the outbox thread, 429 waits included
VOTE_ERRORS = (UnknownItemError, NotAllowedError, ValueError)


def _triage_bot(interaction: discord.Interaction[Any]) -> TriageBot | None:
    client = interaction.client
    return client if isinstance(client, TriageBot) else None


async def _item_of(interaction: discord.Interaction[Any], key: str) -> str:
    """The item a component's key names: the key itself, or for the digest of an id too
    long for a custom_id, the item of the card the component is on."""
    bot = _triage_bot(interaction)
    if not embeds.is_digest(key) or bot is None or interaction.message is None:
        return key
    post = await bot.blocking(bot.store.find_post, bot.target, str(interaction.message.id))
    return embeds.item_id_for(key, post.item_id if post is not None else None)


class CardButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=embeds.id_template(embeds.BUTTON_ACTIONS),
):
    """Confirm, Correct or Noise on one card; rebuilt from the custom_id on every click."""

    LOOKS = {
        "confirm": ("Confirm", discord.ButtonStyle.success, "white_check_mark"),
        "correct": ("Correct", discord.ButtonStyle.secondary, "pencil2"),
        "noise": ("Noise", discord.ButtonStyle.danger, "wastebasket"),
        "issue": ("Create issue", discord.ButtonStyle.secondary, "link"),
        "split": ("Not a duplicate", discord.ButtonStyle.secondary, "x"),
    }

    def __init__(self, action: str, item_id: str) -> None:
        label, style, emoji = self.LOOKS[action]
        super().__init__(
            discord.ui.Button(
                label=label,
                style=style,
                emoji=embeds.emoji(emoji),
                custom_id=embeds.custom_id(action, item_id),
            ),
            row=0,
        )
        self.action = action
        self.item_id = item_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> CardButton:
        return cls(match["action"], await _item_of(interaction, match["item_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = _triage_bot(interaction)
        if bot is not None:
            await bot.on_card_button(interaction, self.action, self.item_id)


class CardSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=embeds.id_template(embeds.SELECT_ACTIONS),
):
    """The category or severity menu on one card; picking a value is a correction."""

    def __init__(
        self, field: str, item_id: str, options: list[discord.SelectOption] | None = None
    ) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=embeds.custom_id(field, item_id),
                placeholder="Duplicate of…" if field == "duplicate" else f"Set the {field}…",
                options=options or [discord.SelectOption(label=field)],
                min_values=1,
                max_values=1,
            ),
            row={"category": 1, "severity": 2, "duplicate": 4}.get(field, 3),
        )
        self.field = field
        self.item_id = item_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> CardSelect:
        options = item.options if isinstance(item, discord.ui.Select) else None
        return cls(match["action"], await _item_of(interaction, match["item_id"]), options)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = _triage_bot(interaction)
        if bot is not None and self.item.values:
            await bot.on_card_select(interaction, self.field, self.item_id, self.item.values[0])


class CorrectModal(discord.ui.Modal):
    """The Correct button's form: the action to take, preset to the suggested one."""

    def __init__(self, bot: TriageBot, item_id: str, suggested: str) -> None:
        super().__init__(
            title="Correct the suggested action",
            custom_id=embeds.custom_id(embeds.MODAL_ACTION, item_id),
            timeout=900,
        )
        self.bot = bot
        self.item_id = item_id
        self.action: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Action",
            custom_id="action",
            style=discord.TextStyle.paragraph,
            default=clip(printable(suggested), 4000),
            max_length=4000,
        )
        self.add_item(self.action)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self.bot.on_correct_submitted(interaction, self.item_id, self.action.value)


def components(card: CardView, taxonomy: Taxonomy) -> discord.ui.View:
    """The components of a card: three buttons (four with GitHub: Create issue, or a link
    to the issue) and the two menus, all keyed by item id."""
    item_id, (category, severity) = card.item.id, card.current
    view = discord.ui.View(timeout=None)
    if card.duplicate_of is not None:  # a grouped item: votes go to its group's card
        view.add_item(CardButton("split", item_id))
        return view
    if card.thread_ref is not None:  # split off: its own card has the components
        return view
    for action in ("confirm", "correct", "noise"):
        view.add_item(CardButton(action, item_id))
    url = embeds.issue_url(card)
    if offers_issue(card):
        view.add_item(CardButton("issue", item_id))
    elif url is not None:
        view.add_item(
            discord.ui.Button(
                label="Open issue",
                style=discord.ButtonStyle.link,
                url=url,
                emoji="\U0001f517",
                row=0,
            )
        )
    view.add_item(CardSelect("category", item_id, embeds.category_options(taxonomy, category)))
    view.add_item(CardSelect("severity", item_id, embeds.severity_options(taxonomy, severity)))
    if card.owners:
        current = card.owner.owner.name if card.owner is not None else None
        view.add_item(CardSelect("owner", item_id, embeds.owner_options(card.owners, current)))
    candidates = embeds.duplicate_options(card.candidates)
    if candidates:
        view.add_item(CardSelect("duplicate", item_id, candidates))
    return view


def _refusal(exc: discord.HTTPException) -> PostRefused | PostFailed:
    """Discord's answer in the outbox's terms: a 400 (invalid payload) or a 404 (the card
    was deleted) cannot succeed later; anything else (403, 5xx) may."""
    if exc.status in (400, 404):
        return PostRefused(f"{exc.status} {exc.text or exc}"[:300])
    retry_after = getattr(exc, "retry_after", None)
    return PostFailed(f"{exc.status} {exc.text or exc}"[:300], retry_after)


class DiscordPoster:
    """Posts, rewrites and finds cards in the card channel (the outbox's `CardPoster`).

    The outbox calls it from a worker thread; each call runs on the bot's event loop."""

    def __init__(self, bot: TriageBot) -> None:
        self.bot = bot
        self.target = f"discord:{bot.settings.channel}"

    def _on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.bot.loop).result(CALL_TIMEOUT)

    def post(self, card: CardView, *, minimal: bool = False) -> str:
        return str(self._on_loop(self.bot.send_card(card, minimal=minimal)))

    def update(self, ref: str, card: CardView, *, minimal: bool = False) -> None:
        self._on_loop(self.bot.edit_card(ref, card, minimal=minimal))

    def find(self, card: CardView) -> str | None:
        found: str | None = self._on_loop(self.bot.find_card(card))
        return found


def owner_ping(card: CardView) -> discord.AllowedMentions:
    """The one mention a new card may ping: its owner's role or user (else nobody)."""
    owner = card.owner.owner if card.owner is not None else None
    if owner is None or not owner.discord:
        return discord.AllowedMentions.none()
    kind, _, snowflake = owner.discord.partition(":")
    who = [discord.Object(int(snowflake))]
    return discord.AllowedMentions(
        everyone=False,
        roles=who if kind == "role" else False,
        users=who if kind == "user" else False,
        replied_user=False,
    )


Say = Callable[[CardView], tuple[str, discord.AllowedMentions]]


class DiscordReplyPoster:
    """Replies once to a card (an escalation, a dispute): the poster of an outbox whose
    target is the card's plus a suffix. `say` gives the reply's text, which starts with its
    own `mark`, and the one mention it may ping."""

    def __init__(self, bot: TriageBot, target: str, mark: str, say: Say) -> None:
        self.bot = bot
        self.target = target
        self.mark = mark
        self.say = say

    def _on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.bot.loop).result(CALL_TIMEOUT)

    def post(self, card: CardView, *, minimal: bool = False) -> str:
        text, allowed = self.say(card)
        return str(self._on_loop(self.bot.send_reply(card, text, allowed)))

    def update(self, ref: str, card: CardView, *, minimal: bool = False) -> None:
        """A reply is said once; it is never rewritten."""

    def find(self, card: CardView) -> str | None:
        found: str | None = self._on_loop(self.bot.find_reply(card, self.mark))
        return found


async def send_digest(channel: discord.abc.Messageable, made: Digest, png: bytes | None) -> int:
    """A digest in a channel, its chart attached (an empty period: one line, no chart).
    The running bot and `triage-bot digest --post` both send through here."""
    files = [discord.File(io.BytesIO(png), filename="triage-digest.png")] if png else []
    message = await channel.send(
        content=embeds.digest_text(made),
        files=files,
        allowed_mentions=discord.AllowedMentions.none(),
    )
    return message.id


async def post_digest_once(settings: DiscordSettings, made: Digest) -> int:
    """Log in over REST only (no gateway), send the digest to the card channel, log out:
    what `triage-bot digest --post` does on Discord."""
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(settings.token)
        channel = await client.fetch_channel(settings.channel)
        if not isinstance(channel, discord.abc.Messageable):
            raise PostRefused(f"channel {settings.channel} cannot hold messages")
        png = None if made.empty else await asyncio.to_thread(digest_png, made)
        return await send_digest(channel, made, png)
    finally:
        await client.close()


def allow_only(ping: tuple[str, int] | None) -> discord.AllowedMentions:
    """The one role or user a message may ping (nobody without one)."""
    if ping is None:
        return discord.AllowedMentions.none()
    who = [discord.Object(ping[1])]
    return discord.AllowedMentions(
        everyone=False,
        roles=who if ping[0] == "role" else False,
        users=who if ping[0] == "user" else False,
        replied_user=False,
    )


class TriageBot(discord.Client):
    """The bot process's Discord client; its dependencies come in through the constructor."""

    def __init__(
        self,
        service: TriageService,
        settings: DiscordSettings,
        *,
        worker_id: str | None = None,
        github: GitHubSettings | None = None,
        **options: Any,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: intake reads what people wrote
        # Every send inherits it (cards, edits, replies, follow-ups, DMs): nothing pings.
        options["allowed_mentions"] = discord.AllowedMentions.none()
        super().__init__(intents=intents, **options)
        self.service = service
        self.store = service.store
        self.taxonomy = service.taxonomy
        self.settings = settings
        self.poster = DiscordPoster(self)
        self.target = self.poster.target
        self.router = Router(service)
        self.outbox = Outbox(
            service,
            self.poster,
            worker_id=worker_id or f"discord-{uuid.uuid4().hex[:8]}",
            lease_seconds=settings.claim_lease,
            issue_repo=github.repo if github else None,
            router=self.router,
            groups=True,
        )
        self.outbox.on_wake(self.wake_from_any_thread)
        self.intake = Intake(self.store, service.runtime.triage.max_text_bytes)
        self.intake.on_accept(self.wake_from_any_thread)
        role = settings.reviewer_role
        rule = ReviewerRule(
            ids=service.reviewers, roles=frozenset({str(role)}) if role is not None else None
        )
        self.learner = Learner(service)
        self.votes = VoteDesk(service, rule, self.learner, self.outbox.request_update)
        self.tree = app_commands.CommandTree(self)
        guild = discord.Object(settings.guild) if settings.guild else None
        self.tree.add_command(self._command_group(), guild=guild)
        self._drainer: asyncio.Task[None] | None = None
        self._again = False
        self.github = (
            GitHubEdge(service, self.votes, github, card_url=self.card_url, router=self.router)
            if github
            else None
        )
        self.escalator = Escalator(service, self.target)
        self.digests = DigestSchedule(service.runtime.digest)
        self.escalations = Outbox(
            service,
            DiscordReplyPoster(
                self, escalation_target(self.target), embeds.ESCALATION_MARK, self.escalation
            ),
            worker_id=f"{self.outbox.worker_id}-escalation",
            lease_seconds=settings.claim_lease,
            router=self.router,
        )
        self.dispute_replies = Outbox(
            service,
            DiscordReplyPoster(
                self,
                dispute_target(self.target),
                embeds.DISPUTE_MARK,
                lambda card: (embeds.dispute_reply(card), discord.AllowedMentions.none()),
            ),
            worker_id=f"{self.outbox.worker_id}-dispute",
            lease_seconds=settings.claim_lease,
        )
        # Dispute replies are sent by the sweep (within SWEEP_SECONDS), off the vote's path.
        self.disputes = DisputeNotices(self.store, self.target)
        self.votes.on_stored.append(self.disputes.note)

    def escalate(self) -> int:
        """Queue the replies of cards nobody took, and send what is due (blocking: the
        sweep runs it in a thread)."""
        self.escalator.queue_due()
        return self.escalations.drain()

    def card_url(self, item_id: str) -> str | None:
        """A link to the item's card (what an issue links back to)."""
        post = self.store.get_post(item_id, self.target)
        if post is None or not post.ref:
            return None
        return embeds.message_link(self.settings.guild, self.settings.channel, post.ref)

    # -- start-up --------------------------------------------------------------------------
    async def setup_hook(self) -> None:
        """Before the gateway connects: revive every card's components, sync commands."""
        self.add_dynamic_items(CardButton, CardSelect)
        guild = discord.Object(self.settings.guild) if self.settings.guild else None
        synced = await self.tree.sync(guild=guild)
        log.info("synced %d command(s) to %s", len(synced), guild.id if guild else "all guilds")
        queued = await self.blocking(self.outbox.recover)
        if queued:
            log.info("outbox: %d stored item(s) had no post queued; queued them", queued)
        if self.github is not None:
            self.github.start()

    async def on_ready(self) -> None:
        log.info("connected as %s; cards go to channel %s", self.user, self.settings.channel)
        if not self._sweep.is_running():
            self._sweep.start()
        self.kick()

    async def close(self) -> None:
        self._sweep.cancel()
        if self._drainer is not None and not self._drainer.done():
            # Let the round in flight finish: it holds claims and runs on the store.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._drainer), CALL_TIMEOUT)
        self.learner.stop()
        if self.github is not None:
            await asyncio.to_thread(self.github.stop)
        await super().close()

    async def blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store or model call off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    # -- intake ----------------------------------------------------------------------------
    def accept(self, submission: Submission) -> Accepted:
        """Store the item with its card queued for the card channel (blocking: run it in
        the executor, or from another thread, as the MongoDB watcher does)."""
        return self.intake.accept(submission, [self.target])

    def wake_from_any_thread(self) -> None:
        """Wake the outbox on the loop (before `on_ready`, which kicks it, nothing to do)."""
        if self.is_ready():
            # A closing loop raises: the card stays queued and the next start posts it.
            with contextlib.suppress(AttributeError, RuntimeError):
                self.loop.call_soon_threadsafe(self.kick)

    async def on_message(self, message: discord.Message) -> None:
        if not is_feedback(message, self.settings.intake_channels):
            return
        guild_id = message.guild.id if message.guild else None
        submission = Submission(
            text=message.content,
            source="discord",
            ref=f"{message.channel.id}:{message.id}",
            submitter=f"discord:{message.author.id}",
            received_at=message.created_at,
            origin={
                "discord": {
                    "guild": guild_id,
                    "channel": message.channel.id,
                    "message": message.id,
                    "user": message.author.id,
                }
            },
        )
        try:
            await self.blocking(self.accept, submission)
        except InputError as exc:
            log.info("intake message %s skipped: %s", message.id, exc)
            return
        self.kick()

    # -- the outbox ------------------------------------------------------------------------
    def kick(self) -> None:
        """Drain the outbox in one task at a time; a kick mid-drain drains again."""
        if self._drainer is not None and not self._drainer.done():
            self._again = True
            return
        self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while True:
            self._again = False
            try:
                await self.blocking(self.outbox.drain)
            except Exception:  # keep the bot alive; the sweep retries
                log.exception("outbox: draining failed")
                return
            if not self._again:
                return

    @tasks.loop(seconds=SWEEP_SECONDS)
    async def _sweep(self) -> None:
        """Retry posts whose backoff ran out and posts whose worker died; pick up a newly
        promoted model and what any process forgot."""
        self.kick()
        try:
            await asyncio.to_thread(self.service.refresh_model)
        except Exception:  # a registry hiccup must not stop the sweep
            log.exception("could not refresh the promoted model")
        try:  # the retention run when due, and what any process forgot
            await asyncio.to_thread(self.service.upkeep)
        except Exception:
            log.exception("could not prune or apply what was forgotten")
        try:
            await asyncio.to_thread(self.escalate)
            await asyncio.to_thread(self.dispute_replies.drain)
        except Exception:
            log.exception("could not escalate or reply to a dispute")
        try:
            period = await self.blocking(claim_due, self.store, self.digests, self.target)
            if period is not None:
                await self.post_digest(period)
        except Exception:
            log.exception("could not post the scheduled digest")

    async def _card_channel(self) -> discord.abc.Messageable:
        channel = self.get_channel(self.settings.channel)
        if channel is None:
            channel = await self.fetch_channel(self.settings.channel)
        if not isinstance(channel, discord.abc.Messageable):
            raise PostFailed(f"channel {self.settings.channel} cannot hold messages")
        return channel

    async def _thread(self, card_ref: str, *, create: bool = True) -> discord.Thread | None:
        """The thread of the card `card_ref` (its id is the card's), started if it has none
        (None without `create`)."""
        if not card_ref.isdigit():
            raise PostRefused(f"not a Discord message id: {card_ref!r}")
        found = self.get_channel(int(card_ref))
        if isinstance(found, discord.Thread):
            return found
        try:
            fetched = await self.fetch_channel(int(card_ref))
            if isinstance(fetched, discord.Thread):
                return fetched
        except discord.NotFound:
            pass
        except discord.HTTPException as exc:
            raise _refusal(exc) from exc
        if not create:
            return None
        channel = await self._card_channel()
        if not isinstance(channel, discord.TextChannel):
            raise PostRefused(f"channel {self.settings.channel} cannot hold threads")
        try:
            return await channel.get_partial_message(int(card_ref)).create_thread(
                name="Reports of this", auto_archive_duration=10080
            )
        except discord.HTTPException as exc:
            raise _refusal(exc) from exc

    async def _channel_of(self, card: CardView) -> discord.abc.Messageable:
        """Where a card's message lives: the card channel, or its group card's thread."""
        if card.thread_ref:
            thread = await self._thread(card.thread_ref)
            assert thread is not None
            return thread
        return await self._card_channel()

    async def send_card(self, card: CardView, *, minimal: bool = False) -> int:
        """A card in the channel, or a grouped duplicate's message in its group card's
        thread (which pings nobody)."""
        content, embed = embeds.card_payload(card, self.taxonomy, minimal=minimal)
        channel = await self._channel_of(card)
        try:
            message = await channel.send(
                content=content,
                embed=embed,
                view=components(card, self.taxonomy),
                allowed_mentions=discord.AllowedMentions.none()
                if card.thread_ref
                else owner_ping(card),
            )
        except discord.HTTPException as exc:
            raise _refusal(exc) from exc
        return message.id

    async def edit_card(self, ref: str, card: CardView, *, minimal: bool = False) -> None:
        if not ref.isdigit():
            raise PostRefused(f"not a Discord message id: {ref!r}")
        content, embed = embeds.card_payload(card, self.taxonomy, minimal=minimal)
        channel = await self._channel_of(card)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            raise PostRefused(f"channel {self.settings.channel} has no editable messages")
        try:
            await channel.get_partial_message(int(ref)).edit(
                content=content, embed=embed, view=components(card, self.taxonomy)
            )
        except discord.HTTPException as exc:
            raise _refusal(exc) from exc

    async def _card_message(self, item_id: str) -> discord.PartialMessage:
        post = await self.blocking(self.store.get_post, item_id, self.target)
        if post is None or not post.ref or not post.ref.isdigit():
            raise PostFailed("the card is not posted yet")
        channel = await self._card_channel()
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            raise PostRefused(f"channel {self.settings.channel} cannot hold replies")
        return channel.get_partial_message(int(post.ref))

    async def post_digest(self, since: str = "7d") -> int:
        """Post the period's digest to the card channel, its chart attached (an empty
        period is one line, without a chart). ValueError for a period that makes no sense."""
        period = parse_period(since)
        made = await self.blocking(
            build_digest, self.store, self.taxonomy, period, None, self.service.engine.embed
        )
        channel = await self._card_channel()
        png = None if made.empty else await self.blocking(digest_png, made)
        return await send_digest(channel, made, png)

    def escalation(self, card: CardView) -> tuple[str, discord.AllowedMentions]:
        """Pings the item's owner when it has one; else the on-call named for escalations."""
        owner = card.owner.owner if card.owner is not None else None
        ping = self.settings.escalate_to
        if owner is not None and owner.discord:
            kind, _, snowflake = owner.discord.partition(":")
            ping = (kind, int(snowflake))
        return embeds.escalation_text(card, self.escalator.minutes, ping), allow_only(ping)

    async def send_reply(self, card: CardView, text: str, allowed: discord.AllowedMentions) -> int:
        """A reply in the card's thread (started if it has none): the channel keeps one
        message per card, the detail is a click away."""
        message = await self._card_message(card.item.id)
        thread = await self._thread(str(message.id))
        assert thread is not None
        try:
            sent = await thread.send(text, allowed_mentions=allowed)
        except discord.HTTPException as exc:
            raise _refusal(exc) from exc
        return sent.id

    async def find_reply(self, card: CardView, mark: str) -> str | None:
        """The bot's reply of this kind (its text starts with `mark`) in this card's
        thread, if an earlier attempt sent it."""
        message = await self._card_message(card.item.id)
        thread = await self._thread(str(message.id), create=False)
        if thread is None:
            return None  # no thread yet: nothing was sent
        try:
            async for reply in thread.history(limit=RECONCILE_LIMIT):
                mine = self.user is not None and reply.author.id == self.user.id
                if mine and reply.content.startswith(mark):
                    return str(reply.id)
        except discord.HTTPException as exc:
            raise PostFailed(f"history: {exc.status}") from exc
        return None

    async def find_card(self, card: CardView) -> str | None:
        """The id of a card for this item already in the channel, found by its footer.

        Newest first: a post cut short by a crash is recent (within the claim lease), and
        nothing older than the item itself (less clock skew) can be its card.
        """
        oldest = card.item.received_at - timedelta(minutes=5)
        channel = await self._channel_of(card)
        try:
            async for message in channel.history(limit=RECONCILE_LIMIT):
                if message.created_at < oldest:
                    return None
                mine = self.user is not None and message.author.id == self.user.id
                if mine and embeds.card_item_id(message) == card.item.id:
                    return str(message.id)
        except discord.HTTPException as exc:
            raise PostFailed(f"history: {exc.status}") from exc
        return None

    # -- votes -----------------------------------------------------------------------------
    @staticmethod
    def roles_of(user: discord.abc.User | None) -> frozenset[str]:
        if isinstance(user, discord.Member):
            return frozenset(str(r.id) for r in user.roles)
        return frozenset()

    def may_vote(self, user: discord.abc.User | None) -> bool:
        return user is not None and self.votes.may_vote(str(user.id), self.roles_of(user))

    async def _vote_from(
        self,
        interaction: discord.Interaction[Any],
        item_id: str,
        kind: ValidationKind,
        **fields: str | None,
    ) -> None:
        """Ack at once (Discord allows 3 s), store the vote, answer privately. A
        non-reviewer is refused at once (the rule needs no I/O)."""
        if not self.may_vote(interaction.user):
            await self.refuse(interaction)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        ballot = Ballot(
            item_id=item_id,
            reviewer=str(interaction.user.id),
            kind=kind,
            platform="discord",
            validation_id=f"discord:{interaction.id}",
            created_at=interaction.created_at,
            roles=self.roles_of(interaction.user),
            **fields,
        )
        try:
            outcome = await self.blocking(self.votes.cast, ballot)
        except NotAllowedError:
            await interaction.followup.send(NOT_A_REVIEWER, ephemeral=True)
            return
        except VOTE_ERRORS as exc:
            await interaction.followup.send(f"Could not record that: {exc}", ephemeral=True)
            return
        vote = outcome.validation
        await interaction.followup.send(
            embeds.vote_receipt(vote.kind, vote.category, vote.severity), ephemeral=True
        )

    async def refuse(
        self, interaction: discord.Interaction[Any], text: str = NOT_A_REVIEWER
    ) -> None:
        """A non-reviewer's answer, private and at once (the rule needs no I/O)."""
        await interaction.response.send_message(text, ephemeral=True)

    async def on_card_button(
        self, interaction: discord.Interaction[Any], action: str, item_id: str
    ) -> None:
        if action == "correct":
            if not self.may_vote(interaction.user):
                await self.refuse(interaction)
                return
            triage = await self.blocking(self.store.latest_triage, item_id)
            if triage is None:
                await interaction.response.send_message(f"Unknown item {item_id}.", ephemeral=True)
                return
            await interaction.response.send_modal(CorrectModal(self, item_id, triage.action))
            return
        if action == "issue":
            await self.on_issue(interaction, item_id)
            return
        if action == "split":
            await self.on_regroup(interaction, item_id, None)
            return
        kind = ValidationKind.CONFIRM if action == "confirm" else ValidationKind.NOISE
        await self._vote_from(interaction, item_id, kind)

    async def on_assign(
        self, interaction: discord.Interaction[Any], item_id: str, owner: str
    ) -> None:
        """The owner menu: stored, the card rewritten, the owner model relearned."""
        if not self.may_vote(interaction.user):
            await self.refuse(interaction)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await self.blocking(
                self.router.assign, item_id, owner, str(interaction.user.id), "discord"
            )
        except (UnknownItemError, ValueError) as exc:
            await interaction.followup.send(f"Could not assign that: {exc}", ephemeral=True)
            return
        await self.blocking(self.outbox.request_update, item_id)
        await interaction.followup.send(f"Assigned to {embeds.escape(owner)}.", ephemeral=True)

    async def on_issue(self, interaction: discord.Interaction[Any], item_id: str) -> None:
        """Create issue with the default title and labels: queued before the answer, the
        clicker then told privately how GitHub took it."""
        github = self.github
        if github is None:
            await self.refuse(interaction, GITHUB_OFF)
            return
        if not self.may_vote(interaction.user):
            await self.refuse(interaction)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            _, queued = await self.blocking(
                github.desk.request,
                item_id,
                str(interaction.user.id),
                "discord",
                roles=self.roles_of(interaction.user),
            )
        except NotAllowedError:
            await interaction.followup.send(NOT_A_REVIEWER, ephemeral=True)
            return
        except VOTE_ERRORS as exc:
            await interaction.followup.send(f"Could not open an issue: {exc}", ephemeral=True)
            return
        link = await self.blocking(github.desk.wait, item_id, ISSUE_WAIT_SECONDS)
        if link is not None:
            text = embeds.issue_reply(link, created=queued)
            await interaction.followup.send(text, ephemeral=True)

    async def on_theme_change(
        self,
        interaction: discord.Interaction[Any],
        keys: list[str],
        name: str | None,
        since: str,
        *,
        rename: bool,
    ) -> None:
        """A reviewer names themes (`theme-rename`) or makes two one (`theme-merge`)."""
        if not self.may_vote(interaction.user):
            await self.refuse(interaction, REVIEWERS_ONLY)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        by, embed = f"discord:{interaction.user.id}", self.service.engine.embed
        try:
            period = parse_period(since)
            if rename:
                assert name is not None
                theme, kept = await self.blocking(
                    rename_by_key, self.store, embed, period, keys[0], name, by
                )
                text = f"Theme `{theme.key}` is now “{embeds.escape(kept.name)}”."
            else:
                merged = await self.blocking(
                    merge_by_keys, self.store, embed, period, keys, by, name
                )
                text = f"Merged into one theme: “{embeds.escape(merged)}”."
        except (KeyError, ValueError) as exc:
            text = f"Not changed: {embeds.escape(str(exc).strip(chr(39) + chr(34)))}"
        await interaction.followup.send(text, ephemeral=True)

    def _in_card_thread(self, channel_id: int) -> bool:
        """A thread started from a card (a group's reports are in it)."""
        channel = self.get_channel(channel_id)
        return isinstance(channel, discord.Thread) and channel.parent_id == self.settings.channel

    async def on_regroup(
        self, interaction: discord.Interaction[Any], item_id: str, into: str | None
    ) -> None:
        """ "Duplicate of..." (`into`: the picked card's item) or "Not a duplicate" (None):
        a stored merge or split vote, then the cards that changed are rewritten."""
        desk = self.service.duplicates
        if not self.may_vote(interaction.user):
            await self.refuse(interaction)
            return
        if desk is None:
            await interaction.response.send_message("Duplicates are turned off.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        user = str(interaction.user.id)
        try:
            if into is None:
                changed = await self.blocking(desk.split, item_id, user, "discord")
            else:
                changed = await self.blocking(desk.merge, item_id, into, user, "discord")
        except (UnknownItemError, ValueError) as exc:
            await interaction.followup.send(f"Could not regroup that: {exc}", ephemeral=True)
            return
        for changed_id in dict.fromkeys(changed):
            await self.blocking(self.outbox.request_update, changed_id)
        done = "Split off: it gets a card of its own." if into is None else "Grouped."
        await interaction.followup.send(done, ephemeral=True)

    async def on_card_select(
        self, interaction: discord.Interaction[Any], field: str, item_id: str, value: str
    ) -> None:
        if field == "duplicate":
            await self.on_regroup(interaction, item_id, value)
        elif field == "owner":
            await self.on_assign(interaction, item_id, value)
        elif field == "category" and value == self.taxonomy.noise_category:
            await self._vote_from(interaction, item_id, ValidationKind.NOISE)
        elif field == "category":
            await self._vote_from(interaction, item_id, ValidationKind.CORRECT, category=value)
        else:
            await self._vote_from(interaction, item_id, ValidationKind.CORRECT, severity=value)

    async def on_correct_submitted(
        self, interaction: discord.Interaction[Any], item_id: str, action: str
    ) -> None:
        await self._vote_from(
            interaction, item_id, ValidationKind.CORRECT, action=action.strip() or None
        )

    async def _reaction(self, payload: discord.RawReactionActionEvent, *, removed: bool) -> None:
        """A reaction on a card is a vote; removing the one a vote rests on retracts it."""
        if self.user is not None and payload.user_id == self.user.id:
            return
        if payload.channel_id != self.settings.channel and not self._in_card_thread(
            payload.channel_id
        ):
            return
        post = await self.blocking(self.store.find_post, self.target, str(payload.message_id))
        if post is None:
            return
        member = payload.member or await self._member(payload)
        try:
            await self.blocking(
                self.votes.react,
                post.item_id,
                str(payload.user_id),
                embeds.reaction_name(payload.emoji.name or ""),
                removed=removed,
                platform="discord",
                roles=self.roles_of(member),
            )
        except NotAllowedError:
            await self._refuse_reaction(payload)
        except VOTE_ERRORS as exc:
            log.info("reaction on %s not recorded: %s", post.item_id, exc)

    async def _member(self, payload: discord.RawReactionActionEvent) -> discord.Member | None:
        """A reaction removal carries no member: look them up (cache, else one API call)
        for their roles, since the reviewer rule applies to retractions too."""
        guild = self.get_guild(payload.guild_id) if payload.guild_id else None
        if guild is None:
            return None
        member = guild.get_member(payload.user_id)
        if member is None:
            with contextlib.suppress(discord.HTTPException):
                member = await guild.fetch_member(payload.user_id)
        return member

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, removed=False)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, removed=True)

    async def _refuse_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """Reactions have no ephemeral reply: take the reaction off and say why in a DM."""
        channel = self.get_channel(payload.channel_id)
        if isinstance(channel, discord.TextChannel | discord.Thread):
            try:
                await channel.get_partial_message(payload.message_id).remove_reaction(
                    payload.emoji, discord.Object(payload.user_id)
                )
            except discord.HTTPException as exc:  # needs Manage Messages
                log.info("could not remove a non-reviewer's reaction: %s", exc)
        try:
            user = payload.member or await self.fetch_user(payload.user_id)
            await user.send(NOT_A_REVIEWER)
        except discord.HTTPException as exc:  # DMs closed
            log.info("could not tell %s they are not a reviewer: %s", payload.user_id, exc)

    # -- /triage ---------------------------------------------------------------------------
    def _command_group(self) -> app_commands.Group:
        group = app_commands.Group(name="triage", description="Triage feedback; review the queue")

        @group.command(name="submit", description="Triage a piece of feedback now")
        @app_commands.describe(
            text="The feedback", page="Page or URL it is about", form_type="Website form type"
        )
        async def submit(
            interaction: discord.Interaction[Any],
            text: app_commands.Range[str, 1, 4000],
            page: str | None = None,
            form_type: str | None = None,
        ) -> None:
            await self.on_submit(interaction, text, page, form_type)

        @submit.autocomplete("form_type")
        async def form_types(
            interaction: discord.Interaction[Any], current: str
        ) -> list[app_commands.Choice[str]]:
            names = sorted(self.taxonomy.form_types)
            return [app_commands.Choice(name=n, value=n) for n in names if current in n][:25]

        @group.command(name="queue", description="What needs a human next")
        @app_commands.describe(mine="Only the items of the owners you are (by id or role)")
        async def queue(interaction: discord.Interaction[Any], mine: bool = False) -> None:
            if not self.may_vote(interaction.user):
                await self.refuse(interaction, REVIEWERS_ONLY)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            owners = (
                self.router.owned_by(str(interaction.user.id), self.roles_of(interaction.user))
                if mine
                else None
            )
            text = await self.blocking(self.queue_text, interaction.guild_id, owners)
            await interaction.followup.send(text, ephemeral=True)

        @group.command(name="digest", description="Post the period's digest, with its chart")
        @app_commands.describe(since="The period: 1d, 7d, 12h, 2w (against the one before)")
        async def digest(interaction: discord.Interaction[Any], since: str = "7d") -> None:
            if not self.may_vote(interaction.user):
                await self.refuse(interaction, REVIEWERS_ONLY)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                await self.post_digest(since)
            except ValueError as exc:
                await interaction.followup.send(f"Not posted: {exc}", ephemeral=True)
                return
            await interaction.followup.send(
                f"Posted the digest of the last {since} to <#{self.settings.channel}>.",
                ephemeral=True,
            )

        @group.command(name="themes", description="What the period's feedback is about")
        @app_commands.describe(since="The period: 1d, 7d, 12h, 2w (against the one before)")
        async def themes(interaction: discord.Interaction[Any], since: str = "7d") -> None:
            if not self.may_vote(interaction.user):
                await self.refuse(interaction, REVIEWERS_ONLY)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                period = parse_period(since)
            except ValueError as exc:
                await interaction.followup.send(f"No themes: {exc}", ephemeral=True)
                return
            made = await self.blocking(build_themes, self.store, self.service.engine.embed, period)
            await interaction.followup.send(embeds.themes_text(made), ephemeral=True)

        @group.command(name="theme-rename", description="Name a theme of the period")
        @app_commands.describe(
            key="The theme's key (or name), as /triage themes lists it",
            since="The period /triage themes listed it for",
        )
        async def theme_rename(
            interaction: discord.Interaction[Any],
            key: str,
            name: app_commands.Range[str, 1, 80],
            since: str = "7d",
        ) -> None:
            await self.on_theme_change(interaction, [key], name, since, rename=True)

        @group.command(name="theme-merge", description="Two themes of the period are one")
        @app_commands.describe(first="A theme's key", second="Another theme's key")
        async def theme_merge(
            interaction: discord.Interaction[Any],
            first: str,
            second: str,
            name: app_commands.Range[str, 1, 80] | None = None,
            since: str = "7d",
        ) -> None:
            await self.on_theme_change(interaction, [first, second], name, since, rename=False)

        @group.command(name="stats", description="Validations and accuracy over 7 and 30 days")
        async def stats(interaction: discord.Interaction[Any]) -> None:
            if not self.may_vote(interaction.user):
                await self.refuse(interaction, REVIEWERS_ONLY)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            text = await self.blocking(self.stats_text)
            await interaction.followup.send(text, ephemeral=True)

        @group.command(name="help", description="How to use triage-bot")
        async def help_(interaction: discord.Interaction[Any]) -> None:
            await interaction.response.send_message(
                embeds.help_text(self.taxonomy, self.settings.channel), ephemeral=True
            )

        return group

    async def on_submit(
        self,
        interaction: discord.Interaction[Any],
        text: str,
        page: str | None,
        form_type: str | None,
    ) -> None:
        """Ack (defer), store, then triage and answer; the outbox posts the card."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        user = interaction.user.id
        submission = Submission(
            text=text,
            source="discord-command",
            submitter=f"discord:{user}",
            page=page,
            form_type=form_type if form_type in self.taxonomy.form_types else None,
            origin={"submitted_by": str(user)},
        )
        try:
            accepted = await self.blocking(self.accept, submission)
        except InputError as exc:
            await interaction.followup.send(f"Not triaged: {exc}", ephemeral=True)
            return
        self.kick()
        (triage,) = await self.blocking(self.service.triage_items, [accepted.item])
        await interaction.followup.send(
            f"Triaged `{accepted.item_id}` as **{triage.category} / {triage.severity}** "
            f"({triage.confidence.category:.0%}); its card goes to <#{self.settings.channel}>.",
            ephemeral=True,
        )

    def queue_text(self, guild_id: int | None, owners: set[str] | None = None) -> str:
        channel = self.get_channel(self.settings.channel)
        guild_id = getattr(getattr(channel, "guild", None), "id", None) or guild_id
        rows = []
        queue = self.service.review_queue(limit=10 if owners is None else 200)
        if owners is not None:
            queue = self.router.only_owned(queue, owners)
        for item, triage, reason in queue:
            post = self.store.get_post(item.id, self.target)
            link = (
                embeds.message_link(guild_id, self.settings.channel, post.ref)
                if post and post.ref and post.ref.isdigit()
                else None
            )
            rows.append((item, triage, reason, link))
        return embeds.queue_text(rows)

    def stats_text(self) -> str:
        now = datetime.now(UTC)
        windows = [(d, self.service.stats(since=now - timedelta(days=d))) for d in (7, 30)]
        return embeds.stats_text(self.service.stats(), windows, self.target)


def is_feedback(message: discord.Message, intake: frozenset[int]) -> bool:
    """A new human message in an intake channel (not bots, webhooks, system messages)."""
    return (
        message.channel.id in intake
        and not message.author.bot
        and message.webhook_id is None
        and message.type in (discord.MessageType.default, discord.MessageType.reply)
        and bool(message.content.strip())
    )


def serve(
    service: TriageService,
    settings: DiscordSettings,
    watch: str | None = None,
    github: GitHubSettings | None = None,
) -> None:
    """Run until interrupted (discord.py reconnects and resumes on its own). With `watch`
    (a mongodb://host/db.collection URL), new documents there become cards too; with
    `github`, cards offer "Create issue" there (state read back by polling)."""
    bot = TriageBot(service, settings, github=github)
    watcher = None
    if watch:
        from bot.intake import MongoWatcher

        watcher = MongoWatcher(service, watch, bot.accept)
        watcher.start()
    try:
        bot.run(settings.token, log_handler=None)
    finally:
        if watcher is not None:
            watcher.stop()
