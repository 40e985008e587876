"""The Discord bot end to end: the real TriageBot (discord.py's parsers, cache, command tree,
views and DynamicItems) against simcord's in-memory Discord, with the real engine and a SQLite
store. simcord settles the bot's work (executor calls included) after every user action, so
the assertions below need no sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import discord
import pytest
import pytest_asyncio
import simcord
from simcord.actors import MemberActor
from simcord.builders import ChannelHandle, GuildHandle

from bot.app import default_encoder
from bot.discord import embeds
from bot.discord.edge import TriageBot
from bot.discord.settings import DiscordSettings
from bot.github.settings import GitHubSettings
from core.escalation import Escalator
from core.intake import Intake, Submission, to_item
from core.models import ValidationKind, utcnow
from core.ports import Encoder
from core.runtime import (
    DuplicateSettings,
    EscalationSettings,
    OwnerSpec,
    RouteSpec,
    RuntimeSettings,
)
from core.service import TriageService
from core.store.sqlite import SQLiteStore
from core.taxonomy import load_taxonomy
from core.triage import TriageEngine
from core.votes import NOT_A_REVIEWER, REVIEWERS_ONLY
from tests.chat_limits import (
    content_problems,
    discord_markup_problems,
    discord_texts,
    embed_problems,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.github import FakeGitHub
from tests.reports import report

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    """Loaded (and warmed) outside any simulated Discord: it takes seconds, once."""
    enc = default_encoder()
    enc.encode(["warm up"])
    return enc


@dataclass
class World:
    env: simcord.Env
    guild: GuildHandle
    cards: ChannelHandle
    intake: ChannelHandle
    ann: MemberActor  # reviewer
    bob: MemberActor  # reviewer
    mal: MemberActor  # not a reviewer
    settings: DiscordSettings
    db: Path
    encoder: Encoder
    store: SQLiteStore
    bot: TriageBot
    github: GitHubSettings | None = None
    runtime: RuntimeSettings | None = None

    @property
    def target(self) -> str:
        return f"discord:{self.cards.id}"

    def new_bot(self) -> TriageBot:
        """A fresh process: a new store handle on the same file, a new engine and client."""
        self.store = SQLiteStore(self.db)
        taxonomy = load_taxonomy()
        engine = TriageEngine(taxonomy, self.encoder, runtime=self.runtime)
        service = TriageService(self.store, engine, taxonomy)
        service.warm_start()
        self.bot = TriageBot(service, self.settings, github=self.github)
        return self.bot

    async def restart(self) -> TriageBot:
        old = self.store
        await self.env.restart_bot(self.new_bot())
        old.close()
        return self.bot

    def card_messages(self) -> list[discord.Message]:
        return [m for m in self.cards.history() if m.embeds]

    def card(self, item_id: str) -> discord.Message:
        post = self.store.get_post(item_id, self.target)
        assert post is not None and post.status == "posted" and post.ref, post
        return next(m for m in self.cards.history() if m.id == int(post.ref))

    def field(self, item_id: str, name: str) -> str:
        embed = self.card(item_id).embeds[0]
        return next(f.value or "" for f in embed.fields if f.name == name)

    async def intake_item(self, text: str) -> str:
        before = {i.id for i in self.store.iter_items()}
        await self.ann.send(self.intake, text)
        (item_id,) = {i.id for i in self.store.iter_items()} - before
        return item_id


def reply_text(result: simcord.InteractionResult) -> str:
    parts = [result.response.content] if result.response else []
    return "\n".join(parts + [f.content for f in result.followups])


@pytest_asyncio.fixture
async def world(tmp_path: Path, encoder: Encoder) -> AsyncIterator[World]:
    async with make_world(tmp_path, encoder) as made:
        yield made


@contextlib.asynccontextmanager
async def make_world(
    tmp_path: Path,
    encoder: Encoder,
    github: GitHubSettings | None = None,
    runtime: Callable[[GuildHandle, MemberActor], RuntimeSettings] | None = None,
) -> AsyncIterator[World]:
    # The world is built before our bot attaches, so its settings can name real ids.
    env = simcord.Env(discord.Client(intents=discord.Intents.default()), settle_timeout=60)
    await env.start()
    guild = env.create_guild("Acme")
    reviewers = guild.create_role("Reviewers")
    cards = guild.create_text_channel("triage")
    intake = guild.create_text_channel("feedback")
    ann = guild.add_member(env.create_user("ann"), roles=[reviewers])
    bob = guild.add_member(env.create_user("bob"), roles=[reviewers])
    mal = guild.add_member(env.create_user("mal"))
    settings = DiscordSettings(
        token="test-token",
        channel=cards.id,
        intake_channels=frozenset({intake.id}),
        reviewer_role=reviewers.id,
        guild=guild.id,
    )
    db = tmp_path / "discord.db"
    world = World(
        env,
        guild,
        cards,
        intake,
        ann,
        bob,
        mal,
        settings,
        db,
        encoder,
        None,  # type: ignore[arg-type]  # the store and the bot: new_bot makes them
        None,  # type: ignore[arg-type]
        github,
        runtime(guild, bob) if runtime else None,
    )
    await env.restart_bot(world.new_bot())
    try:
        yield world
    finally:
        await env.shutdown()
        if world.bot.github is not None:  # simcord detaches the bot without closing it
            world.bot.github.stop()
        world.store.close()
        env.raise_errors()


async def test_intake_message_is_stored_then_posted_once_as_an_embed(world: World) -> None:
    item_id = await world.intake_item(
        "The checkout page crashes with a 500 error, mail me at jo@example.com"
    )
    item = world.store.get_item(item_id)
    assert item is not None and "jo@example.com" not in item.redacted_text
    (card,) = world.card_messages()
    embed = card.embeds[0]
    triage = world.store.latest_triage(item_id)
    assert triage is not None
    taxonomy = world.bot.taxonomy
    assert embed.colour == embeds.severity_colour(taxonomy, triage.severity)
    assert embed.footer.text and embed.footer.text.startswith(f"item {item_id} ")
    assert embeds.card_item_id(card) == item_id
    fields = {f.name: f.value or "" for f in embed.fields}
    assert fields["Category"] == triage.category and fields["Severity"] == triage.severity
    assert triage.action[:50] in fields["Suggested action"]
    assert "%" in fields["Confidence"] and fields["Votes"] == "No votes yet."
    source = item.metadata["discord"]
    link = embeds.message_link(world.guild.id, world.intake.id, source["message"])
    assert link in fields["Source"]
    assert "jo@example.com" not in (embed.description or "") and "[email]" in (
        embed.description or ""
    )
    # The components carry the item id, for every button and both menus.
    ids = {c.custom_id for row in card.components for c in row.children}  # type: ignore[attr-defined]
    assert ids == {f"triage:{a}:{item_id}" for a in ("confirm", "correct", "noise")} | {
        f"triage:category:{item_id}",
        f"triage:severity:{item_id}",
    }
    # Not feedback: the bot's own channel, other channels, and nothing more is posted.
    other = world.guild.create_text_channel("random")
    await world.ann.send(other, "Search is broken on the docs site")
    await world.ann.send(world.cards, "Chatting in the triage channel")
    assert world.store.count_items() == 1
    assert len(world.card_messages()) == 1


async def test_buttons_vote_edit_the_card_and_refuse_outsiders(world: World) -> None:
    item_id = await world.intake_item("The login button does nothing on Safari")
    triage = world.store.latest_triage(item_id)
    assert triage is not None

    result = await world.ann.click(world.card(item_id), custom_id=f"triage:confirm:{item_id}")
    assert result.acknowledged and result.ephemeral
    assert "you confirmed" in reply_text(result)
    label = world.store.get_label(item_id)
    assert label is not None and (label.category, label.severity) == (
        triage.category,
        triage.severity,
    )
    assert f"<@{world.ann.id}> confirmed" in world.field(item_id, "Votes")

    refused = await world.mal.click(world.card(item_id), custom_id=f"triage:noise:{item_id}")
    assert refused.ephemeral and "not on" in reply_text(refused)
    assert [v.reviewer for v in world.store.current_votes(item_id)] == [str(world.ann.id)]

    await world.bob.click(world.card(item_id), custom_id=f"triage:noise:{item_id}")
    votes = world.field(item_id, "Votes")
    assert f"<@{world.bob.id}> marked noise" in votes and "2 vote(s)" in votes
    # Still one card, edited in place.
    assert len(world.card_messages()) == 1


async def test_menus_and_the_correct_modal_record_corrections(world: World) -> None:
    item_id = await world.intake_item("How do I configure authentication? The docs say nothing")
    card = world.card(item_id)

    result = await world.ann.select(
        card, ["framework-issue"], custom_id=f"triage:category:{item_id}"
    )
    assert "framework-issue" in reply_text(result)
    result = await world.ann.select(
        world.card(item_id), ["critical"], custom_id=f"triage:severity:{item_id}"
    )
    (vote,) = world.store.current_votes(item_id)
    assert (vote.kind, vote.category, vote.severity) == (
        ValidationKind.CORRECT,
        "framework-issue",
        "critical",
    )

    refused = await world.mal.click(world.card(item_id), custom_id=f"triage:correct:{item_id}")
    assert refused.modal is None and refused.ephemeral
    assert reply_text(refused) == NOT_A_REVIEWER
    shown = await world.ann.click(world.card(item_id), custom_id=f"triage:correct:{item_id}")
    assert shown.modal is not None and shown.modal["custom_id"] == f"triage:modal:{item_id}"
    submitted = await world.ann.submit_modal(shown, {"action": "Write an auth guide for v3"})
    assert submitted.ephemeral
    (vote,) = world.store.current_votes(item_id)
    assert vote.action == "Write an auth guide for v3" and vote.category == "framework-issue"
    label = world.store.get_label(item_id)
    assert label is not None and label.action == "Write an auth guide for v3"
    assert "framework-issue / critical: Write an auth guide" in world.field(item_id, "Votes")

    # The noise category in the menu is a noise vote; an outsider's menu pick is refused.
    await world.bob.select(world.card(item_id), ["noise"], custom_id=f"triage:category:{item_id}")
    kinds = {v.reviewer: v.kind for v in world.store.current_votes(item_id)}
    assert kinds[str(world.bob.id)] == ValidationKind.NOISE
    refused = await world.mal.select(
        world.card(item_id), ["low"], custom_id=f"triage:severity:{item_id}"
    )
    assert "not on" in reply_text(refused) and len(world.store.current_votes(item_id)) == 2


async def test_reactions_vote_combine_and_removal_retracts(world: World) -> None:
    item_id = await world.intake_item("It would be great to have a dark mode")
    card = world.card(item_id)

    await world.ann.react(card, "\U0001f41b")  # bug -> website-bug
    await world.ann.react(card, "\U0001f525")  # fire -> critical, combined with the bug
    (vote,) = world.store.current_votes(item_id)
    assert (vote.category, vote.severity) == ("website-bug", "critical")
    assert "website-bug / critical" in world.field(item_id, "Votes")

    await world.ann.react(card, "\U0001f4a1")  # bulb: the latest category wins
    await world.ann.unreact(card, "\U0001f41b")  # the vote no longer rests on the bug
    (vote,) = world.store.current_votes(item_id)
    assert (vote.category, vote.severity) == ("feature-request", "critical")
    await world.ann.unreact(card, "\U0001f525")  # a reaction the vote rests on: retract
    assert world.store.current_votes(item_id) == []
    assert world.field(item_id, "Votes") == "No votes yet."

    await world.bob.react(card, "\u2705")  # white_check_mark -> confirm
    (vote,) = world.store.current_votes(item_id)
    assert vote.kind == ValidationKind.CONFIRM and vote.reviewer == str(world.bob.id)
    await world.bob.react(card, "\u2699\ufe0f")  # gear, with the variation selector
    (vote,) = world.store.current_votes(item_id)
    assert vote.category == "framework-issue"
    await world.bob.react(card, "\U0001f389")  # tada: means nothing
    assert len(world.store.events(item_id)) == 6  # 3 + retract + confirm + gear

    # An outsider's reaction is taken off, explained in a DM, and nothing is stored.
    await world.mal.react(card, "\U0001f5d1\ufe0f")  # wastebasket
    assert [v.reviewer for v in world.store.current_votes(item_id)] == [str(world.bob.id)]
    dm = world.mal.user.dm_channel.last_message
    assert dm is not None and "not on" in dm.content
    card_now = world.card(item_id)
    assert not any(str(r.emoji).startswith("\U0001f5d1") for r in card_now.reactions)


async def test_a_reviewer_whose_role_no_longer_counts_can_neither_vote_nor_retract(
    world: World,
) -> None:
    """Removing a reaction is a vote too (a retraction): the rule applies to it, with the
    member's roles looked up, since Discord's removal event carries none."""
    item_id = await world.intake_item("It would be great to have a dark mode")
    card = world.card(item_id)
    await world.ann.react(card, "\U0001f41b")  # bug -> website-bug
    assert len(world.store.current_votes(item_id)) == 1

    leads = world.guild.create_role("Leads")  # nobody has it
    world.settings = replace(world.settings, reviewer_role=leads.id)
    await world.restart()
    await world.ann.unreact(world.card(item_id), "\U0001f41b")
    (vote,) = world.store.current_votes(item_id)  # not retracted
    assert vote.category == "website-bug" and len(world.store.events(item_id)) == 1
    await world.ann.react(world.card(item_id), "\U0001f525")  # fire: refused
    assert len(world.store.events(item_id)) == 1
    dm = world.ann.user.dm_channel.last_message
    assert dm is not None and dm.content == NOT_A_REVIEWER


async def test_slash_commands_submit_queue_stats_help(world: World) -> None:
    assert "triage submit" in world.ann.available_commands(world.intake)
    result = await world.mal.slash(
        world.intake,
        "triage submit",
        text="Please add an export to CSV",
        page="/reports",
        form_type="feature",
    )
    assert result.ephemeral
    text = reply_text(result)
    (item,) = list(world.store.iter_items())
    assert item.id in text and item.form_type == "feature" and item.page == "/reports"
    assert world.card(item.id).embeds  # posted by the outbox

    result = await world.ann.slash(world.intake, "triage help")
    assert result.ephemeral and "/triage queue" in reply_text(result)
    assert "\U0001f41b website-bug" in reply_text(result)

    result = await world.ann.slash(world.intake, "triage queue")
    assert result.ephemeral and str(world.card(item.id).id) in reply_text(result)

    await world.ann.click(world.card(item.id), custom_id=f"triage:confirm:{item.id}")
    result = await world.ann.slash(world.intake, "triage stats")
    assert result.ephemeral and "**1** validated of 1 items" in reply_text(result)
    result = await world.ann.slash(world.intake, "triage queue")
    assert "Nothing waits for a human." in reply_text(result)

    result = await world.ann.slash(world.intake, "triage submit", text="   ")
    assert "Not triaged" in reply_text(result) and world.store.count_items() == 1

    # Without the reviewer role: the help (and submitting, above), not the queue or stats.
    result = await world.mal.slash(world.intake, "triage help")
    assert result.ephemeral and "/triage queue" in reply_text(result)
    for command in ("triage queue", "triage stats"):
        result = await world.mal.slash(world.intake, command)
        assert result.ephemeral and reply_text(result) == REVIEWERS_ONLY, command


async def test_restart_keeps_cards_alive_and_the_outbox_posts_once(world: World) -> None:
    item_id = await world.intake_item("Search returns no results for anything")
    old_card = world.card(item_id)

    # A new process that has posted nothing yet: the old card's button still votes.
    await world.restart()
    result = await world.ann.click(old_card, custom_id=f"triage:confirm:{item_id}")
    assert "you confirmed" in reply_text(result)
    assert world.store.get_label(item_id) is not None
    assert f"<@{world.ann.id}> confirmed" in world.field(item_id, "Votes")
    result = await world.bob.select(old_card, ["low"], custom_id=f"triage:severity:{item_id}")
    assert "low" in reply_text(result)

    # The process that dies: its own intake, whose outbox never runs.
    dying = Intake(world.store)
    # Crash 1: a post claimed and sent, but the process died before recording it.
    sent = dying.accept(
        Submission(
            text="Docs on caching are confusing", source="discord", received_at=world.env.now()
        ),
        [world.target],
    ).item
    claimed = world.store.claim_post(world.target, "dead-worker", 0.0)  # lease already over
    assert claimed is not None and claimed.item_id == sent.id
    # Crash 2: an item stored and queued, never posted (the process died first).
    stored = dying.accept(
        Submission(text="The pricing page link is dead", source="discord"), [world.target]
    ).item
    rendered = world.bot.outbox.card_view(sent.id)
    assert rendered is not None
    channel = world.bot.get_channel(world.cards.id)
    assert isinstance(channel, discord.TextChannel)
    ghost = await channel.send(embed=embeds.card_payload(rendered, world.bot.taxonomy)[1])
    await world.env.settle()

    await world.restart()
    # The unposted item got its card; the one Discord already had was found, not reposted.
    assert world.card(stored.id).embeds
    post = world.store.get_post(sent.id, world.target)
    assert post is not None and post.ref == str(ghost.id)
    per_item = [embeds.card_item_id(m) for m in world.card_messages()]
    assert sorted(per_item) == sorted([item_id, stored.id, sent.id])


# -- over real sockets: discord.py's HTTP client and gateway against a local fake -------------
async def connect(bot: TriageBot) -> asyncio.Task[None]:
    """Log in (REST, setup_hook) and connect (gateway) as `triage-bot serve discord` does."""
    await bot.login("fake-token")
    task = asyncio.create_task(bot.connect(reconnect=False))
    await asyncio.wait_for(bot.wait_until_ready(), 60)  # guards a hang; not a timing claim
    return task


async def disconnect(bot: TriageBot, task: asyncio.Task[None]) -> None:
    await bot.close()
    await asyncio.gather(task, return_exceptions=True)


def component_click(
    fake: FakeDiscord, card: dict[str, object], custom_id: str, user: int, roles: list[int]
) -> dict[str, object]:
    """An INTERACTION_CREATE for a button click, as Discord sends it."""
    return {
        "id": str(fake.new_id()),
        "application_id": str(fake.app_id),
        "type": 3,
        "token": f"tok-{custom_id}",
        "version": 1,
        "guild_id": str(fake.guild_id),
        "channel_id": card["channel_id"],
        "channel": {"id": card["channel_id"], "type": 0, "guild_id": str(fake.guild_id)},
        "member": fake.member(user, "ann", roles),
        "message": card,
        "data": {"custom_id": custom_id, "component_type": 2},
        "app_permissions": str(discord.Permissions.all().value),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "attachment_size_limit": 8388608,
    }


async def test_over_real_sockets_restart_keeps_the_buttons_alive(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDiscord()
    cards, intake, role, ann = 833333333333333331, 833333333333333332, 833333333333333333, 844
    fake.channels = {cards: "triage", intake: "feedback"}
    fake.roles = {role: "Reviewers"}
    await fake.start()
    fake.patch(monkeypatch)
    settings = DiscordSettings("fake-token", cards, frozenset({intake}), role, fake.guild_id)
    taxonomy = load_taxonomy()

    def process() -> tuple[SQLiteStore, TriageBot]:
        store = SQLiteStore(tmp_path / "discord.db")
        service = TriageService(store, TriageEngine(taxonomy, encoder), taxonomy)
        service.warm_start()
        return store, TriageBot(service, settings, guild_ready_timeout=0.1)

    try:
        store, bot = process()
        task = await connect(bot)
        # A message in the intake channel arrives over the gateway and becomes a card.
        source = fake.message(intake, fake.user(ann, "ann"), {"content": "Search is broken"})
        await fake.dispatch("MESSAGE_CREATE", source)
        await fake.wait_for(lambda: len(fake.messages.get(cards, [])) == 1)
        (card,) = fake.messages[cards]
        (item,) = list(store.iter_items())
        assert card["embeds"][0]["footer"]["text"].startswith(f"item {item.id} ")
        await disconnect(bot, task)
        store.close()

        # A new process: its commands are synced again, and the old card's button still votes.
        store, bot = process()
        task = await connect(bot)
        syncs = fake.requests("PUT", f"/applications/{fake.app_id}/guilds/{fake.guild_id}/")
        assert len(syncs) == 2 and {c["name"] for c in syncs[-1].body} == {"triage"}
        await fake.dispatch(
            "INTERACTION_CREATE",
            component_click(fake, card, f"triage:confirm:{item.id}", ann, [role]),
        )
        await fake.wait_for(lambda: bool(fake.requests("PATCH", f"/channels/{cards}/messages/")))
        edited = fake.requests("PATCH", f"/channels/{cards}/messages/{card['id']}")[-1].body
        votes = next(f for f in edited["embeds"][0]["fields"] if f["name"] == "Votes")
        assert f"<@{ann}> confirmed" in votes["value"]
        (ack,) = fake.requests("POST", "/interactions/")
        assert ack.body["type"] == 5 and ack.body["data"]["flags"] & 64  # ephemeral defer
        label = store.get_label(item.id)
        assert label is not None and label.reviewers == [str(ann)]
        assert len(fake.messages[cards]) == 1  # nothing reposted by the new process

        # Someone without the reviewer role is refused privately and nothing is stored.
        await fake.dispatch(
            "INTERACTION_CREATE",
            component_click(fake, card, f"triage:noise:{item.id}", 845, []),
        )
        await fake.wait_for(lambda: len(fake.requests("POST", "/interactions/")) == 2)
        refusal = fake.requests("POST", "/interactions/")[-1].body
        assert refusal["type"] == 4 and refusal["data"]["flags"] & 64
        assert "not on" in refusal["data"]["content"]
        assert [v.reviewer for v in store.current_votes(item.id)] == [str(ann)]
        await disconnect(bot, task)
        store.close()
    finally:
        await fake.stop()


HOSTILE = (
    "<!channel> <@123456789012345678> @everyone [your SSO session expired](https://evil.example)"
    " [b](https://evil.example/2) ||spoiler|| **bold**"
)


async def test_hostile_oversized_and_long_id_items_post_literal_cards_that_fit(
    world: World,
) -> None:
    """A person's markup reaches the channel as text; an item too big for an embed as built
    before clipping, and one whose id is too long for a custom id, are posted whole and in
    place (simcord checks Discord's limits), their buttons vote, and nothing waits."""
    hostile = await world.intake_item(HOSTILE)
    big = to_item(
        Submission(
            text="\n".join(f"line {i}" for i in range(1450)),
            source="webhook",
            form_type="t" * 10_000,
            page="https://shop.example/x|ok> <!everyone> [a](https://evil.example)",
        )
    )
    long_id = to_item(Submission(text="Export to CSV drops the last row", source="file"))
    long_id.id = "import:" + "x" * 150  # an id kept from a data set, over Discord's 100
    for item in (big, long_id):
        assert world.store.add_item(item, [world.target])
    behind = await world.intake_item("The pricing page link is dead")
    world.bot.kick()
    await world.env.settle()

    for item_id in (hostile, big.id, long_id.id, behind):
        post = world.store.get_post(item_id, world.target)
        assert post is not None and post.status == "posted" and post.attempts == 1, post
        card = world.card(item_id)
        (embed,) = card.embeds
        assert content_problems(card.content) == [] and embed_problems(embed) == []
        for text in discord_texts(card.content, embed):
            assert discord_markup_problems(text) == [], text[:200]
        ids = [c.custom_id for row in card.components for c in row.children]  # type: ignore[attr-defined]
        assert ids and all(len(i or "") <= embeds.CUSTOM_ID_LIMIT for i in ids)
    described = world.card(hostile).embeds[0].description or ""
    assert "[your SSO session expired]\\(https\\://evil.example\\)" in described
    assert "@\u200beveryone" in described and "\\<@\u200b123456789012345678\\>" in described
    source = world.field(big.id, "Source")
    # The page is no URL: shown as inline code (literal on Discord), never linked.
    assert "source message" not in source
    assert "`https://shop.example/x|ok> <!everyone> [a](https://evil.example)`" in source
    assert "could not be posted" not in (world.card(big.id).embeds[0].footer.text or "")

    # The long id rides as a digest; the click maps it back through the card it is on.
    key = embeds.item_key(long_id.id)
    assert embeds.is_digest(key)
    result = await world.ann.click(world.card(long_id.id), custom_id=f"triage:confirm:{key}")
    assert "you confirmed" in reply_text(result)
    assert [v.reviewer for v in world.store.current_votes(long_id.id)] == [str(world.ann.id)]
    result = await world.bob.select(
        world.card(long_id.id), ["low"], custom_id=f"triage:severity:{key}"
    )
    assert "low" in reply_text(result) and len(world.store.current_votes(long_id.id)) == 2


async def test_over_real_sockets_every_send_allows_no_mentions(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What goes over the wire: each card carries `allowed_mentions: {"parse": []}` and the
    person's markup escaped, whatever it says."""
    fake = FakeDiscord()
    cards, intake, role, ann = 833333333333333341, 833333333333333342, 833333333333333343, 846
    fake.channels = {cards: "triage", intake: "feedback"}
    fake.roles = {role: "Reviewers"}
    await fake.start()
    fake.patch(monkeypatch)
    settings = DiscordSettings("fake-token", cards, frozenset({intake}), role, fake.guild_id)
    taxonomy = load_taxonomy()
    store = SQLiteStore(tmp_path / "discord.db")
    service = TriageService(store, TriageEngine(taxonomy, encoder), taxonomy)
    bot = TriageBot(service, settings, guild_ready_timeout=0.1)
    try:
        task = await connect(bot)
        source = fake.message(intake, fake.user(ann, "ann"), {"content": HOSTILE})
        await fake.dispatch("MESSAGE_CREATE", source)
        await fake.wait_for(lambda: len(fake.messages.get(cards, [])) == 1)
        (sent,) = fake.requests("POST", f"/channels/{cards}/messages")
        assert sent.body["allowed_mentions"] == {"parse": []}
        (embed,) = sent.body["embeds"]
        for text in (sent.body["content"], embed["description"]):
            assert "@everyone" not in text and discord_markup_problems(text) == [], text
        await disconnect(bot, task)
    finally:
        store.close()
        await fake.stop()


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    """For work other threads finish (the GitHub outbox): poll, yielding to the loop."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(AssertionError, StopIteration):  # a card mid-rewrite
            if check():
                return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


async def test_create_issue_from_a_card_and_read_its_state_back(
    tmp_path: Path, encoder: Encoder
) -> None:
    with FakeGitHub() as gh:
        github = GitHubSettings(repo="acme/web", token="ghp-test", api_url=gh.base_url)
        async with make_world(tmp_path, encoder, github) as world:
            item_id = await world.intake_item("The checkout page crashes with a 500 for @here")
            card = world.card(item_id)
            ids = {c.custom_id for row in card.components for c in row.children}  # type: ignore[attr-defined]
            assert f"triage:issue:{item_id}" in ids

            refused = await world.mal.click(card, custom_id=f"triage:issue:{item_id}")
            assert refused.ephemeral and "not on" in reply_text(refused)
            assert gh.issues("acme/web") == []

            result = await world.ann.click(card, custom_id=f"triage:issue:{item_id}")
            assert result.ephemeral
            (issue,) = gh.issues("acme/web")
            assert "Opened" in reply_text(result) and issue["html_url"] in reply_text(result)
            assert "triage-bot" in {label["name"] for label in issue["labels"]}
            assert f"discord.com/channels/{world.guild.id}/{world.cards.id}/" in issue["body"]
            votes = world.store.current_votes(item_id)
            assert [(v.reviewer, v.kind) for v in votes] == [
                (str(world.ann.id), ValidationKind.CONFIRM)
            ]
            assert await eventually(
                lambda: issue["html_url"] in world.field(item_id, "GitHub issue")
            )
            # The button became a link to the issue; a second click cannot open another.
            buttons = [c for row in world.card(item_id).components for c in row.children]  # type: ignore[attr-defined]
            assert any(getattr(b, "url", None) == issue["html_url"] for b in buttons)
            assert not any(
                getattr(b, "custom_id", None) == f"triage:issue:{item_id}" for b in buttons
            )
            assert len(gh.issues("acme/web")) == 1

            # Closed on GitHub, read back by the poll: the card says so, the outcome counts.
            gh.close_issue("acme/web", issue["number"], reason="completed")
            assert world.bot.github is not None
            assert await asyncio.to_thread(world.bot.github.poller.poll_once) == 1
            assert await eventually(
                lambda: "closed as completed" in world.field(item_id, "GitHub issue")
            )
            assert "github:outcome" in {v.reviewer for v in world.store.current_votes(item_id)}


async def test_a_card_nobody_took_gets_one_reply_that_pings_only_who_is_named(
    tmp_path: Path, encoder: Encoder
) -> None:
    async with make_world(tmp_path, encoder) as world:
        oncall = world.guild.create_role("On call")
        world.bot.settings = replace(world.settings, escalate_to=("role", oncall.id))
        every = world.bot.taxonomy.severity_names
        world.bot.escalator = Escalator(
            world.bot.service, world.target, EscalationSettings(severities=every)
        )
        waiting = await world.intake_item("The checkout page crashes with a 500 error")
        voted = await world.intake_item("The search box ignores accents")
        await world.ann.click(world.card(voted), custom_id=f"triage:confirm:{voted}")
        later = utcnow() + timedelta(minutes=31)

        def escalate() -> int:
            world.bot.escalator.queue_due(later)
            return world.bot.escalations.drain()

        assert await asyncio.to_thread(escalate) == 1
        card = world.card(waiting)
        (thread,) = world.cards.threads  # the card's thread, started for the escalation
        assert thread.id == card.id
        replies = [m for m in thread.history() if "30 minutes" in m.content]
        assert len(replies) == 1 and f"<@&{oncall.id}>" in replies[0].content
        stored = world.env.backend.messages[thread.id][replies[0].id]
        assert list(stored.ping_role_ids) == [oncall.id] and not stored.ping_user_ids
        assert await asyncio.to_thread(escalate) == 0  # said once
        assert len(world.card_messages()) == 2 and len(world.cards.threads) == 1


async def test_a_reviewers_edited_action_reaches_the_next_similar_card(
    tmp_path: Path, encoder: Encoder
) -> None:
    # Duplicates off: the look-alike gets a card of its own (on, it joins the first's group).
    def ungrouped(guild: GuildHandle, bob: MemberActor) -> RuntimeSettings:
        return RuntimeSettings(duplicates=DuplicateSettings(enabled=False))

    async with make_world(tmp_path, encoder, runtime=ungrouped) as world:
        await edited_action_reaches_the_look_alike(world)


async def edited_action_reaches_the_look_alike(world: World) -> None:
    first = await world.intake_item("The checkout page crashes with a 500 error on submit")
    shown = await world.ann.click(world.card(first), custom_id=f"triage:correct:{first}")
    edited = "Roll back the payments deploy, then page the payments on-call"
    await world.ann.submit_modal(shown, {"action": edited})
    label = world.store.get_label(first)
    assert label is not None and label.action == edited
    second = await world.intake_item("The checkout page crashes with a 500 error when I pay")
    action = world.field(second, "Suggested action")
    shown_plain = action.replace("\\", "")  # the id is shown literally: `_` escaped
    assert edited in action and f"action as reviewers wrote it for {first}" in shown_plain
    unrelated = await world.intake_item("Please add a dark mode to the documentation site")
    assert edited not in world.field(unrelated, "Suggested action")


async def test_owners_named_and_pinged_by_rule_reassigned_from_the_menu_and_queued_as_mine(
    tmp_path: Path, encoder: Encoder
) -> None:
    payments: list[int] = []

    def owners(guild: GuildHandle, bob: MemberActor) -> RuntimeSettings:
        role = guild.create_role("Payments")
        payments.append(role.id)
        return RuntimeSettings(
            owners=[
                OwnerSpec(name="payments", discord=f"role:{role.id}"),
                OwnerSpec(name="docs", discord=f"user:{bob.id}"),
            ],
            routes=[RouteSpec(owner="payments")],  # everything, by default
        )

    async with make_world(tmp_path, encoder, runtime=owners) as world:
        item_id = await world.intake_item("The checkout page crashes with a 500 error")
        card = world.card(item_id)
        assert card.content.startswith(f"<@&{payments[0]}>")  # pinged when posted
        assert "payments" in world.field(item_id, "Owner")
        assert "by rule" in world.field(item_id, "Owner")
        ids = {c.custom_id for row in card.components for c in row.children}  # type: ignore[attr-defined]
        assert f"triage:owner:{item_id}" in ids

        refused = await world.mal.select(card, ["docs"], custom_id=f"triage:owner:{item_id}")
        assert "not on" in reply_text(refused) and world.store.get_assignment(item_id) is None
        result = await world.ann.select(card, ["docs"], custom_id=f"triage:owner:{item_id}")
        assert "Assigned to docs" in reply_text(result)
        got = world.store.get_assignment(item_id)
        assert got is not None and (got.owner, got.by) == ("docs", str(world.ann.id))
        assert await eventually(lambda: "assigned by" in world.field(item_id, "Owner"))

        other = await world.intake_item("The pricing page shows the wrong currency")
        result = await world.bob.slash(world.intake, "triage queue", mine=True)
        shown = reply_text(result)
        assert "checkout page crashes" in shown and "wrong currency" not in shown
        assert other != item_id


async def test_triage_digest_posts_one_message_with_one_chart_for_reviewers_only(
    world: World,
) -> None:
    await world.intake_item("The checkout page crashes with a 500 error")
    refused = await world.mal.slash(world.intake, "triage digest")
    assert reply_text(refused) == REVIEWERS_ONLY
    # simcord's messages are dated 2026-01-01: a period long enough to reach back there.
    result = await world.ann.slash(world.intake, "triage digest", since="50w")
    assert "Posted the digest" in reply_text(result)
    (posted,) = [m for m in world.cards.history() if m.attachments]
    assert "**1** items" in posted.content
    (chart,) = posted.attachments
    assert chart.filename == "triage-digest.png"
    bad = await world.ann.slash(world.intake, "triage digest", since="soon")
    assert "Not posted" in reply_text(bad)


async def test_a_dispute_gets_one_reply_to_the_card_that_pings_nobody(world: World) -> None:
    item_id = await world.intake_item("The login button does nothing on Safari")
    await world.ann.click(world.card(item_id), custom_id=f"triage:confirm:{item_id}")
    await world.bob.click(world.card(item_id), custom_id=f"triage:noise:{item_id}")
    assert await asyncio.to_thread(world.bot.dispute_replies.drain) == 1
    card = world.card(item_id)
    (thread,) = world.cards.threads
    assert thread.id == card.id  # in the card's thread
    (reply,) = [m for m in thread.history() if m.content]
    assert reply.content.startswith("\U0001f4ac Reviewers disagree")
    assert f"<@{world.ann.id}>" in reply.content and f"<@{world.bob.id}>" in reply.content
    stored = world.env.backend.messages[thread.id][reply.id]
    assert stored.ping_user_ids == [] and stored.ping_role_ids == []  # shown, not pinged
    await world.ann.click(world.card(item_id), custom_id=f"triage:noise:{item_id}")
    assert await asyncio.to_thread(world.bot.dispute_replies.drain) == 0


def thread_of(world: World, item_id: str) -> ChannelHandle:
    (thread,) = [t for t in world.cards.threads if t.id == world.card(item_id).id]
    return thread


def message_of(world: World, item_id: str) -> discord.Message:
    """An item's message wherever it is: its card, or its reply in a group card's thread."""
    post = world.store.get_post(item_id, world.target)
    assert post is not None and post.ref
    where = [world.cards, *world.cards.threads]
    return next(m for c in where for m in c.history() if m.id == int(post.ref))


async def test_twenty_reports_of_one_problem_make_one_card_and_nineteen_in_its_thread(
    world: World,
) -> None:
    ids = [await world.intake_item(report(i)) for i in range(20)]
    other = await world.intake_item("Please add a dark mode to the dashboard")
    assert await eventually(lambda: "20 reports" in world.field(ids[0], "Reports"))
    assert f"latest from <@{world.ann.id}>" in world.field(ids[0], "Reports")  # shown, no ping
    top = [embeds.card_item_id(m) for m in world.card_messages()]
    assert sorted(top) == sorted([ids[0], other])
    thread = thread_of(world, ids[0])
    in_thread = [embeds.card_item_id(m) for m in thread.history() if m.embeds]
    assert sorted(in_thread) == sorted(ids[1:])
    assert sorted(link.item_id for link in world.store.duplicates_of(ids[0])) == sorted(ids[1:])
    # A thread message pings nobody and offers "Not a duplicate" only.
    reply = message_of(world, ids[3])
    stored = world.env.backend.messages[thread.id][reply.id]
    assert stored.ping_user_ids == [] and stored.ping_role_ids == []
    custom = {c.custom_id for row in reply.components for c in row.children}  # type: ignore[attr-defined]
    assert custom == {f"triage:split:{ids[3]}"}
    # A reaction on a thread message is a vote for the group's card.
    await world.ann.react(reply, "\u2705")
    assert await eventually(lambda: world.store.get_label(ids[0]) is not None)
    assert world.store.get_label(ids[3]) is None


async def test_not_a_duplicate_splits_and_duplicate_of_merges_both_stored_as_votes(
    world: World,
) -> None:
    first = await world.intake_item(report(0))
    second = await world.intake_item(report(1))
    other = await world.intake_item("Please add a dark mode to the dashboard")
    reply = message_of(world, second)
    assert reply.channel.id == world.card(first).id  # in the first card's thread
    refused = await world.mal.click(reply, custom_id=f"triage:split:{second}")
    assert "not on" in reply_text(refused) and world.store.get_duplicate(second) is not None
    result = await world.ann.click(reply, custom_id=f"triage:split:{second}")
    assert "card of its own" in reply_text(result)
    assert world.store.get_duplicate(second) is None
    assert await eventually(
        lambda: any(embeds.card_item_id(m) == second for m in world.card_messages())
    )
    assert await eventually(
        lambda: "card of its own" in (message_of_id(world, reply).embeds[0].title or "")
    )
    (split,) = world.store.duplicate_votes()
    assert (split.item_id, split.other_id, split.same) == (second, first, False)
    # "Duplicate of..." on its new card offers the first card; picking it merges.
    card = world.card(second)
    menu = next(
        c
        for row in card.components
        for c in row.children  # type: ignore[attr-defined]
        if c.custom_id == f"triage:duplicate:{second}"
    )
    assert menu.options[0].value == first
    assert other not in [o.value for o in menu.options][:1]
    result = await world.bob.select(card, [first], custom_id=f"triage:duplicate:{second}")
    assert "Grouped" in reply_text(result)
    link = world.store.get_duplicate(second)
    assert link is not None and (link.canonical_id, link.by) == (first, str(world.bob.id))
    assert [v.same for v in world.store.duplicate_votes()] == [False, True]
    assert await eventually(lambda: "Duplicate of" in (world.card(second).embeds[0].title or ""))
    assert await eventually(lambda: "2 reports" in world.field(first, "Reports"))


def message_of_id(world: World, message: discord.Message) -> discord.Message:
    where = [world.cards, *world.cards.threads]
    return next(m for c in where for m in c.history() if m.id == message.id)


async def test_triage_themes_lists_the_periods_themes_for_reviewers_only(world: World) -> None:
    for text in (
        "Please add a dark mode to the dashboard @everyone",
        "A dark theme for the dashboard would be great",
        "Dark mode please, the white dashboard hurts my eyes",
        "Exporting a report as CSV times out",
    ):
        await world.intake_item(text)
    refused = await world.mal.slash(world.intake, "triage themes")
    assert "not open to you" in reply_text(refused)
    # simcord's messages are dated 2026-01-01: a period long enough to reach them.
    result = await world.ann.slash(world.intake, "triage themes", since="52w")
    shown = reply_text(result)
    assert "**Themes**" in shown and "3 report(s), new" in shown and "dark" in shown
    assert "@everyone" not in shown  # an example is shown literally
    bad = await world.ann.slash(world.intake, "triage themes", since="soon")
    assert "No themes: period 'soon'" in reply_text(bad)
    refused = await world.mal.slash(world.intake, "triage theme-rename", key="x", name="y")
    assert "not open to you" in reply_text(refused)
    key = shown.split("`")[1]
    missing = await world.ann.slash(world.intake, "triage theme-rename", key=key, name="Dark")
    assert "Not changed: no theme" in reply_text(missing)  # not in the last 7 days
    named = await world.ann.slash(
        world.intake, "triage theme-rename", key=key, name="Dark mode @here", since="52w"
    )
    assert "is now “Dark mode" in reply_text(named) and "@here" not in reply_text(named)
    listed = await world.ann.slash(world.intake, "triage themes", since="52w")
    assert "Dark mode" in reply_text(listed)
