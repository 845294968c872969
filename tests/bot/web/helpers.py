"""Shared by the review page tests: the password, reading tokens and versions from pages, a client wrapper."""

from __future__ import annotations

import re

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def version_of(html: str, candidate_id: int) -> str:
    match = re.search(rf'action="/candidates/{candidate_id}"[^>]*>\s*<input type="hidden" name="csrf_token" '
                      rf'value="[^"]+">\s*<input type="hidden" name="back" value="[^"]*">\s*'
                      rf'<input type="hidden" name="version" value="([^"]+)">', html)
    assert match, f"the page has no form for candidate {candidate_id}"
    return match.group(1)


class Web:
    """A TestClient on the review app, with helpers that act as a person in a browser would."""

    def __init__(self, client, store, settings, bots) -> None:  # type: ignore[no-untyped-def]
        self.client, self.store, self.settings, self.bots = client, store, settings, bots

    def login(self, password: str = PASSWORD):  # type: ignore[no-untyped-def]
        token = csrf_of(self.client.get("/login").text)
        return self.client.post("/login", data={"password": password, "csrf_token": token}, follow_redirects=False)

    def token(self, path: str = "/") -> str:
        return csrf_of(self.client.get(path).text)

    def post(self, path: str, data: dict, *, page: str = "/", follow: bool = True):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={"csrf_token": self.token(page), **data}, follow_redirects=follow)

    def act(self, candidate_id: int, action: str, *, page: str = "/", **fields: str):  # type: ignore[no-untyped-def]
        html = self.client.get(page).text
        data = {"csrf_token": csrf_of(html), "back": page, "version": version_of(html, candidate_id),
                "action": action, **fields}
        return self.client.post(f"/candidates/{candidate_id}", data=data)
