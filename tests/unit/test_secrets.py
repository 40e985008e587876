"""No secret in a repr, a str, an error message or the CLI's error output: every settings
object is built from an environment full of distinct secrets, and none of them shows."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.discord.settings import DiscordSettings
from bot.intake import parse_watch_url
from bot.slack.settings import SlackSettings
from core.settings import LLMSettings, Settings
from core.store import StoreURLError, hide_credentials, open_store, safe_url

# Each secret has a distinct marker, so a leak says which one leaked.
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-111-SECRETbottoken",
    "SLACK_SIGNING_SECRET": "SECRETsigning",
    "SLACK_APP_TOKEN": "xapp-1-SECRETapptoken",
    "DISCORD_TOKEN": "SECRETdiscord.token.value",
    "TRIAGE_WEBHOOK_SECRET": "SECRETwebhooknew,SECRETwebhookold",
    "OPENAI_API_KEY": "sk-SECRETopenai",
    "GITHUB_TOKEN": "ghp_SECRETgithub",
}
STORE_PASSWORD = "SECRETstorepw"
AWS_TOKEN = "SECRETawssession"
LLM_PASSWORD = "SECRETllmpw"
ENV = {
    **SECRETS,
    "TRIAGE_STORE_URL": f"mongodb://triage:{STORE_PASSWORD}@db.example.com:27017/triage"
    f"?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:{AWS_TOKEN}",
    "OPENAI_BASE_URL": f"https://llm:{LLM_PASSWORD}@llm.example.com/v1",
    "TRIAGE_LLM_MODEL": "qwen",
    "TRIAGE_SLACK_CHANNEL": "CTRIAGE",
    "TRIAGE_DISCORD_CHANNEL": "123456789012345678",
    "TRIAGE_REVIEWERS": "UANN",
}
MARKERS = [
    *(part for value in SECRETS.values() for part in value.split(",")),
    STORE_PASSWORD,
    AWS_TOKEN,
    LLM_PASSWORD,
]


def assert_no_secret(text: str) -> None:
    leaked = [marker for marker in MARKERS if marker in text] + (["SECRET"] * ("SECRET" in text))
    assert not leaked, (leaked, text)


def every_settings_object() -> list[object]:
    settings = Settings.from_env(ENV)
    watch = f"mongodb://reader:{STORE_PASSWORD}@db.example.com/website.feedback?tls=true"
    return [
        settings,
        settings.with_backend("llm"),
        settings.llm,
        LLMSettings.from_env(ENV),
        SlackSettings.from_env(ENV),
        SlackSettings.from_env({k: v for k, v in ENV.items() if k != "SLACK_APP_TOKEN"}),
        DiscordSettings.from_env(ENV),
        parse_watch_url(watch),
    ]


def test_no_settings_object_shows_a_secret_in_its_repr_or_str() -> None:
    objects = every_settings_object()
    for obj in objects:
        assert_no_secret(repr(obj))
        assert_no_secret(str(obj))
        # ...while each field that holds a secret really holds it (the test can fail).
        values = " ".join(str(v) for v in dataclasses.asdict(obj).values())  # type: ignore[call-overload]
        assert "SECRET" in values, obj
    settings, slack, discord, watch = objects[0], objects[4], objects[6], objects[7]
    # What is not secret is still there to read.
    assert "db.example.com" in repr(settings) and "triage:***@" in repr(settings)
    assert "authMechanismProperties=***" in repr(settings)
    assert "llm:***@llm.example.com" in repr(settings)
    assert "CTRIAGE" in repr(slack) and "123456789012345678" in repr(discord)
    assert "website" in repr(watch) and "feedback" in repr(watch)


@pytest.mark.parametrize(
    "url",
    [
        f"mongodb://reader:{STORE_PASSWORD}@db.example.com/website",  # no collection
        f"mongodb://reader:{STORE_PASSWORD}@db.example.com/",
        f"mongodbx://reader:{STORE_PASSWORD}@db.example.com/website.feedback",
        f"reader:{STORE_PASSWORD}@db.example.com/website.feedback",  # no scheme
        f"mongodb://reader:{STORE_PASSWORD}/x@db.example.com",  # an unescaped "/"
        f"mongodb://reader:pre@{STORE_PASSWORD}@db.example.com",  # an unescaped "@"
        f"mongodb://{STORE_PASSWORD}@db.example.com/site",  # a token as the user name
        f"mongodb://reader:{STORE_PASSWORD}/x@db.example.com/website.feedback",
        f"mongodb://reader:{STORE_PASSWORD}@db.example.com:port/website.feedback",
        f"mongodb://reader:{STORE_PASSWORD}@db.example.com/website.feedback?bogus=1",
    ],
)
def test_a_malformed_watch_url_error_hides_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_watch_url(url)
    assert_no_secret(str(caught.value))
    assert "db.example.com" in str(caught.value)  # still says which URL


@pytest.mark.parametrize(
    "url",
    [
        f"postgres://app:{STORE_PASSWORD}@db.example.com/triage",
        f"mongodb://app:{STORE_PASSWORD}/x@db.example.com/triage",
        f"mongodb://app:pre@{STORE_PASSWORD}@db.example.com/triage",
        f"mongodb://app:{STORE_PASSWORD}@db.example.com:port/triage",
        f"mongodb+srv://app:{STORE_PASSWORD}@cluster.example.com:27017/triage",
        f"mongodb://app:{STORE_PASSWORD}@/triage",
    ],
)
def test_the_cli_error_for_a_bad_store_url_is_one_line_without_the_password(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIAGE_STORE_URL", url)
    result = CliRunner().invoke(app, ["stats"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "TRIAGE_STORE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert_no_secret(result.stderr + result.stdout)


def test_the_cli_error_for_a_bad_watch_url_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_APP_TOKEN")
    url = f"mongodb://reader:{STORE_PASSWORD}@db.example.com/website"
    result = CliRunner().invoke(app, ["serve", "slack", "--watch", url], catch_exceptions=False)
    assert result.exit_code == 2 and "database.collection" in result.stderr
    assert_no_secret(result.stderr + result.stdout)


def test_safe_url_on_malformed_urls() -> None:
    assert safe_url("mongodb://u:p/w@h/db") == "mongodb://u:***@h/db"
    assert safe_url("mongodb://u:p@w@h/db.c?x=1") == "mongodb://u:***@h/db.c?x=1"
    assert safe_url("https://ghp_token@github.com/o/r") == "https://***@github.com/o/r"
    assert safe_url("mongodb://h/db?tlsCertificateKeyFilePassword=pw;appName=a") == (
        "mongodb://h/db?tlsCertificateKeyFilePassword=***;appName=a"
    )
    assert (
        safe_url("mongodb://u:p@h1,h2/db?replicaSet=rs0")
        == "mongodb://u:***@h1,h2/db?replicaSet=rs0"
    )
    assert safe_url("sqlite:////home/me@work/triage.db") == "sqlite:////home/me@work/triage.db"
    with pytest.raises(StoreURLError) as caught:
        open_store(f"mongodb://app:{STORE_PASSWORD}@db.example.com:port/triage")
    assert_no_secret(str(caught.value))


def test_a_library_message_that_quotes_the_credentials_is_cleaned() -> None:
    url = f"mongodb://app:{STORE_PASSWORD}%21@db.example.com/triage"
    message = f"bad port in 'app:{STORE_PASSWORD}%21' ({STORE_PASSWORD}!)"
    assert hide_credentials(message, url) == "bad port in '***' (***)"
    assert hide_credentials("no host", "mongodb://db.example.com/triage") == "no host"
