"""Writes `corpus.jsonl`, the labelled PII corpus `triage-bot bench redaction` scores.

Every row is feedback as people send it (bug reports, billing complaints, pasted configs
and logs), written for this project as templates and filled from a fixed seed, so the
file is the same on every run: `python -m benchmarks.pii.generate`. No value is a real
person's: names are common first and last names, domains are reserved (`example.*`),
phone numbers are in fictional ranges (555-01xx, Ofcom's drama ranges), card numbers,
IBANs and keys are random with valid checksums and formats.

A row is `{"id", "text", "pii": [{"start", "end", "kind", "case"}], "negative"}`: `pii`
lists what must be redacted (offsets into `text`, `kind` as `redact` names it, `case`
the variant, for per-case recall); clean rows have no `pii` and name the kind of hard
negative they carry (`negative`: version numbers, order numbers, dates, hashes, ...).
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stdnum import iban as iban_check
from stdnum import luhn

SEED = 20261202
CORPUS = Path(__file__).with_name("corpus.jsonl")

# A slot value is a list of segments: plain text, or (text, kind, case) to be redacted.
Segment = str | tuple[str, str, str]
Value = list[Segment]

FIRST = [
    "jane",
    "john",
    "maria",
    "ahmed",
    "li",
    "wei",
    "sofia",
    "lukas",
    "emma",
    "noah",
    "olivia",
    "liam",
    "priya",
    "omar",
]
LAST = [
    "doe",
    "smith",
    "garcia",
    "khan",
    "chen",
    "wang",
    "rossi",
    "muller",
    "jones",
    "brown",
    "patel",
    "silva",
    "novak",
]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.co.uk", "corp.example.io"]
WORDS = ["sunshine", "dragon", "monkey", "letmein", "football", "princess", "shadow", "master"]


def _luhn_complete(body: str) -> str:
    return body + luhn.calc_check_digit(body)


class Values:
    """Random PII values of every kind and case, from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def _alnum(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def name(self) -> tuple[str, str]:
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    # -- email
    def email(self) -> Value:
        first, last = self.name()
        domain = self.rng.choice(DOMAINS)
        local = self.rng.choice(
            [
                f"{first}.{last}",
                f"{first}{self.rng.randint(1, 99)}",
                f"{first[0]}{last}",
                f"{first}.{last}+support",
                f"{first}_{last}",
            ]
        )
        if self.rng.random() < 0.15:
            local, domain = local.capitalize(), domain.upper()
        return [(f"{local}@{domain}", "email", "plain")]

    def email_percent(self) -> Value:
        first, last = self.name()
        encoded = f"{first}.{last}%40{self.rng.choice(DOMAINS)}"
        path = self.rng.choice(["invite", "unsubscribe", "reset", "account/verify"])
        return [
            f"https://app.example.com/{path}?email=",
            (encoded, "email", "percent"),
            "&src=mail",
        ]

    def email_obfuscated(self) -> Value:
        first, last = self.name()
        return [(f"{first}.{last} at example dot com", "email", "obfuscated")]

    # -- phone
    def phone(self) -> Value:
        r = self.rng
        n4, n3 = self._digits(4), f"01{r.randint(0, 9)}"
        shape = r.choice(
            [
                f"+1 555 {n3} {n4}",
                f"(555) {n3}-{n4}",
                f"555-{n3}-{n4}",
                f"555.{n3}.{n4}",
                f"1-555-{n3}-{n4}",
                f"+44 20 7946 0{self._digits(3)}",
                f"020 7946 0{self._digits(3)}",
                f"+44 7700 900{self._digits(3)}",
                f"07700 900{self._digits(3)}",
                f"+49 30 {self._digits(8)}",
                f"+33 6 {self._digits(2)} {self._digits(2)} {self._digits(2)} {self._digits(2)}",
                f"06 {self._digits(2)} {self._digits(2)} {self._digits(2)} {self._digits(2)}",
                f"+91 98765 {self._digits(5)}",
                f"+61 4 {self._digits(4)} {self._digits(4)}",
            ]
        )
        return [(shape, "phone", "formatted")]

    def phone_context(self) -> Value:
        lead = self.rng.choice(["phone: ", "call me at ", "mobile ", "tel. no. ", "whatsapp "])
        return [lead, (f"555{self.rng.randint(100, 199)}{self._digits(4)}", "phone", "bare")]

    def phone_hard(self) -> Value:
        shape = self.rng.choice(
            [
                f"+49 (0)30 {self._digits(7)}",
                f"0049 30 {self._digits(7)}",
                f"+1-555-01{self._digits(1)}-{self._digits(4)}",
                f"555 01{self._digits(1)} {self._digits(4)}",
            ]
        )
        return [(shape, "phone", "hard")]

    # -- card
    def card(self) -> Value:
        r = self.rng
        kind = r.choice(["visa", "mc", "amex", "discover"])
        if kind == "amex":
            digits = _luhn_complete(r.choice(["34", "37"]) + self._digits(12))
            groups = [digits[:4], digits[4:10], digits[10:]]
        else:
            head = {"visa": "4", "mc": str(r.randint(51, 55)), "discover": "6011"}[kind]
            digits = _luhn_complete(head + self._digits(15 - len(head)))
            groups = [digits[i : i + 4] for i in range(0, 16, 4)]
        sep = r.choice([" ", "-", ""])
        return [(sep.join(groups), "card", "luhn")]

    # -- ip
    def ipv4(self) -> Value:
        r = self.rng
        first = r.choice([10, 172, 192, 203, 198, 34, 52, 81])
        addr = f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
        return [(addr, "ip", "v4")]

    def ipv6(self) -> Value:
        r = self.rng
        groups = [f"{r.randint(0, 0xFFFF):x}" for _ in range(3)]
        shape = r.choice(
            [
                f"2001:db8::{groups[0]}",
                f"2001:db8:{groups[0]}:{groups[1]}::{groups[2]}",
                f"fe80::{groups[0]}:{groups[1]}",
                "::1",
                "2001:0db8:" + ":".join(f"{r.randint(0, 0xFFFF):04x}" for _ in range(6)),
            ]
        )
        return [(shape, "ip", "v6")]

    # -- iban
    def iban(self) -> Value:
        r = self.rng
        formats: dict[str, Callable[[], str]] = {
            "DE": lambda: self._digits(18),
            "GB": lambda: r.choice(["WEST", "BARC", "NWBK", "MIDL"]) + self._digits(14),
            "NL": lambda: r.choice(["ABNA", "INGB", "RABO"]) + self._digits(10),
            "FR": lambda: (
                self._digits(10)
                + self._alnum(11, string.ascii_uppercase + string.digits)
                + self._digits(2)
            ),
            "ES": lambda: self._digits(20),
            "IT": lambda: r.choice(string.ascii_uppercase) + self._digits(10) + self._digits(12),
            "BE": lambda: self._digits(12),
            "CH": lambda: self._digits(5) + self._digits(12),
            "AT": lambda: self._digits(16),
            "PL": lambda: self._digits(24),
        }
        country = r.choice(sorted(formats))
        for _ in range(10_000):
            bban = formats[country]()
            number = country + iban_check.calc_check_digits(country + "00" + bban) + bban
            if iban_check.is_valid(number):
                break
        else:  # pragma: no cover - every format above is reachable
            raise RuntimeError(f"no valid {country} IBAN generated")
        style = r.random()
        if style < 0.45:
            text, case = " ".join(number[i : i + 4] for i in range(0, len(number), 4)), "spaced"
        elif style < 0.95:
            text, case = number, "compact"
        else:
            text, case = number.lower(), "lowercase"
        return [(text, "iban", case)]

    # -- ssn
    def _ssn_digits(self) -> tuple[str, str, str]:
        r = self.rng
        area = r.choice([n for n in range(1, 900) if n != 666])
        return f"{area:03d}", f"{r.randint(1, 99):02d}", f"{r.randint(1, 9999):04d}"

    def ssn(self) -> Value:
        a, g, s = self._ssn_digits()
        return [(f"{a}-{g}-{s}", "ssn", "dashed")]

    def ssn_context(self) -> Value:
        a, g, s = self._ssn_digits()
        lead = self.rng.choice(["SSN ", "my SSN is ", "social security number ", "SSN#: "])
        value = self.rng.choice([f"{a} {g} {s}", f"{a}{g}{s}"])
        return [lead, (value, "ssn", "context")]

    # -- secrets
    def password(self) -> str:
        r = self.rng
        word = r.choice(WORDS).capitalize() if r.random() < 0.5 else r.choice(WORDS)
        return (
            word + r.choice(["1", "42", "2024", "!", "#1", "_99", "$"]) + r.choice(["", "!", "7"])
        )

    def url_credentials(self) -> Value:
        r = self.rng
        scheme = r.choice(["postgres", "postgresql", "mysql", "mongodb", "redis", "amqp", "https"])
        user = r.choice(["app", "admin", "svc_billing", "root", "deploy"])
        pw = r.choice([self.password(), self._alnum(14), "S3cret@Pw" + self._digits(2)])
        host: Value = (
            self.ipv4()
            if r.random() < 0.5
            else [r.choice(["db", "cache", "mq"]) + ".internal.example.com"]
        )
        port = r.choice(["", ":5432", ":6379", ":27017"])
        return [
            f"{scheme}://",
            (f"{user}:{pw}", "secret", "url_credentials"),
            "@",
            *host,
            f"{port}/{r.choice(['prod', 'app', 'billing'])}",
        ]

    def prose_password(self) -> Value:
        lead = self.rng.choice(
            [
                "my password is ",
                "the password is ",
                "password was changed to ",
                "pw: ",
                "pwd=",
                "passcode is ",
                "Password: ",
                "my pw is ",
            ]
        )
        return [lead, (self.password(), "secret", "prose_password")]

    def prose_password_word(self) -> Value:
        lead = self.rng.choice(["my password is ", "the password is ", "password was set to "])
        return [lead, (self.rng.choice(WORDS), "secret", "prose_password_word")]

    def pin(self) -> Value:
        lead = self.rng.choice(["PIN: ", "my PIN is ", "pin="])
        return [lead, (self._digits(4), "secret", "pin")]

    def basic_auth(self) -> Value:
        first, _ = self.name()
        token = base64.b64encode(f"{first}:{self.password()}".encode()).decode()
        if self.rng.random() < 0.6:
            return ["Authorization: Basic ", (token, "secret", "basic_auth")]
        return [
            "curl -u ",
            (f"{first}:{self.password()}", "secret", "basic_auth"),
            " https://api.example.com/v1/orders",
        ]

    def bearer(self) -> Value:
        token = self._alnum(32, string.ascii_letters + string.digits + "-_.")
        return ["Authorization: Bearer ", (token, "secret", "bearer")]

    def stripe(self) -> Value:
        prefix = self.rng.choice(["sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"])
        return [(prefix + self._alnum(self.rng.choice([24, 32, 99])), "secret", "stripe")]

    def slack_webhook(self) -> Value:
        path = (
            f"T{self._alnum(10, string.ascii_uppercase + string.digits)}/B"
            + self._alnum(10, string.ascii_uppercase + string.digits)
            + "/"
            + self._alnum(24)
        )
        if self.rng.random() < 0.8:
            return ["https://hooks.slack.com/services/", (path, "secret", "webhook_url")]
        digits = self._digits(18)
        return [
            "https://discord.com/api/webhooks/",
            (f"{digits}/{self._alnum(68)}", "secret", "webhook_url"),
        ]

    def pem(self) -> Value:
        label = self.rng.choice(
            [
                "RSA PRIVATE KEY",
                "PRIVATE KEY",
                "EC PRIVATE KEY",
                "OPENSSH PRIVATE KEY",
                "ENCRYPTED PRIVATE KEY",
            ]
        )
        alphabet = string.ascii_letters + string.digits + "+/"
        lines = [self._alnum(64, alphabet) for _ in range(self.rng.randint(3, 8))]
        lines.append(self._alnum(self.rng.randint(8, 40), alphabet) + "==")
        body = "\n".join(lines)
        return [(f"-----BEGIN {label}-----\n{body}\n-----END {label}-----", "secret", "pem")]

    def token(self) -> Value:
        r = self.rng
        shape = r.choice(
            [
                "xoxb-" + self._digits(12) + "-" + self._digits(13) + "-" + self._alnum(24),
                "xoxp-" + self._digits(12) + "-" + self._alnum(20),
                "ghp_" + self._alnum(36),
                "github_pat_11" + self._alnum(20) + "_" + self._alnum(59),
                "glpat-" + self._alnum(20),
                "AKIA" + self._alnum(16, string.ascii_uppercase + string.digits),
                "AIza" + self._alnum(35, string.ascii_letters + string.digits + "-_"),
                "sk-proj-" + self._alnum(40),
                "npm_" + self._alnum(36),
                "eyJhbGciOiJIUzI1NiJ9."
                + base64.urlsafe_b64encode(f'{{"sub":"{self._digits(6)}"}}'.encode())
                .decode()
                .rstrip("=")
                + "."
                + self._alnum(43),
            ]
        )
        return [(shape, "secret", "token")]

    def assignment(self) -> Value:
        r = self.rng
        key = r.choice(
            ["api_key", "API_KEY", "client_secret", "DB_PASSWORD", "access_token", "SECRET_KEY"]
        )
        value = self._alnum(r.randint(16, 40)) + self._digits(2)
        style = r.choice(["env", "json", "yaml"])
        if style == "env":
            return [f"{key}=", (value, "secret", "assignment")]
        if style == "json":
            return [f'"{key}": "', (value, "secret", "assignment"), '"']
        return [f"{key.lower()}: ", (value, "secret", "assignment")]


# ------------------------------------------------------------------------- templates
# `{pii}` is the slot; the other fields are filler with harmless look-alikes.
PII_TEMPLATES: dict[str, list[str]] = {
    "email": [
        "Please reset the account for {pii}, I can't log in since the 3.12.1 update.",
        "Invoices go to {pii} but they bounce. Order #100234 from 2026-11-02.",
        "Hi, this is {name} ({pii}). The export button does nothing on Safari 17.",
        "Can you add {pii} as a second admin? We're on the Team plan.",
        "Weekly digest still goes to my old address {pii} after changing it on 12/11/2026.",
        "Contact: {pii}\nSteps: open Settings > Billing, click Download, nothing happens.",
        "Bug: the invite to {pii} expired after 10 minutes instead of 7 days.",
    ],
    "email_percent": [
        "The link {pii} opens a blank page in Firefox 121.",
        "Clicking the unsubscribe link ({pii}) gives a 404.",
        "Got this URL in the mail: {pii} and it says 'token expired'.",
    ],
    "email_obfuscated": [
        "Write to me at {pii} if you need logs.",
        "you can reach me: {pii}",
    ],
    "phone": [
        "Please call me back on {pii}, the chat support never answers.",
        "My number changed to {pii} but SMS codes still go to the old one.",
        "Delivery driver couldn't reach me at {pii}. Order 5551234 arrived late.",
        "Contact {name}, {pii}, about the broken invoice PDF (page 3 of 12).",
        "2FA texts to {pii} arrive 5 minutes late, codes expire after 30 seconds.",
    ],
    "phone_context": [
        "Support asked for my number: {pii}. Still no callback after 3 days.",
        "{pii} - please call, urgent, payments failing since 09:15.",
    ],
    "phone_hard": [
        "Our office line is {pii}, ask for billing.",
        "Reach the warehouse on {pii} for the missing pallet.",
    ],
    "card": [
        "I was charged twice on card {pii} for order #48213, total $129.99.",
        "Checkout rejects my card {pii} with 'invalid number' even though it works elsewhere.",
        "Refund to {pii} never arrived (ticket 20455, opened 2026-10-30).",
        "Saved card ending... actually the full number is {pii}, please remove it.",
    ],
    "ipv4": [
        "Connection to {pii} timed out from the EU region, worked on v2.4.1.",
        "Our firewall blocks your webhook sender {pii}, please publish your IP ranges.",
        "ssh deploy@{pii} fails since the 1.8.0 agent update.",
        "Health check http://{pii}:8080/health returns 503 every 5 minutes.",
        "The login page shows 'blocked: {pii}' for our whole office.",
    ],
    "ipv6": [
        "The API refuses requests from {pii} with 403.",
        "DNS resolves to {pii} and then the TLS handshake fails.",
        "Rate limit hits our IPv6 gateway {pii} after 100 requests.",
    ],
    "iban": [
        "Please refund to my IBAN {pii}, the card has expired.",
        "Payout failed for account {pii} although the details are correct.",
        "Direct debit from {pii} was taken twice this month (invoice INV-2026-0042).",
        "New bank details: {pii}. Please update before the 28th.",
    ],
    "ssn": [
        "The tax form shows my SSN {pii} in plain text on the PDF.",
        "Onboarding asks for {pii} again every time I log in.",
        "W-9 upload failed; the form already had {pii} filled in.",
    ],
    "ssn_context": [
        "Verification keeps failing, {pii} is correct, I checked twice.",
        "Why does the payroll export include {pii} for every employee?",
    ],
    "url_credentials": [
        "After the migration the worker logs `connect {pii}` and crashes.",
        "Our config has DATABASE_URL={pii} and the importer ignores it.",
        "Error: could not connect to {pii} (timeout after 30s)",
    ],
    "prose_password": [
        "I can't log in even though {pii} is what I set yesterday.",
        "Login loops back to the start page. FYI {pii}, user is jdoe.",
        "Support asked me to send it here: {pii}. Please fix the lockout.",
        "{pii} and it still says wrong credentials after the 2.3.0 update.",
    ],
    "prose_password_word": [
        "Login fails; {pii} and the account is jdoe, nothing special.",
        "I told the agent {pii} but the reset never came.",
    ],
    "pin": [
        "The kiosk doesn't accept {pii} although it worked last week.",
        "Card app locked me out, {pii}, tried it three times.",
    ],
    "basic_auth": [
        "The webhook call fails with 401, we send {pii} as documented.",
        "Reproduce with:\n{pii}\nIt returns 500 since 10:40 UTC.",
    ],
    "bearer": [
        "Request headers: {pii} and Content-Type: application/json, still 401.",
        "Logged request:\nGET /api/v2/items HTTP/1.1\n{pii}\nAccept: */*",
    ],
    "stripe": [
        "Your docs example with {pii} returns 'No such customer'.",
        "We rotated keys; the dashboard still uses {pii} for charges.",
        "STRIPE_KEY is {pii} in our staging env, payments fail with 402.",
    ],
    "webhook_url": [
        "Notifications to {pii} stopped after Tuesday's release.",
        "Integration setup: webhook {pii}, channel #alerts, nothing arrives.",
    ],
    "pem": [
        "The SSO setup rejects our key:\n{pii}\nError: unsupported key format.",
        "Pasting the key from the guide:\n{pii}\nthe upload says 'invalid file'.",
    ],
    "token": [
        "The CLI prints {pii} in the debug log, is that safe?",
        "Auth with {pii} gives 'bad credentials' since this morning.",
        "Found this in the crash report: token={pii}",
    ],
    "assignment": [
        "Config that fails to load:\n{pii}\nregion = eu-west-1",
        "Our .env has {pii} and the service still reads the old one.",
    ],
}

# Value generator for each template group.
GENERATORS: dict[str, str] = {
    "email": "email",
    "email_percent": "email_percent",
    "email_obfuscated": "email_obfuscated",
    "phone": "phone",
    "phone_context": "phone_context",
    "phone_hard": "phone_hard",
    "card": "card",
    "ipv4": "ipv4",
    "ipv6": "ipv6",
    "iban": "iban",
    "ssn": "ssn",
    "ssn_context": "ssn_context",
    "url_credentials": "url_credentials",
    "prose_password": "prose_password",
    "prose_password_word": "prose_password_word",
    "pin": "pin",
    "basic_auth": "basic_auth",
    "bearer": "bearer",
    "stripe": "stripe",
    "webhook_url": "slack_webhook",
    "pem": "pem",
    "token": "token",
    "assignment": "assignment",
}
# Rows per group: the common kinds more often, the variants we know are hard fewer.
ROWS: dict[str, int] = {
    "email": 40,
    "email_percent": 12,
    "email_obfuscated": 5,
    "phone": 40,
    "phone_context": 10,
    "phone_hard": 8,
    "card": 30,
    "ipv4": 30,
    "ipv6": 12,
    "iban": 30,
    "ssn": 18,
    "ssn_context": 12,
    "url_credentials": 18,
    "prose_password": 20,
    "prose_password_word": 6,
    "pin": 6,
    "basic_auth": 12,
    "bearer": 10,
    "stripe": 15,
    "webhook_url": 10,
    "pem": 8,
    "token": 20,
    "assignment": 12,
}

MIXED_TEMPLATES = [
    "Hi, I'm {name} ({email}, {phone}). Card {card} was charged twice for order #7781.",
    "Refund please: IBAN {iban}, contact {email}. Reference RMA-2026-117.",
    "Server {ipv4} logs show {url_credentials} in plain text; we're on release 4.2.0.15.",
    "Employee {name}, SSN {ssn}, phone {phone}: the payroll PDF shows all of it.",
]

# Clean rows: hard negatives only, nothing to redact.
CLEAN_TEMPLATES: dict[str, list[str]] = {
    "version": [
        "Since version 1.2.3.4 the export hangs at 99%.",
        "Broken after upgrading from v2.4.1.0 to v2.4.1.3 on Windows 11.",
        "release 10.0.0.1 still has the dark mode bug",
        "build 1.0.0.12 crashes on start, 1.0.0.11 was fine",
        "The firmware 3.1.0.7 update bricked the scanner.",
        "pip install triage-client==4.2.0.15 fails with a resolver error",
        "We're stuck on 10.0.0.1-beta because 10.0.0.2 breaks SSO.",
        "App version 2.3.0 (build 20261128) crashes when rotating the screen.",
        "Chrome 120.0.6099.109 renders the chart blank; Firefox 121.0.1 is fine.",
        "Windows 10.0.19045.3693 shows the installer in English only.",
        "Upgraded to 8.1.2.0 and the sidebar disappeared.",
    ],
    "order_number": [
        "Order 5551234567 never arrived, tracking says delivered.",
        "Invoice INV-2026-004512 is missing the VAT line.",
        "order #100234567 shows the wrong address",
        "Ticket 415-2024-88 was closed without an answer.",
        "Case number 00123456 is still open after two weeks.",
        "RMA 2026-11-000381: the replacement is also broken.",
        "PO 4500012345 was rejected by the portal.",
        "Tracking 1Z999AA10123456784 hasn't moved since Monday.",
    ],
    "date_time": [
        "It happened on 2026-11-28 at 12:30 and again on 28/11/2026 14:05:33.",
        "Outage from 09:15 to 10:45 UTC on Nov 28, 2026.",
        "The report for 01.12.2026 shows yesterday's numbers.",
        "Scheduled export at 23:59:59 runs at 00:00:01 instead.",
        "Timestamps like 2026-11-28T12:30:45.123Z are parsed as local time.",
    ],
    "hash_id": [
        "Regression since commit 3f9a2c1, reverting "
        "9fceb02d0ae598e95dc970b74767f19372d61af8 fixes it.",
        "Image digest "
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 fails to pull.",
        "Request id 123e4567-e89b-12d3-a456-426614174000 returned 500.",
        "Trace 4bf92f3577b34da6a3ce929d0e0e4736 shows the slow query.",
        "Object id 507f1f77bcf86cd799439011 can't be deleted.",
        "MD5 of the file is d41d8cd98f00b204e9800998ecf8427e, the upload says corrupt.",
    ],
    "price_amount": [
        "I was charged $1,299.00 instead of $129.90.",
        "The plan costs €49.99/month but the invoice says 1.299,00 EUR.",
        "Total 4,111.11 shown twice in the cart.",
        "Tax of 19% is added on top of the 0.99 fee.",
        "Balance shows -12,345.67 after the refund.",
    ],
    "build_number": [
        "build 20261128-1542 fails to install",
        "build 555-010-2024 is the one QA signed off",
        "Error code 0x80070005 during setup (KB5032190).",
        "Part 123-45-6789 is out of stock but the page says available.",
        "Serial 4111-2222-3333 does not activate.",
        "Model 1234567890123 is listed twice.",
    ],
    "url": [
        "https://shop.example.com/checkout?step=2&ref=mail gives a blank page.",
        "http://localhost:8080/api/v1/items returns 404 after the update.",
        "See https://medium.com/@alice/why-exports-fail-123 for the same bug.",
        "git clone git@github.com:example/app.git asks for a password",
        "The docs at https://docs.example.com/auth#basic-auth are outdated.",
        "Redirect to https://example.com/login?next=%2Fsettings%2Fbilling loops.",
        "Webhook docs: https://api.slack.com/messaging/webhooks say to use a URL.",
    ],
    "code": [
        "token = get_token()\nif token == expected_value:\n    return True",
        "password = request.form['password'] raises KeyError",
        "const pw = process.env.DB_PASSWORD; // undefined in prod",
        "def check_password(pw): return bcrypt.checkpw(pw, stored)",
        "std::vector<int> v; v.at(10); // throws std::out_of_range",
        "SELECT * FROM users WHERE id = 42 AND created_at > '2026-01-01';",
        "@app.route('/login', methods=['POST']) returns 405",
        "Authorization header is missing in the CORS preflight.",
        "curl -X POST -H 'Content-Type: application/json' https://api.example.com/v1/items",
        "docker run -u 1000:1000 -p 8080:8080 example/app:2.3.1",
    ],
    "prose": [
        "I forgot my password and the reset link is broken.",
        "The token expired after 5 minutes, please make it longer.",
        "Basic plan users can't export to CSV.",
        "Please let us pin the sidebar; the password field is too narrow.",
        "The password is wrong according to the app but it's right.",
        "Bearer of bad news: the iOS app crashes on launch.",
        "My PIN reset email never arrived.",
        "Social security office hours on the help page are wrong.",
        "Set a password policy of 12 characters minimum please.",
        "We have 42 users and 7 teams; the seat count says 49.",
        "HTTP 404 on port 8080, then 502 on :443.",
        "Screen is 1920x1080 at 125% scaling and the dialog is cut off.",
        "+1 to this request, we need SSO too.",
        "Uptime was 99.95% last month, SLA says 99.9.",
        "ISBN 978-3-16-148410-0 shows the wrong cover.",
        "Card 4111 1111 1111 1112 is a test number that fails Luhn.",
        "IBAN DE00 1234 5678 9012 3456 78 was rejected, is validation too strict?",
        "SSN field accepts 000-12-3456, it should not.",
    ],
}
CLEAN_RANDOM_ROWS = 24


class CleanValues:
    """Random hard negatives: numbers and identifiers that look like PII and are not."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _n(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def makers(self) -> dict[str, Callable[[], str]]:
        return {
            "version": self.version,
            "order_number": self.order_number,
            "date_time": self.date_time,
            "hash_id": self.hash_id,
            "price_amount": self.price,
            "build_number": self.build_number,
            "url": self.url,
            "prose": self.prose,
        }

    def version(self) -> str:
        four = f"{self._n(0, 12)}.{self._n(0, 20)}.{self._n(0, 9)}.{self._n(0, 250)}"
        three = f"{self._n(1, 9)}.{self._n(0, 30)}.{self._n(0, 15)}"
        return self.rng.choice(
            [
                f"Crash on startup with version {four} on Android 14.",
                f"After the update to {four} notifications stopped.",
                f"Release notes for v{four} don't mention the CSV fix.",
                f"Our fleet runs firmware {four}; the dashboard says unknown.",
                f"The {four} installer hangs at 'Preparing'.",
                f"Works on {three}, broken on {three}-rc1.",
                f"Regression between build {four} and build {four}.",
                f"Downgraded to {four} and it works again.",
            ]
        )

    def order_number(self) -> str:
        digits = str(self._n(10**5, 10**11))
        return self.rng.choice(
            [
                f"Order #{digits} shows as paid but not shipped.",
                f"My order {digits} arrived damaged.",
                f"Invoice no. {digits} has the wrong VAT rate.",
                f"Ticket {self._n(1000, 99999)} has been open for {self._n(2, 30)} days.",
                f"Reference {self._n(100, 999)}-{self._n(100, 999)}-{self._n(1000, 9999)} in the "
                "confirmation email doesn't work.",
                f"Tracking number {digits} is unknown to the courier.",
            ]
        )

    def date_time(self) -> str:
        y, mo, d = self._n(2019, 2027), self._n(1, 12), self._n(1, 28)
        h, mi, se = self._n(0, 23), self._n(0, 59), self._n(0, 59)
        return self.rng.choice(
            [
                f"Since {y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d} the sync is stuck.",
                f"The report dated {d:02d}/{mo:02d}/{y} is empty.",
                f"Meeting booked for {d}.{mo}.{y} at {h}:{mi:02d} shows a day later.",
                f"Log: [{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{se:02d}.{self._n(0, 999):03d}Z] "
                "ERROR worker stopped",
                f"Duration shows {h:02d}:{mi:02d}:{se:02d} for a 5 minute call.",
            ]
        )

    def hash_id(self) -> str:
        uuid = f"{self._hex(8)}-{self._hex(4)}-4{self._hex(3)}-a{self._hex(3)}-{self._hex(12)}"
        return self.rng.choice(
            [
                f"Broken since commit {self._hex(7)}.",
                f"git bisect points at {self._hex(40)}.",
                f"Session {uuid} gets logged out every minute.",
                f"Upload id {self._hex(24)} never finishes.",
                f"Checksum mismatch: expected {self._hex(64)}.",
                f"Error id {self._hex(8)}-{self._hex(4)} in the footer.",
            ]
        )

    def price(self) -> str:
        amount = f"{self._n(1, 9)},{self._n(100, 999)}.{self._n(0, 99):02d}"
        return self.rng.choice(
            [
                f"I was billed ${amount} instead of ${self._n(10, 99)}.00.",
                f"The cart total is €{amount}, the checkout says €{amount}.",
                f"Refund of {self._n(10, 999)}.{self._n(0, 99):02d} GBP is still pending.",
                f"Prices like {self._n(1, 9)}.{self._n(100, 999)},{self._n(0, 99):02d} kr are "
                "shown with the wrong separator.",
            ]
        )

    def build_number(self) -> str:
        return self.rng.choice(
            [
                f"build {self._n(2019, 2027)}{self._n(1, 12):02d}{self._n(1, 28):02d}-"
                f"{self._n(0, 2359):04d} fails the smoke test",
                f"build 555-{self._n(100, 999)}-{self._n(1000, 9999)} is what QA tested",
                f"Error 0x{self._hex(8).upper()} when saving.",
                f"Part no. {self._n(100, 999)}-{self._n(10, 99)}-{self._n(1000, 9999)} is out "
                "of stock.",
                f"Serial {self._n(1000, 9999)}-{self._n(1000, 9999)}-{self._n(1000, 9999)} "
                "won't activate.",
                f"Job {self._n(10**6, 10**9)} failed after {self._n(2, 59)} minutes.",
            ]
        )

    def url(self) -> str:
        n = self._n(1, 99999)
        return self.rng.choice(
            [
                f"https://app.example.com/projects/{n}/settings?tab=members returns 403.",
                f"http://localhost:{self._n(3000, 9000)}/ works but the LAN address does not.",
                f"The link https://example.org/search?q=export+csv&page={self._n(2, 9)} is dead.",
                f"Redirect loop on https://example.com/login?next=/orders/{n}.",
                f"Open https://docs.example.com/v{self._n(1, 4)}/api#auth and the anchor is wrong.",
            ]
        )

    def prose(self) -> str:
        return self.rng.choice(
            [
                f"We have {self._n(2, 500)} seats but only {self._n(1, 50)} show up.",
                "The password reset page says my token is invalid.",
                "Please support passkeys, passwords are a pain.",
                f"Response time went from {self._n(100, 900)} ms to "
                f"{self._n(1, 9)}.{self._n(0, 9)} s.",
                f"Page {self._n(2, 40)} of {self._n(41, 99)} is blank in the PDF export.",
                "The 2FA pin field only accepts 4 digits.",
                f"Resolution {self._n(800, 3840)}x{self._n(600, 2160)} cuts off the footer.",
                "Could you add a basic auth option for the webhook?",
                f"Bearer tokens expire after {self._n(5, 60)} minutes, that's too short.",
            ]
        )


FILL = {
    "name": lambda v: " ".join(p.capitalize() for p in v.name()),
}


def _render(template: str, slots: dict[str, Value]) -> tuple[str, list[dict[str, Any]]]:
    """Fill `{slot}`s; record the offsets of every segment that is to be redacted."""
    out: list[str] = []
    spans: list[dict[str, Any]] = []
    pos = 0
    for literal, field, _, _ in string.Formatter().parse(template):
        out.append(literal)
        pos += len(literal)
        if field is None:
            continue
        for segment in slots[field]:
            if isinstance(segment, str):
                out.append(segment)
                pos += len(segment)
                continue
            text, kind, case = segment
            spans.append({"start": pos, "end": pos + len(text), "kind": kind, "case": case})
            out.append(text)
            pos += len(text)
    return "".join(out), spans


def build(seed: int = SEED) -> list[dict[str, Any]]:
    """Every row of the corpus, in a fixed order."""
    rng = random.Random(seed)
    values = Values(rng)
    rows: list[dict[str, Any]] = []

    def add(template: str, slots: dict[str, Value], negative: str | None = None) -> None:
        if "{name}" in template:
            slots["name"] = [FILL["name"](values)]
        text, spans = _render(template, slots)
        prefix = "clean" if negative else "pii"
        row: dict[str, Any] = {"id": f"{prefix}-{len(rows) + 1:04d}", "text": text, "pii": spans}
        if negative:
            row["negative"] = negative
        rows.append(row)

    for group, templates in PII_TEMPLATES.items():
        make = getattr(values, GENERATORS[group])
        for i in range(ROWS[group]):
            add(templates[i % len(templates)], {"pii": make()})
    for i in range(24):
        template = MIXED_TEMPLATES[i % len(MIXED_TEMPLATES)]
        slots = {
            "email": values.email(),
            "phone": values.phone(),
            "card": values.card(),
            "iban": values.iban(),
            "ipv4": values.ipv4(),
            "ssn": values.ssn(),
            "url_credentials": values.url_credentials(),
        }
        add(template, slots)
    for negative, templates in CLEAN_TEMPLATES.items():
        for template in templates:
            add(template, {}, negative)
    # The same kinds of hard negative with random values, in other sentences.
    clean = CleanValues(rng)
    for negative, make in clean.makers().items():
        for _ in range(CLEAN_RANDOM_ROWS):
            add(make(), {}, negative)
    return rows


def main() -> None:
    rows = build()
    with CORPUS.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{CORPUS.name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
