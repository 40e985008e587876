"""The Discord edge: a discord.py client that triages intake messages and records votes.

Same loop as Slack, in Discord's idiom:
- Every component's custom_id carries the item id (`triage:confirm:<item_id>`) and is
  matched by `DynamicItem` templates registered at start-up, so a card's buttons and menus
  keep working after a restart without any per-card state in memory.
- Every new item is stored (with where it must be posted) before the outbox posts it; a
  post that may have reached Discord before a crash is reconciled against the channel's
  recent history (the item id is in the embed footer) instead of being posted twice.
- Store and model calls block (SQLite, torch), so they run in a thread executor: the
  gateway heartbeat and other events are never held up by a vote that relearns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import tasks

from bot.discord import embeds
from bot.discord.settings import DiscordSettings
from core.governance import InputError
from core.models import FeedbackItem, Triage, ValidationKind
from core.service import NotAllowedError, TriageService, UnknownItemError, VoteOutcome
from core.taxonomy import Taxonomy

log = logging.getLogger("triage_bot.discord")
T = TypeVar("T")

LEASE_SECONDS = 120.0  # longer than any post attempt, 429 waits included
SWEEP_SECONDS = 30.0  # how often posts released after a failure (or a dead worker) are retried
RECONCILE_LIMIT = 500  # messages of channel history searched for an already-posted card
NOT_A_REVIEWER = "You are not on this channel's reviewer list, so your vote was not recorded."
VOTE_ERRORS = (UnknownItemError, NotAllowedError, ValueError)


def _triage_bot(interaction: discord.Interaction[Any]) -> TriageBot | None:
    client = interaction.client
    return client if isinstance(client, TriageBot) else None


class CardButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=embeds.id_template(embeds.BUTTON_ACTIONS),
):
    """Confirm, Correct or Noise on one card; rebuilt from the custom_id on every click."""

    LOOKS = {
        "confirm": ("Confirm", discord.ButtonStyle.success, "white_check_mark"),
        "correct": ("Correct", discord.ButtonStyle.secondary, "pencil2"),
        "noise": ("Noise", discord.ButtonStyle.danger, "wastebasket"),
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
        return cls(match["action"], match["item_id"])

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
                placeholder=f"Set the {field}…",
                options=options or [discord.SelectOption(label=field)],
                min_values=1,
                max_values=1,
            ),
            row=1 if field == "category" else 2,
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
        return cls(match["action"], match["item_id"], options)

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
            default=suggested[:4000],
            max_length=4000,
        )
        self.add_item(self.action)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self.bot.on_correct_submitted(interaction, self.item_id, self.action.value)


def card_view(
    item_id: str, triage: Triage, taxonomy: Taxonomy, current: tuple[str, str]
) -> discord.ui.View:
    """The components of a card: three buttons and the two menus, all keyed by item id."""
    view = discord.ui.View(timeout=None)
    for action in embeds.BUTTON_ACTIONS:
        view.add_item(CardButton(action, item_id))
    view.add_item(CardSelect("category", item_id, embeds.category_options(taxonomy, current[0])))
    view.add_item(CardSelect("severity", item_id, embeds.severity_options(taxonomy, current[1])))
    return view


class TriageBot(discord.Client):
    """The bot process's Discord client; its dependencies come in through the constructor."""

    def __init__(
        self,
        service: TriageService,
        settings: DiscordSettings,
        *,
        worker_id: str | None = None,
        **options: Any,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: intake reads what people wrote
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(intents=intents, **options)
        self.service = service
        self.store = service.store
        self.taxonomy = service.taxonomy
        self.settings = settings
        self.target = f"discord:{settings.channel}"
        self.worker_id = worker_id or f"discord-{uuid.uuid4().hex[:8]}"
        self.tree = app_commands.CommandTree(self)
        guild = discord.Object(settings.guild) if settings.guild else None
        self.tree.add_command(self._command_group(), guild=guild)
        self._drainer: asyncio.Task[None] | None = None
        self._again = False
        self._refresh_lock = asyncio.Lock()

    # -- start-up --------------------------------------------------------------------------
    async def setup_hook(self) -> None:
        """Before the gateway connects: revive every card's components, sync commands."""
        self.add_dynamic_items(CardButton, CardSelect)
        guild = discord.Object(self.settings.guild) if self.settings.guild else None
        synced = await self.tree.sync(guild=guild)
        log.info("synced %d command(s) to %s", len(synced), guild.id if guild else "all guilds")
        queued = await self.blocking(self.recover)
        if queued:
            log.info("outbox: %d stored item(s) had no post queued; queued them", queued)

    async def on_ready(self) -> None:
        log.info("connected as %s; cards go to channel %s", self.user, self.settings.channel)
        if not self._sweep.is_running():
            self._sweep.start()
        self.kick()

    async def close(self) -> None:
        self._sweep.cancel()
        await super().close()

    async def blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store or model call off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    # -- intake ----------------------------------------------------------------------------
    def accept(self, item: FeedbackItem) -> tuple[Triage, bool]:
        """Store the item (marked for the card channel), triage it, queue its card."""
        item.metadata.setdefault("post_to", [self.target])
        triage, is_new = self.service.submit(item)
        self.store.enqueue_post(item.id, self.target)
        return triage, is_new

    def accept_from_thread(self, item: FeedbackItem) -> tuple[Triage, bool]:
        """`accept` for intake that runs outside the event loop (the MongoDB watcher):
        queue the card, then wake the poster on the loop (before `on_ready`, which kicks
        it anyway, there is nothing to wake)."""
        result = self.accept(item)
        if self.is_ready():
            # A closing loop raises: the card stays queued and the next start posts it.
            with contextlib.suppress(AttributeError, RuntimeError):
                self.loop.call_soon_threadsafe(self.kick)
        return result

    def recover(self) -> int:
        """Queue items stored for this channel whose outbox entry a crash prevented."""
        queued = 0
        for item in self.store.iter_items():
            wanted = self.target in item.metadata.get("post_to", [])
            if wanted and self.store.get_post(item.id, self.target) is None:
                queued += int(self.store.enqueue_post(item.id, self.target))
        return queued

    def _intake(self, message: discord.Message) -> FeedbackItem | None:
        guild_id = message.guild.id if message.guild else None
        try:
            item = self.service.make_item(
                message.content,
                source="discord",
                external_ref=f"{message.channel.id}:{message.id}",
                received_at=message.created_at,
                metadata={
                    "discord": {
                        "guild": guild_id,
                        "channel": message.channel.id,
                        "message": message.id,
                        "user": message.author.id,
                    }
                },
            )
        except InputError as exc:
            log.info("intake message %s skipped: %s", message.id, exc)
            return None
        self.accept(item)
        return item

    async def on_message(self, message: discord.Message) -> None:
        if not is_feedback(message, self.settings.intake_channels):
            return
        if await self.blocking(self._intake, message) is not None:
            self.kick()

    # -- the outbox ------------------------------------------------------------------------
    def kick(self) -> None:
        """Post whatever is pending, in one task at a time; a kick mid-drain drains again."""
        if self._drainer is not None and not self._drainer.done():
            self._again = True
            return
        self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while True:
            self._again = False
            try:
                while await self.post_next():
                    pass
            except Exception:  # keep the bot alive; the sweep retries after the lease
                log.exception("outbox: posting failed")
                return
            if not self._again:
                return

    @tasks.loop(seconds=SWEEP_SECONDS)
    async def _sweep(self) -> None:
        """Retry posts given back after a failure and posts whose worker died; pick up a
        newly promoted model."""
        self.kick()
        try:
            await asyncio.to_thread(self.service.refresh_model)
        except Exception:  # a registry hiccup must not stop the sweep
            log.exception("could not refresh the promoted model")

    async def _card_channel(self) -> discord.abc.Messageable:
        channel = self.get_channel(self.settings.channel)
        if channel is None:
            channel = await self.fetch_channel(self.settings.channel)
        if not isinstance(channel, discord.abc.Messageable):
            raise RuntimeError(f"channel {self.settings.channel} cannot hold messages")
        return channel

    def _render(self, item_id: str) -> tuple[FeedbackItem, Triage, discord.Embed, Any] | None:
        """Everything a card shows, read from the store (blocking: run it in the executor)."""
        item = self.store.get_item(item_id)
        if item is None:
            return None
        triage = self.store.latest_triage(item_id) or self.service.submit(item)[0]
        label = self.store.get_label(item_id)
        source = item.metadata.get("discord")
        link = (
            embeds.message_link(source.get("guild"), source["channel"], source["message"])
            if isinstance(source, dict) and "channel" in source and "message" in source
            else item.page
            if item.page and item.page.startswith("http")
            else None
        )
        embed = embeds.card_embed(
            item,
            triage,
            self.taxonomy,
            votes=self.store.current_votes(item_id),
            label=label,
            similar=self.service.similar_validated(item),
            source_link=link,
        )
        current = (label.category, label.severity) if label else (triage.category, triage.severity)
        return item, triage, embed, current

    async def post_next(self) -> bool:
        """Post one pending card; False when there is nothing (more) to post now."""
        post = await self.blocking(
            self.store.claim_post, self.target, self.worker_id, LEASE_SECONDS
        )
        if post is None:
            return False
        rendered = await self.blocking(self._render, post.item_id)
        if rendered is None:
            log.error("outbox: item %s vanished; dropping its post", post.item_id)
            await self.blocking(self.store.mark_posted, post.item_id, self.target, "missing-item")
            return True
        item, triage, embed, current = rendered
        channel = await self._card_channel()
        if post.attempts > 1:
            found = await self.find_card(channel, item)
            if found is not None:
                log.info("outbox: %s was already posted as %s; not reposting", item.id, found)
                await self.blocking(self.store.mark_posted, item.id, self.target, found)
                return True
        try:
            message = await channel.send(
                content=embeds.card_text(item, triage),
                embed=embed,
                view=card_view(item.id, triage, self.taxonomy, current),
            )
        except discord.HTTPException as exc:
            log.warning("outbox: Discord refused %s: %s", item.id, exc)
            await self.blocking(self.store.release_post, item.id, self.target, self.worker_id)
            return False  # the sweep tries again later
        await self.blocking(self.store.mark_posted, item.id, self.target, str(message.id))
        return True

    async def find_card(self, channel: discord.abc.Messageable, item: FeedbackItem) -> str | None:
        """The id of a card for this item already in the channel, found by its footer.

        Newest first: a post cut short by a crash is recent (within the claim lease), and
        nothing older than the item itself (less clock skew) can be its card.
        """
        oldest = item.received_at - timedelta(minutes=5)
        async for message in channel.history(limit=RECONCILE_LIMIT):
            if message.created_at < oldest:
                return None
            mine = self.user is not None and message.author.id == self.user.id
            if mine and embeds.card_item_id(message) == item.id:
                return str(message.id)
        return None

    async def refresh_card(self, item_id: str) -> None:
        """Rewrite a posted card in place with who validated what."""
        async with self._refresh_lock:  # one edit at a time: the last edit shows the last vote
            post = await self.blocking(self.store.get_post, item_id, self.target)
            if post is None or post.status != "posted" or not post.ref or not post.ref.isdigit():
                return  # not posted yet: the card will show the votes when it is
            rendered = await self.blocking(self._render, item_id)
            if rendered is None:
                return
            item, triage, embed, current = rendered
            channel = await self._card_channel()
            if not isinstance(channel, discord.TextChannel | discord.Thread):
                return
            await channel.get_partial_message(int(post.ref)).edit(
                content=embeds.card_text(item, triage),
                embed=embed,
                view=card_view(item.id, triage, self.taxonomy, current),
            )

    # -- votes -----------------------------------------------------------------------------
    def allowed(self, user: discord.abc.User | None) -> bool:
        """The reviewer role (when set) and the TRIAGE_REVIEWERS allowlist (when set)."""
        if user is None:
            return False
        reviewers = self.service.reviewers
        if reviewers is not None and str(user.id) not in reviewers:
            return False
        role = self.settings.reviewer_role
        if role is None:
            return True
        return isinstance(user, discord.Member) and any(r.id == role for r in user.roles)

    async def record_vote(
        self,
        item_id: str,
        user_id: int,
        kind: ValidationKind,
        *,
        category: str | None = None,
        severity: str | None = None,
        action: str | None = None,
        validation_id: str | None = None,
        when: datetime | None = None,
    ) -> VoteOutcome:
        outcome = await self.blocking(
            self.service.vote,
            item_id,
            str(user_id),
            kind,
            category=category,
            severity=severity,
            action=action,
            platform="discord",
            validation_id=validation_id,
            created_at=when,
        )
        if outcome.stored:
            await self.refresh_card(item_id)
        return outcome

    async def _vote_from(
        self,
        interaction: discord.Interaction[Any],
        item_id: str,
        kind: ValidationKind,
        **fields: str | None,
    ) -> None:
        """Ack at once (Discord allows 3 s), then vote, learn and answer privately."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            outcome = await self.record_vote(
                item_id,
                interaction.user.id,
                kind,
                validation_id=f"discord:{interaction.id}",
                when=interaction.created_at,
                **fields,
            )
        except VOTE_ERRORS as exc:
            await interaction.followup.send(f"Could not record that: {exc}", ephemeral=True)
            return
        vote = outcome.validation
        await interaction.followup.send(
            embeds.vote_receipt(vote.kind, vote.category, vote.severity), ephemeral=True
        )

    async def refuse(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message(NOT_A_REVIEWER, ephemeral=True)

    async def on_card_button(
        self, interaction: discord.Interaction[Any], action: str, item_id: str
    ) -> None:
        if not self.allowed(interaction.user):
            await self.refuse(interaction)
            return
        if action == "correct":
            triage = await self.blocking(self.store.latest_triage, item_id)
            if triage is None:
                await interaction.response.send_message(f"Unknown item {item_id}.", ephemeral=True)
                return
            await interaction.response.send_modal(CorrectModal(self, item_id, triage.action))
            return
        kind = ValidationKind.CONFIRM if action == "confirm" else ValidationKind.NOISE
        await self._vote_from(interaction, item_id, kind)

    async def on_card_select(
        self, interaction: discord.Interaction[Any], field: str, item_id: str, value: str
    ) -> None:
        if not self.allowed(interaction.user):
            await self.refuse(interaction)
            return
        if field == "category" and value == self.taxonomy.noise_category:
            await self._vote_from(interaction, item_id, ValidationKind.NOISE)
        elif field == "category":
            await self._vote_from(interaction, item_id, ValidationKind.CORRECT, category=value)
        else:
            await self._vote_from(interaction, item_id, ValidationKind.CORRECT, severity=value)

    async def on_correct_submitted(
        self, interaction: discord.Interaction[Any], item_id: str, action: str
    ) -> None:
        if not self.allowed(interaction.user):
            await self.refuse(interaction)
            return
        await self._vote_from(
            interaction, item_id, ValidationKind.CORRECT, action=action.strip() or None
        )

    async def _reaction_target(self, payload: discord.RawReactionActionEvent) -> str | None:
        if payload.channel_id != self.settings.channel:
            return None
        if self.user is not None and payload.user_id == self.user.id:
            return None
        post = await self.blocking(self.store.find_post, self.target, str(payload.message_id))
        return post.item_id if post else None

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        meaning = embeds.reaction_vote(payload.emoji.name or "", self.taxonomy)
        if meaning is None:
            return
        item_id = await self._reaction_target(payload)
        if item_id is None:
            return
        if not self.allowed(payload.member):
            await self._refuse_reaction(payload)
            return
        try:
            await self.record_vote(
                item_id,
                payload.user_id,
                meaning.kind,
                category=meaning.category,
                severity=meaning.severity,
            )
        except VOTE_ERRORS as exc:
            log.info("reaction vote on %s not recorded: %s", item_id, exc)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        meaning = embeds.reaction_vote(payload.emoji.name or "", self.taxonomy)
        if meaning is None:
            return
        item_id = await self._reaction_target(payload)
        if item_id is None:
            return
        votes = await self.blocking(self.store.current_votes, item_id)
        mine = next((v for v in votes if v.reviewer == str(payload.user_id)), None)
        if not meaning.supports(mine):
            return
        try:
            await self.record_vote(item_id, payload.user_id, ValidationKind.RETRACT)
        except VOTE_ERRORS as exc:
            log.info("retraction on %s not recorded: %s", item_id, exc)

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
        async def queue(interaction: discord.Interaction[Any]) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            text = await self.blocking(self.queue_text, interaction.guild_id)
            await interaction.followup.send(text, ephemeral=True)

        @group.command(name="stats", description="Validations and accuracy over 7 and 30 days")
        async def stats(interaction: discord.Interaction[Any]) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            text = await self.blocking(self.stats_text)
            await interaction.followup.send(text, ephemeral=True)

        @group.command(name="help", description="How to use triage-bot")
        async def help_(interaction: discord.Interaction[Any]) -> None:
            await interaction.response.send_message(
                embeds.help_text(self.taxonomy, self.settings.channel), ephemeral=True
            )

        return group

    def _submit(
        self, text: str, page: str | None, form_type: str | None, user_id: int
    ) -> tuple[FeedbackItem, Triage]:
        item = self.service.make_item(
            text,
            source="discord",
            page=page,
            form_type=form_type if form_type in self.taxonomy.form_types else None,
            metadata={"submitted_by": str(user_id)},
        )
        triage, _ = self.accept(item)
        return item, triage

    async def on_submit(
        self,
        interaction: discord.Interaction[Any],
        text: str,
        page: str | None,
        form_type: str | None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            item, triage = await self.blocking(
                self._submit, text, page, form_type, interaction.user.id
            )
        except InputError as exc:
            await interaction.followup.send(f"Not triaged: {exc}", ephemeral=True)
            return
        self.kick()
        await interaction.followup.send(
            f"Triaged `{item.id}` as **{triage.category} / {triage.severity}** "
            f"({triage.confidence.category:.0%}); its card goes to <#{self.settings.channel}>.",
            ephemeral=True,
        )

    def queue_text(self, guild_id: int | None) -> str:
        channel = self.get_channel(self.settings.channel)
        guild_id = getattr(getattr(channel, "guild", None), "id", None) or guild_id
        rows = []
        for item, triage, reason in self.service.review_queue(limit=10):
            post = self.store.get_post(item.id, self.target)
            link = (
                embeds.message_link(guild_id, self.settings.channel, post.ref)
                if post and post.status == "posted" and post.ref
                else None
            )
            rows.append((item, triage, reason, link))
        return embeds.queue_text(rows)

    def stats_text(self) -> str:
        now = datetime.now(UTC)
        windows = [(d, self.service.stats(since=now - timedelta(days=d))) for d in (7, 30)]
        return embeds.stats_text(self.service.stats(), windows)


def is_feedback(message: discord.Message, intake: frozenset[int]) -> bool:
    """A new human message in an intake channel (not bots, webhooks, system messages)."""
    return (
        message.channel.id in intake
        and not message.author.bot
        and message.webhook_id is None
        and message.type in (discord.MessageType.default, discord.MessageType.reply)
        and bool(message.content.strip())
    )


def serve(service: TriageService, settings: DiscordSettings, watch: str | None = None) -> None:
    """Run until interrupted (discord.py reconnects and resumes on its own). With `watch`
    (a mongodb://host/db.collection URL), new documents there become cards too."""
    bot = TriageBot(service, settings)
    watcher = None
    if watch:
        from bot.intake import MongoWatcher

        watcher = MongoWatcher(service, watch, bot.accept_from_thread)
        watcher.start()
    try:
        bot.run(settings.token, log_handler=None)
    finally:
        if watcher is not None:
            watcher.stop()
