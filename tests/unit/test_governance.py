"""Tests for core.governance: PII redaction, the inbound text gate and noise signals."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn

from core.governance import (
    PII_KINDS,
    InputError,
    PiiSpan,
    Redaction,
    clean_text,
    noise_signals,
    redact,
)

# --------------------------------------------------------------------------- helpers


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit so the result is a valid card number."""
    return body + luhn.calc_check_digit(body)


def assert_untouched(text: str) -> None:
    r = redact(text)
    assert r.text == text, f"{text!r} was changed to {r.text!r}"
    assert r.kinds == []


# ---------------------------------------------------------------------------- basics


def test_redaction_is_frozen_dataclass_with_sorted_unique_kinds() -> None:
    r = redact("a@b.com c@d.org card 4111 1111 1111 1111 and x@y.io")
    assert isinstance(r, Redaction)
    assert r.kinds == ["card", "email"]
    assert r.text == "[email] [email] card [card] and [email]"
    with pytest.raises(AttributeError):
        r.text = "x"  # type: ignore[misc]


def test_plain_feedback_is_untouched() -> None:
    assert_untouched("The export button crashes when I click it twice. Please fix!")
    assert_untouched("")


# ---------------------------------------------------------------------------- emails


@pytest.mark.parametrize(
    "email",
    [
        "john.doe@example.com",
        "john.doe+tag@example.co.uk",
        "a_b-c%d@sub.domain.io",
        "X99@EXAMPLE.ORG",
    ],
)
def test_email_redacted(email: str) -> None:
    r = redact(f"reach me at {email}, thanks")
    assert r.text == "reach me at [email], thanks"
    assert r.kinds == ["email"]


@pytest.mark.parametrize(
    "text",
    ["ping @alice about it", "user@localhost failed", "pin numpy@1.26 please", "@app.route('/x')"],
)
def test_email_look_alikes_untouched(text: str) -> None:
    assert_untouched(text)


# ---------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "+1 555 123 4567",
        "+1 (555) 123-4567",
        "+4915112345678",
        "+33 6 12 34 56 78",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-555-123-4567",
        "020 7946 0958",
        "06 12 34 56 78",
        "06-12345678",
    ],
)
def test_phone_redacted(phone: str) -> None:
    r = redact(f"call {phone} today")
    assert r.text == "call [phone] today"
    assert r.kinds == ["phone"]


def test_bare_digit_run_is_phone_only_with_context() -> None:
    assert redact("phone: 5551234567").text == "phone: [phone]"
    assert redact("call me at 0612345678 tonight").text == "call me at [phone] tonight"
    assert_untouched("ts 1700000000 in the log")
    assert_untouched("order 5551234567 never arrived")


@pytest.mark.parametrize(
    "text",
    [
        "broken since 3.12.1 and 10.0.19041",
        "happened on 2026-11-28 and 28-11-2026",
        "started at 12:30, ended at 12:30:45",
        "got HTTP 404 then 500 503 502",
        "see issue #12345 and PR #678",
        "server on port 8080 and :443",
        "we have 42 users and 7 teams, 100 200 300",
        "version 2026.11.28 build 20261128",
    ],
)
def test_phone_false_positives_untouched(text: str) -> None:
    assert_untouched(text)


# ----------------------------------------------------------------------------- cards


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555555555554444",
        "378282246310005",  # Amex, 15 digits
        "3782 822463 10005",
        "6011111111111117",
        "4222222222222",  # 13 digits
        luhn_complete("123456789012345678"),  # 19 digits
    ],
)
def test_luhn_valid_card_redacted(card: str) -> None:
    r = redact(f"paid with {card}.")
    assert r.text == "paid with [card]."
    assert r.kinds == ["card"]


@pytest.mark.parametrize(
    "text",
    [
        "paid with 4111 1111 1111 1112",  # fails Luhn
        "id 4111111111111112 here",
        "4111111111111111111111 is too long",  # 22 digits: not a card
        "amount 0.4111111111111111",  # part of a decimal
    ],
)
def test_luhn_invalid_or_non_card_untouched(text: str) -> None:
    assert_untouched(text)


# ------------------------------------------------------------------------------- IPs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from 192.168.1.10 today", "from [ip] today"),
        ("dial 10.0.0.1:8080 now", "dial [ip]:8080 now"),
        ("dns is 8.8.8.8.", "dns is [ip]."),
        ("edge 255.255.255.255 and 0.0.0.0", "edge [ip] and [ip]"),
        ("v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 x", "v6 [ip] x"),
        ("v6 2001:db8::1 x", "v6 [ip] x"),
        ("link fe80::1%eth0 x", "link [ip]%eth0 x"),
        ("loopback ::1 x", "loopback [ip] x"),
        ("mapped ::ffff:192.0.2.1 x", "mapped [ip] x"),
        ("nat64 64:ff9b::192.0.2.33 x", "nat64 [ip] x"),
        ("host:10.0.0.1 and a::b:1.2.3.4", "host:[ip] and [ip]"),
        ("url http://[2001:db8::42]:8080/ x", "url http://[[ip]]:8080/ x"),
    ],
)
def test_ip_redacted(text: str, expected: str) -> None:
    r = redact(text)
    assert r.text == expected
    assert r.kinds == ["ip"]


@pytest.mark.parametrize(
    "text",
    [
        "upgrade from 1.2.3 to 1.2.4",
        "bad 999.1.1.1 and 256.1.1.1",
        "leading zero 01.2.3.4",
        "five parts 1.2.3.4.5",
        "at 12:30 or 12:30:45",
        "use std::vector<int> and std::map",
        "Foo::Bar::baz() and a::b and cafe::beef",
        "mac 00:1A:2B:3C:4D:5E",
    ],
)
def test_ip_look_alikes_untouched(text: str) -> None:
    assert_untouched(text)


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "token",
    [
        "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
        "xoxp-1234567890-abcdefghij",
        "xapp-1-A0123456789-1234567890-abcdef",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "gho_abcdefghijklmnopqrstuvwxyz0123456789",
        "ghs_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "sk-abcdefghijklmnopqrstuvwxyz012345",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "AKIAIOSFODNN7EXAMPLE",
        "AIzaSyD-1234567890abcdefghijklmnopqrstu",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
)
def test_token_redacted(token: str) -> None:
    r = redact(f"my token is {token} oops")
    assert r.text == "my token is [secret] oops"
    assert r.kinds == ["secret"]


def test_bearer_keeps_scheme() -> None:
    r = redact("Authorization: Bearer abc123.def456-ghi")
    assert r.text == "Authorization: Bearer [secret]"
    assert r.kinds == ["secret"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api_key=abcd1234efgh", "api_key=[secret]"),
        ('"api_key": "abcdefgh1234"', '"api_key": "[secret]"'),
        ("password=hunter22 ok", "password=[secret] ok"),
        ("DB_PASSWORD = 's3cr3t-value'", "DB_PASSWORD = '[secret]'"),
        ("client_secret: 9f8e7d6c5b4a", "client_secret: [secret]"),
        ("password: hunter22.", "password: [secret]."),
        ("SLACK_BOT_TOKEN=xoxb-1234567890-abcdefghij", "SLACK_BOT_TOKEN=[secret]"),
        ("https://x.io/cb?token=abc123def456&page=2", "https://x.io/cb?token=[secret]&page=2"),
    ],
)
def test_assignment_keeps_key_replaces_value(text: str, expected: str) -> None:
    r = redact(text)
    assert r.text == expected
    assert r.kinds == ["secret"]


@pytest.mark.parametrize(
    "text",
    [
        "the token: expired yesterday",
        "token = get_token()",
        "password = request.form",
        "if token == expected_value:",
        "api_key=short",
        "keep it secret, keep it safe",
        "the task-runner crashed",
    ],
)
def test_secret_look_alikes_untouched(text: str) -> None:
    assert_untouched(text)


def test_secret_digits_are_not_misread_as_phone() -> None:
    r = redact("key AKIA1234567890123456 and token=1234567890123")
    assert r.text == "key [secret] and token=[secret]"
    assert r.kinds == ["secret"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Found by hypothesis: a second email/phone glued to the first used to survive.
        ("0@0.AA0@0.AA", "[email]"),
        ("(000)000.0000(000)000.0000", "[phone][phone]"),
        ("+00000000BEARER 00000000", "[phone]BEARER [secret]"),
        # The card is only recognisable once the IPv6 before it is a placeholder.
        ("::1 4111 1111 1111 1111", "[ip] [card]"),
    ],
)
def test_adjacent_pii_all_redacted(text: str, expected: str) -> None:
    r = redact(text)
    assert r.text == expected
    assert redact(r.text).text == r.text


# ---------------------------------------------------------------- credentials in URLs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://app:S3cretPw@10.1.2.3/db", "postgres://[secret]@[ip]/db"),
        (
            "mongodb://admin:p@ss@db.example.com:27017/x",
            "mongodb://[secret]@db.example.com:27017/x",
        ),
        ("redis://:hunter2@cache.internal:6379", "redis://[secret]@cache.internal:6379"),
        ("see https://user:pa#ss@example.com/x", "see https://[secret]@example.com/x"),
        ("amqp://svc:Zx9!@mq.example.org/vh", "amqp://[secret]@mq.example.org/vh"),
    ],
)
def test_url_credentials_keep_scheme_and_host(text: str, expected: str) -> None:
    assert redact(text).text == expected
    assert "secret" in redact(text).kinds


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com:443/path?next=/x",
        "http://localhost:8080/api/v1/items",
        "https://medium.com/@alice/post-123",
        "http://[2001:db8::1]:8080/",
        "ftp://example.org/pub/file.tgz",
    ],
)
def test_urls_without_credentials_keep_their_userinfo_free_authority(text: str) -> None:
    assert "[secret]" not in redact(text).text


# ------------------------------------------------------------------- passwords in prose


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my password is hunter2", "my password is [secret]"),
        ("my password is hunter2.", "my password is [secret]."),
        ("the password was changed to Football2024!", "the password was changed to [secret]"),
        ("password is set to Tr0ub4dor&3 now", "password is set to [secret] now"),
        ("pw: abc123!", "pw: [secret]"),
        ("pw: Letmein!!.", "pw: [secret]."),
        ("pwd=hunter2 ok", "pwd=[secret] ok"),
        ("my pw is qwerty99", "my pw is [secret]"),
        ("the passcode is 4821-9", "the passcode is [secret]"),
        ("PIN: 4821", "PIN: [secret]"),
        ("my PIN is 1234", "my PIN is [secret]"),
        ("Passwort: Geheim2024", "Passwort: [secret]"),
        ("the password is 'correcthorse'", "the password is '[secret]'"),
        ("login with password hunter22 please", "login with password [secret] please"),
        ("?user=bob&password=secret&x=1", "?user=bob&password=[secret]&x=1"),
    ],
)
def test_password_in_prose_redacted(text: str, expected: str) -> None:
    r = redact(text)
    assert r.text == expected
    assert r.kinds == ["secret"]


@pytest.mark.parametrize(
    "text",
    [
        "I forgot my password and the reset link is broken",
        "my password is wrong according to the app",
        "the password is case-sensitive?!",
        "password reset emails never arrive",
        "password v2.0 flow is confusing",
        "password = request.form['password']",
        "const pw = process.env.DB_PASSWORD",
        "password: $DB_PASSWORD from the vault",
        "pass it on to the team",
        "pin 3 of the header is loose",
        "the 2FA pin field only accepts 4 digits",
        "Please support passkeys, passwords are a pain.",
        "docker run -u 1000:1000 example/app",
    ],
)
def test_password_look_alikes_untouched(text: str) -> None:
    assert_untouched(text)


def test_dictionary_word_passwords_are_a_known_gap() -> None:
    # Without a digit, symbol or quotes nothing tells "monkey" from "wrong": not redacted.
    assert_untouched("my password is monkey")


# --------------------------------------------------------------- authorization headers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [secret]"),
        ("authorization: basic YWRtaW46aHVudGVyMg==", "authorization: basic [secret]"),
        (
            "Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "Proxy-Authorization: Basic [secret]",
        ),
        ('"Authorization": "Token 9f8e7d6c5b4a3f2e1d0c"', '"Authorization": "Token [secret]"'),
        ("Authorization: Bearer abc123.def456-ghi", "Authorization: Bearer [secret]"),
        ("use Basic dXNlcjpwYXNz in the header", "use Basic [secret] in the header"),
        (
            "curl -u admin:hunter2 https://api.example.com",
            "curl -u [secret] https://api.example.com",
        ),
        ("curl --user 'ci:S3cret!' -X POST", "curl --user '[secret]' -X POST"),
    ],
)
def test_authorization_credentials_redacted_scheme_kept(text: str, expected: str) -> None:
    r = redact(text)
    assert r.text == expected
    assert r.kinds == ["secret"]


@pytest.mark.parametrize(
    "text",
    [
        "the Authorization: header is missing in the preflight",
        "the basic functionality works",
        "Basic plan users can't export to CSV",
        "Basic dGVzdGluZzEyMw== decodes without a colon",
        "Bearer of bad news: the app crashes",
    ],
)
def test_authorization_look_alikes_untouched(text: str) -> None:
    assert_untouched(text)


# ------------------------------------------------------------- keys, webhooks, PEM blocks


@pytest.mark.parametrize(
    "key",
    [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_51H8abcdefghijklmnopqrstuv",
        "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
        "rk_test_abcdefghij0123456789",
        "whsec_abcdefghijklmnopqrstuvwxyz012345",
        "glpat-abcdefghijklmnopqrst",
        "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "xoxe-1-abcdefghijklmnop",
        "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    ],
)
def test_more_key_formats_redacted(key: str) -> None:
    r = redact(f"key {key} leaked")
    assert r.text == "key [secret] leaked"
    assert r.kinds == ["secret"]


@pytest.mark.parametrize(
    "text",
    ["the disk_test_results folder", "sk_live_short", "run task_live_sync daily", "npm_config"],
)
def test_key_look_alikes_untouched(text: str) -> None:
    assert_untouched(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "posting to https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnopqrstuvwx",
            "posting to https://hooks.slack.com/services/[secret]",
        ),
        (
            "hook https://hooks.slack.com/workflows/T0123/A0456/789/abcdefghij fails",
            "hook https://hooks.slack.com/workflows/[secret] fails",
        ),
        (
            "https://discord.com/api/webhooks/123456789012345678/abcDEF_ghi-jkl",
            "https://discord.com/api/webhooks/[secret]",
        ),
    ],
)
def test_webhook_urls_lose_their_path(text: str, expected: str) -> None:
    r = redact(text)
    assert r.text == expected
    assert r.kinds == ["secret"]


def test_webhook_documentation_links_untouched() -> None:
    assert_untouched("see https://api.slack.com/messaging/webhooks and https://hooks.slack.com/")


_KEY_BODY = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK"
)


@pytest.mark.parametrize(
    "label", ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"]
)
def test_pem_private_key_block_redacted_whole(label: str) -> None:
    text = f"key:\n-----BEGIN {label}-----\n{_KEY_BODY}\n-----END {label}-----\nthanks"
    r = redact(text)
    assert r.text == "key:\n[secret]\nthanks"
    assert r.kinds == ["secret"]


def test_pem_variants() -> None:
    escaped = '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\\n"'
    assert redact(escaped).text == '"private_key": "[secret]\\n"'
    encrypted = (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB12\n\n"
        f"{_KEY_BODY}\n-----END RSA PRIVATE KEY-----"
    )
    assert redact(encrypted).text == "[secret]"
    # Pasted without its END line: the base64 lines go, the prose after them stays.
    truncated = f"-----BEGIN RSA PRIVATE KEY-----\n{_KEY_BODY}\nand then the upload fails"
    assert redact(truncated).text == "[secret]\nand then the upload fails"


def test_certificates_and_public_keys_are_not_private_keys() -> None:
    cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"
    assert_untouched(cert)
    assert_untouched("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----")


@pytest.mark.parametrize(
    "text",
    [
        "-u" + " " * 200_000 + "x",  # `curl -u` then nothing: no quadratic backtracking
        "10.0.0.1 " * 100_000,  # each address looks for a version sibling, boundedly
        "version 1.0.0.1 and " * 40_000,
        "DE89 " * 100_000,  # IBAN-shaped runs, each validated a bounded number of times
        "555-123-4567 " * 70_000,
        "my password is hunter2 " * 40_000,
    ],
)
def test_pathological_repeats_stay_fast(text: str) -> None:
    start = time.perf_counter()
    redact(text)
    assert time.perf_counter() - start < 3.0


def test_many_pem_headers_without_end_stay_linear() -> None:
    text = "-----BEGIN RSA PRIVATE KEY-----\n" * 30_000
    start = time.perf_counter()
    redact(text)
    assert time.perf_counter() - start < 3.0


# ---------------------------------------------------------------------------- IBANs


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "GB82 WEST 1234 5698 7654 32",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "BE68539007547034",
        "CH9300762011623852957",
        "de89370400440532013000",
    ],
)
def test_iban_redacted(iban: str) -> None:
    r = redact(f"refund to {iban}, thanks")
    assert r.text == "refund to [iban], thanks"
    assert r.kinds == ["iban"]


def test_iban_followed_by_a_number_keeps_the_number() -> None:
    assert redact("IBAN DE89 3704 0044 0532 0130 00 2 days ago").text == "IBAN [iban] 2 days ago"
    assert redact("IBAN DE89370400440532013000 12 days").text == "IBAN [iban] 12 days"


@pytest.mark.parametrize(
    "text",
    [
        "IBAN DE00 1234 5678 9012 3456 78 was rejected",  # bad check digits
        "DE89370400440532013001 looks close",  # checksum fails
        "GB82WEST1234569876543 is one short",  # wrong length for GB
        "md5 d41d8cd98f00b204e9800998ecf8427e and AB12CDEF34567890ABCDEF",
        "SKU XY12 3456 7890 1234 in stock",
    ],
)
def test_iban_look_alikes_untouched(text: str) -> None:
    assert_untouched(text)


# ----------------------------------------------------------------------------- SSNs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my SSN is 123-45-6789.", "my SSN is [ssn]."),
        ("the form shows 219-09-9999 in plain text", "the form shows [ssn] in plain text"),
        ("SSN: 123456789", "SSN: [ssn]"),
        ("social security number 123 45 6789", "social security number [ssn]"),
        ("SSN#: 078 05 1121", "SSN#: [ssn]"),
        ("SSNs 123-45-6789,234-56-7890", "SSNs [ssn],[ssn]"),
    ],
)
def test_ssn_redacted(text: str, expected: str) -> None:
    r = redact(text)
    assert r.text == expected
    assert r.kinds == ["ssn"]


@pytest.mark.parametrize(
    "text",
    [
        "SSN 000-12-3456 is invalid",  # area 000
        "SSN 666-12-3456 is invalid",  # area 666
        "SSN 900-12-3456 is invalid",  # area 9xx
        "SSN 123-00-4567 is invalid",  # group 00
        "SSN 123-45-0000 is invalid",  # serial 0000
        "order 123456789 and 123 45 6789 without context",
        "part 123-45-6789 is out of stock",
        "ticket #123-45-6789",
        "ORD-123-45-6789",
        "phone 1 123-45-6789 12",
    ],
)
def test_ssn_look_alikes_untouched(text: str) -> None:
    assert "[ssn]" not in redact(text).text


# ------------------------------------------------------------- percent-encoded emails


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email=jane%40example.com&x=1", "email=[email]&x=1"),
        (
            "https://app.example.com/invite?e=jane.doe%2Btag%40example.co.uk&src=mail",
            "https://app.example.com/invite?e=[email]&src=mail",
        ),
        ("mailto:JOHN%40EXAMPLE.ORG", "mailto:[email]"),
    ],
)
def test_percent_encoded_email_redacted(text: str, expected: str) -> None:
    r = redact(text)
    assert r.text == expected
    assert r.kinds == ["email"]


@pytest.mark.parametrize(
    "text",
    [
        "search?q=%40alice",
        "git clone git@github.com:example/app.git",
        "100%40 of them",
        "next=%2Fsettings%2Fbilling",
    ],
)
def test_email_look_alikes_with_at_signs_untouched(text: str) -> None:
    assert_untouched(text)


# ---------------------------------------------------------- version numbers vs addresses


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3.4",
        "since version 1.2.3.4 the export hangs",
        "v1.2.3.4",
        "release 10.0.0.1 still has the bug",
        "upgraded from version 1.2.3.4 to 1.2.3.5",
        "build 1.0.0.12 crashes, 1.0.0.11 was fine",
        "firmware 3.1.0.7 bricked it",
        "pip install foo==1.2.3.4",
        "stuck on 10.0.0.1-beta because 10.0.0.2 breaks SSO",
        "the 2.4.1.0 installer hangs",
        "Version: 4.2.0.15",
    ],
)
def test_four_part_versions_are_not_addresses(text: str) -> None:
    assert_untouched(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect to 10.1.2.3 failed", "connect to [ip] failed"),
        ("ssh root@10.0.0.5", "ssh root@[ip]"),
        (
            "version 2.1 of the app cannot reach 10.0.0.1",
            "version 2.1 of the app cannot reach [ip]",
        ),
        ("build failed on 192.168.1.20\nversion 3", "build failed on [ip]\nversion 3"),
        ("release notes\n10.0.0.1 refuses connections", "release notes\n[ip] refuses connections"),
    ],
)
def test_addresses_near_version_words_stay_redacted(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    ["order 555-123-4567 never arrived", "build 555-010-2024 passed QA", "ticket 020 7946 0958"],
)
def test_ids_shaped_like_phones_untouched(text: str) -> None:
    assert_untouched(text)


# ------------------------------------------------------------------------------ spans


def test_spans_point_into_the_input() -> None:
    text = "mail jane@example.com, db postgres://app:S3cretPw@10.1.2.3/db, card 4111 1111 1111 1111"
    r = redact(text)
    assert r.text == "mail [email], db postgres://[secret]@[ip]/db, card [card]"
    assert [(text[s.start : s.end], s.kind) for s in r.spans] == [
        ("jane@example.com", "email"),
        ("app:S3cretPw", "secret"),
        ("10.1.2.3", "ip"),
        ("4111 1111 1111 1111", "card"),
    ]
    assert isinstance(r.spans[0], PiiSpan)
    assert redact(r.text).spans == ()


def test_spans_survive_a_second_pass() -> None:
    # The card is only found in the second pass, after the IPv6 before it is a placeholder.
    text = "::1 4111 1111 1111 1111"
    r = redact(text)
    assert [(text[s.start : s.end], s.kind) for s in r.spans] == [
        ("::1", "ip"),
        ("4111 1111 1111 1111", "card"),
    ]


def _rebuild(text: str, spans: tuple[PiiSpan, ...]) -> str:
    out, last = [], 0
    for span in spans:
        out += [text[last : span.start], f"[{span.kind}]"]
        last = span.end
    return "".join(out) + text[last:]


def test_every_kind_is_known_and_reported() -> None:
    assert set(PII_KINDS) == {"card", "email", "iban", "ip", "phone", "secret", "ssn"}
    text = (
        "mail jane@example.com, call +1 555 123 4567, card 4111 1111 1111 1111, host 10.1.2.3, "
        "key sk_live_4eC39HqLyjWDarjtT1zdp7dc, IBAN DE89370400440532013000, SSN 123-45-6789"
    )
    r = redact(text)
    assert r.kinds == sorted(PII_KINDS)
    assert _rebuild(text, r.spans) == r.text


# ---------------------------------------------------------------------- performance


@pytest.mark.parametrize(
    "kind",
    ["prose", "digits", "alnum", "colons", "dots", "upper", "urls", "secrets"],
)
def test_one_megabyte_redacts_quickly(kind: str) -> None:
    rng = random.Random(7)
    para = (
        "The export crashes on 3.12.1 since 2026-11-28 at 12:30. Mail jane@example.com "
        "or +1 555 123 4567, card 4111 1111 1111 1111, ip 10.0.0.1, token=abc123def456, "
        "std::vector fe80::1 HTTP 404 #12345. "
    )
    alphabets = {
        "digits": "0123456789 -.+()",
        "alnum": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "colons": "0123456789abcdef:",
        "dots": "0123456789.",
        "upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ",  # IBAN-shaped runs
        "urls": "ab1:/@%40.-_ ",  # URL credentials, percent-encoded e-mails
        "secrets": "-BEGIN PRIVATE KEY:pw= is1\n",  # PEM headers, prose passwords
    }
    if kind == "prose":
        text = (para * (1_000_000 // len(para) + 1))[:1_000_000]
    else:
        text = "".join(rng.choices(alphabets[kind], k=1_000_000))
    start = time.perf_counter()
    redact(text)
    elapsed = time.perf_counter() - start
    # Typically ~0.3 s; the bound is loose for slow CI but catches catastrophic backtracking.
    assert elapsed < 3.0, f"{kind}: {elapsed:.2f}s"


# ------------------------------------------------------------------------ properties

_FRAGMENTS = [
    "a@b.co",
    "x.y+z@mail.example.org",
    "+1 555 123 4567",
    "(555) 123-4567",
    "020 7946 0958",
    "4111 1111 1111 1111",
    "4111111111111111",
    "192.168.0.1",
    "1.2.3",
    "::1",
    "fe80::1",
    "2001:db8::",
    "std::vector",
    "12:30",
    "token=",
    "password: ",
    '"api_key": "',
    "abc123def456",
    "Bearer ",
    "xoxb-",
    "ghp_",
    "sk-",
    "AKIA",
    "eyJ",
    "phone: ",
    "call me at ",
    "1234567890",
    "0",
    "1",
    "[email]",
    "[secret]",
    "[phone]",
    "[iban]",
    "[ssn]",
    "postgres://",
    "app:pw@",
    "https://hooks.slack.com/services/",
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "-----END RSA PRIVATE KEY-----",
    "Authorization: Basic ",
    "dXNlcjpwYXNz",
    "my password is ",
    "pw: ",
    "sk_live_",
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "SSN ",
    "%40",
    "version ",
    "10.0.0.1",
    "git@",
    " ",
    ".",
    ":",
    "-",
    "@",
    "=",
    "+",
    "(",
    '"',
]

_messy_text = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=12), max_size=25).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), _messy_text))
def test_redact_is_idempotent_and_total(text: str) -> None:
    first = redact(text)
    assert isinstance(first.text, str)
    assert first.kinds == sorted(set(first.kinds))
    second = redact(first.text)
    assert second.text == first.text
    # Each span is where one placeholder came from: putting them back gives the output.
    assert all(0 <= s.start < s.end <= len(text) for s in first.spans)
    assert all(a.end <= b.start for a, b in zip(first.spans, first.spans[1:], strict=False))
    assert _rebuild(text, first.spans) == first.text


_emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.from_regex(r"[a-z0-9]([a-z0-9._+-]{0,15}[a-z0-9])?", fullmatch=True),
    st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), min_size=1),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(email=_emails, before=st.text(max_size=30), after=st.text(max_size=30))
def test_generated_email_never_survives(email: str, before: str, after: str) -> None:
    out = redact(f"{before} {email} {after}").text
    assert email not in out


@st.composite
def _cards(draw: st.DrawFn) -> tuple[str, str]:
    length = draw(st.integers(min_value=13, max_value=19))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    digits = luhn_complete(body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return digits, sep.join(groups)


_no_digit_text = st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=30)


@settings(max_examples=200, deadline=None)
@given(card=_cards(), before=_no_digit_text, after=_no_digit_text)
def test_generated_card_never_survives(card: tuple[str, str], before: str, after: str) -> None:
    digits, formatted = card
    out = redact(f"{before} {formatted} {after}").text
    assert formatted not in out
    assert digits not in out.replace(" ", "").replace("-", "")


# ------------------------------------------------------------------------ clean_text


def test_clean_text_accepts_and_normalises() -> None:
    assert clean_text("  hello world \n", 100) == "hello world"
    # NFD "é" (e + combining acute) becomes the single NFC code point.
    assert clean_text("caf\u0065\u0301", 100) == "caf\u00e9"
    assert clean_text("line one\nline two\ttab\r\n", 100) == "line one\nline two\ttab"
    assert clean_text("\ufeff\u200bzero width edges\u200b", 100) == "zero width edges"


def test_clean_text_accepts_valid_utf8_bytes() -> None:
    assert clean_text("naïve café ✓".encode(), 100) == "naïve café ✓"
    assert clean_text(b"  plain ascii  ", 100) == "plain ascii"


@pytest.mark.parametrize("raw", ["", "   ", "\n\t  \r\n", b"", b"   ", "\u200b\ufeff"])
def test_clean_text_empty(raw: str | bytes) -> None:
    with pytest.raises(InputError, match=r"^empty feedback text$"):
        clean_text(raw, 100)


def test_clean_text_invalid_utf8() -> None:
    with pytest.raises(InputError, match=r"^binary content: not valid UTF-8 text$"):
        clean_text(b"\xff\xfe\x00", 100)
    with pytest.raises(InputError, match="binary content"):
        clean_text(b"abc\xc3(", 100)


@pytest.mark.parametrize("raw", ["abc\x00def", b"abc\x00def", "abc\x00\x00def", "\x00abcdef"])
def test_clean_text_removes_nul_from_real_text(raw: str | bytes) -> None:
    assert clean_text(raw, 100) == "abcdef"


def test_clean_text_keeps_a_pasted_terminal_log() -> None:
    log = (
        "Export fails:\n\x1b[31mERROR\x1b[0m worker\x00 died\r\n"
        "\x1b]0;tmux\x07exit code 137\tsee above\x7f\x85next line"
    )
    assert clean_text(log, 500) == (
        "Export fails:\nERROR worker died\r\nexit code 137\tsee above\nnext line"
    )


def test_clean_text_removes_invisible_controls_but_keeps_text_and_emoji() -> None:
    # Bidi overrides (the "Trojan Source" trick), C1 controls and tag characters (invisible
    # text, a prompt-injection vector) go; ZWJ emoji and a subdivision flag stay.
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    raw = f"pay \u202eevil\u202c now\x9b {family} {scotland} hi\U000e0041\U000e0042"
    assert clean_text(raw, 500) == f"pay evil now {family} {scotland} hi"
    assert clean_text("line\u2028two\u2029three", 100) == "line\ntwo\nthree"


@pytest.mark.parametrize(
    "raw",
    ["\x00", b"\x00\x00\x00", "\x01\x02\x03ab", b"\x00\x01\x02\x03\x04\x05\x06abc", "\u202e\u202e"],
)
def test_clean_text_mostly_controls_is_binary(raw: str | bytes) -> None:
    with pytest.raises(InputError, match=r"^binary content: mostly control characters, not text$"):
        clean_text(raw, 100)


def test_clean_text_binary_threshold() -> None:
    # 3 of 11 characters (27%) are controls: still text, cleaned.
    assert clean_text("ab\x01\x02\x03cdefgh", 100) == "abcdefgh"
    # 4 of 12 (33%): binary.
    with pytest.raises(InputError, match="binary content"):
        clean_text("ab\x01\x02\x03\x04cdefgh", 100)


def test_clean_text_empty_after_cleaning_is_an_error() -> None:
    with pytest.raises(InputError, match=r"^empty feedback text$"):
        clean_text("   \x00   \t  ", 100)


def test_clean_text_oversize_reports_exact_bytes() -> None:
    text = "é" * 30  # 60 UTF-8 bytes
    with pytest.raises(InputError) as exc:
        clean_text(text, 59)
    assert str(exc.value) == "feedback text is 60 bytes, over the 59-byte limit"
    assert clean_text(text, 60) == text
    with pytest.raises(InputError, match=r"^feedback text is 101 bytes, over the 100-byte limit$"):
        clean_text(b"x" * 101, 100)


def test_clean_text_limit_counts_cleaned_text() -> None:
    assert clean_text("   " + "x" * 10 + "   ", 10) == "x" * 10


def test_input_error_is_value_error() -> None:
    assert issubclass(InputError, ValueError)


# --------------------------------------------------------------------- noise_signals


@pytest.mark.parametrize(
    "text",
    [
        "The export button crashes when I click it twice.",
        "Please add dark mode to the settings page, my eyes hurt at night.",
        "Login fails with error 500 on https://app.example.com/login",
        "应用程序在我点击导出按钮时崩溃",
    ],
)
def test_noise_signals_empty_for_normal_feedback(text: str) -> None:
    assert noise_signals(text) == []


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("ok", "very_short"),
        ("thanks!", "very_short"),
        ("123 456 !!! ???", "no_letters"),
        ("this is sooooooooo bad", "repeated_chars"),
        ("why does it crash!!!!!!", "repeated_chars"),
        ("asdf asdf asdf", "keyboard_mash"),
        ("qwerty uiop zxcv", "keyboard_mash"),
        ("jkl; jkl; jkl;", "keyboard_mash"),
        ("see https://a.example and https://b.example for more", "many_links"),
        ("great post, check out my channel for more", "promo"),
        ("cheap backlinks and SEO services available", "promo"),
        ("best online casino bonus here", "promo"),
        ("use discount code SAVE20 today", "promo"),
        ("THIS APP IS COMPLETELY BROKEN AGAIN", "all_caps"),
    ],
)
def test_noise_signal_detected(text: str, signal: str) -> None:
    assert signal in noise_signals(text)


def test_noise_signals_negatives() -> None:
    assert "all_caps" not in noise_signals("The API returns HTTP 500 on GET requests today")
    assert "all_caps" not in noise_signals("OK FINE")  # too few letters to judge
    assert "many_links" not in noise_signals("see https://a.example for details please")
    assert "repeated_chars" not in noise_signals("cost went from 1000000 to 2000000 -------")
    assert "keyboard_mash" not in noise_signals("the property page is broken")
    assert "promo" not in noise_signals("the search engine ranking feature is slow")
