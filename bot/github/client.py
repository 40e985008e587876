"""A small client of GitHub's REST API: the few issue calls the bot makes.

It never sleeps on a rate limit: the outbox owns waiting (each post's backoff, the worker's
pause), so an answer worth retrying is a `PostFailed` carrying GitHub's own wait:
- `retry-after` (secondary rate limits, 429s) in seconds;
- `x-ratelimit-remaining: 0` with `x-ratelimit-reset` (the primary limit) until the reset;
- a secondary rate limit without either: a minute, as GitHub's docs ask.
An answer no retry can change (422 validation, 410 issues disabled) is a `PostRefused`. A bad
token (401), a token without access (403) or a repository it cannot see (404) is retried
too: fixing the token is the fix, and the issue must not be lost meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx

from core.ports import PostFailed, PostRefused

log = logging.getLogger("triage_bot.github")

API_VERSION = "2022-11-28"
SECONDARY_RATE_LIMIT_WAIT = 60.0
USER_AGENT = "triage-bot"
LOGIN_RETRY_SECONDS = 600.0


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    message = str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        details = [
            str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
            for e in errors[:3]
        ]
        message = f"{message}: {'; '.join(details)}"
    return message[:300]


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """GitHub's wait before a retry, in seconds, when the answer is a rate limit."""
    header = response.headers.get("retry-after")
    if header is not None:
        try:
            return max(1.0, float(header))
        except ValueError:
            pass
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(response.headers.get("x-ratelimit-reset", ""))
        except ValueError:
            return SECONDARY_RATE_LIMIT_WAIT
        return max(1.0, reset - (time.time() if now is None else now) + 1.0)
    if "rate limit" in _message(response).lower():
        return SECONDARY_RATE_LIMIT_WAIT
    return None


class GitHubClient:
    """Issue calls on one repository, their failures said in the outbox's terms."""

    def __init__(
        self,
        repo: str,
        token: str,
        api_url: str = "https://api.github.com",
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.repo = repo
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
            },
        )
        self._login: str | None = None
        self._login_retry_at = 0.0  # after a failed look-up, not before this (monotonic)

    def __repr__(self) -> str:
        return f"GitHubClient(repo={self.repo!r}, api_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call; a 2xx answer, else PostFailed (worth retrying) or PostRefused."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:  # DNS, refused connection, timeout, reset
            raise PostFailed(f"GitHub unreachable ({type(exc).__name__})") from exc
        if response.is_success:
            return response
        status, message = response.status_code, _message(response)
        wait = retry_after(response) if status in (403, 429) else None
        if wait is not None:
            raise PostFailed(f"GitHub rate limit ({status}: {message})", wait)
        reason = f"GitHub {status}: {message}" if message else f"GitHub {status}"
        if status in (410, 422):
            raise PostRefused(reason)
        if status == 401:
            reason += " (check GITHUB_TOKEN)"
        elif status in (403, 404):
            reason += f" (can GITHUB_TOKEN write issues in {self.repo}?)"
        raise PostFailed(reason)

    # -- issues --------------------------------------------------------------------------
    def login(self) -> str | None:
        """The token's own login (its labels and comments are not a maintainer's); None
        when GitHub cannot say (a fine-grained token may not read /user)."""
        if self._login is None and time.monotonic() >= self._login_retry_at:
            try:
                self._login = str(self.request("GET", "/user").json().get("login") or "")
            except (PostFailed, PostRefused, ValueError):
                # A delivery must not wait on a GitHub that is down: ask again later.
                self._login_retry_at = time.monotonic() + LOGIN_RETRY_SECONDS
                return None
        return self._login or None

    def create_issue(
        self, title: str, body: str, labels: list[str], assignees: list[str] | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"title": title, "body": body, "labels": labels}
        if assignees:
            payload["assignees"] = assignees
        return dict(self.request("POST", f"/repos/{self.repo}/issues", json=payload).json())

    def get_issue(self, number: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/repos/{self.repo}/issues/{number}").json())

    def issues(
        self,
        *,
        since: str | None = None,
        sort: str = "updated",
        direction: str = "desc",
        max_pages: int = 10,
    ) -> Iterator[dict[str, Any]]:
        """Issues of every state (pull requests left out), page by page via the Link
        header, `since` an ISO time (updated at or after)."""
        params: dict[str, Any] = {
            "state": "all",
            "sort": sort,
            "direction": direction,
            "per_page": 100,
        }
        if since:
            params["since"] = since
        url: str | None = f"/repos/{self.repo}/issues"
        for _ in range(max_pages):
            if url is None:
                return
            # The next page's URL carries the query (an empty `params` would drop it).
            response = self.request("GET", url, **({"params": params} if params else {}))
            params = {}
            for issue in response.json():
                if isinstance(issue, dict) and "pull_request" not in issue:
                    yield issue
            url = response.links.get("next", {}).get("url")

    def search_issues(self, query: str) -> list[dict[str, Any]]:
        response = self.request(
            "GET", "/search/issues", params={"q": f"repo:{self.repo} is:issue {query}"}
        )
        items = response.json().get("items", [])
        return [i for i in items if isinstance(i, dict)]
