"""A fake Bluesky: a PDS (sessions, an account's records) and an AppView (author feeds, profiles) behind one XRPC host.

Everything is `GET /xrpc/<nsid>` (queries, parameters in the URL) or `POST /xrpc/<nsid>` (procedures, a JSON body),
and every error is `{"error": NAME, "message": ...}`, as the atproto PDS (bluesky-social/atproto, packages/pds) and
the lexicons (lexicons/com/atproto, lexicons/app/bsky) have them:

- `com.atproto.server.createSession` `{identifier (handle, email or DID), password}` answers `{accessJwt, refreshJwt,
  handle, did, didDoc, email, emailConfirmed, emailAuthFactor, active}`; a wrong identifier or password a 401
  `AuthenticationRequired` "Invalid identifier or password"; past SESSION_LIMIT logins a 429 (Bluesky allows 30 per
  5 minutes and 300 a day per account). An app password gives scope `com.atproto.appPass`, the main password
  `com.atproto.access`. Tokens are HS256 JWTs: access `{"typ": "at+jwt"}` with `scope, sub, aud, iat, exp` (2 hours),
  refresh `{"typ": "refresh+jwt"}` with a `jti` (90 days). The SDK reads `exp` (it does not check signatures) and
  refreshes 15 minutes before it. Here access tokens carry a `jti` too, so that two issued in one second differ
  (`expire_access_tokens` expires tokens one by one).
- `com.atproto.server.refreshSession` (the refresh token as the bearer) rotates it: the old one keeps giving the same
  successor for REFRESH_GRACE, then answers 400 `ExpiredToken` "Token has been revoked". `getSession` answers the
  session. An expired access token: 400 `ExpiredToken` "Token has expired"; a bad one 400 `InvalidToken`; none, where
  one is needed, 401 `AuthMissing`.
- `com.atproto.repo.createRecord` `{repo, collection, record, rkey?, validate?, swapCommit?}` answers `{uri, cid,
  commit: {cid, rev}, validationStatus}`. A post's text may hold 3000 UTF-8 bytes and 300 graphemes (400
  `InvalidRequest` "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"). An rkey
  must be 1-512 of `A-Za-z0-9._:~-` and not "." or ".." (a TID is the lexicon's convention for posts; the PDS does not
  enforce it). An rkey already taken in the collection: the PDS's repo (its MST `add`) throws a plain Error, and the
  PDS answers 500 `InternalServerError` "Internal Server Error" (bluesky-social/atproto#3718, indigo#873; #4728
  would make it an XRPC error of its own): nothing is written either way. `duplicate_rkey` sets that answer.
  `swapCommit` other than the head: 400 `InvalidSwap`.
- `com.atproto.repo.getRecord` `?repo&collection&rkey` answers `{uri, cid, value}`, or 400 `RecordNotFound` "Could
  not locate record: at://..."; `deleteRecord` answers `{commit}`, or `{}` where there was nothing to delete.
  `com.atproto.repo.listRecords` `?repo&collection&limit (1-100, default 50)&cursor&reverse` answers `{records: [{uri,
  cid, value}], cursor}` in rkey order, highest first unless `reverse`; the cursor (the page's last rkey) comes with
  every page that has records, and the next page starts after it (the PDS's listRecords; no login needed).
- `app.bsky.feed.getAuthorFeed` `?actor&limit (1-100, default 50)&cursor&filter` answers `{feed: [{post, reply?,
  reason?}], cursor}` newest first: a repost is the reposted post with `reason` `app.bsky.feed.defs#reasonRepost`, a
  reply carries `reply: {root, parent}`; `posts_no_replies` leaves out the author's replies (not reposts),
  `posts_and_author_threads` keeps replies in the author's own threads. The cursor (`<ms>::<cid>` of the page's last
  item) comes with every page that has items, the last included; past the end `{"feed": []}` has none. Items are
  picked before posts since deleted are dropped, so a page can be short while more follow.
  `app.bsky.actor.getProfile` (the SDK's login reads it) and `com.atproto.identity.resolveHandle` answer too.
- Every answer carries `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (a Unix time) and
  `RateLimit-Policy`; `rate_limited()` scripts a 429 `RateLimitExceeded`. Other failures through `server.fail`.

ACCOUNT is the one account that logs in. A test adds other accounts and posts with `add_actor`, `post`, `repost` and
`delete`; reads what was made with `posts()` and `created`; counts `login_requests()` and `create_requests()`; ages
tokens with `expire_access_tokens()`, `revoke_refresh_tokens()` or a short `access_lifetime`; keeps new posts out of
feeds with `indexing = False`; and scripts a post's failure with `fake.server.fail(CREATE_RECORD_PATH, ...)`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tests.fakes.server import FakeAPI, FakeServer, Reply, Request

ACCOUNT = "nnbot-test.bsky.social"  # the bot's account: its handle
ACCOUNT_DID = "did:plc:7iza6de2dwap2sbkpav7c6c6"
EMAIL = "nnbot@example.com"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"  # Bluesky's app passwords look like this
PASSWORD = "the account's main password"
SERVICE_DID = "did:web:fake-pds.bsky.network"  # the tokens' audience
JWT_SECRET = b"fake-pds-jwt-secret"
ACCESS_LIFETIME = 2 * 3600  # seconds: the PDS's access tokens ("120mins")
REFRESH_LIFETIME = 90 * 86400  # seconds: its refresh tokens ("90days")
REFRESH_GRACE = 2 * 3600  # seconds a rotated refresh token still gives its successor
SESSION_LIMIT = 30  # createSession calls per account in 5 minutes (and 300 a day, which no test reaches)
RATE_WINDOW = 300  # seconds: the window of the PDS's general limit
RATE_LIMIT = 3000  # requests per window, per IP
POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
POST_MAX_BYTES = 3000  # the lexicon's maxLength for a post's text: UTF-8 bytes, though its message says characters
POST_MAX_GRAPHEMES = 300  # its maxGraphemes
FEED_DEFAULT_LIMIT, FEED_MAX_LIMIT = 50, 100
LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT = 50, 100
FEED_FILTERS = ("posts_with_replies", "posts_no_replies", "posts_with_media", "posts_and_author_threads",
                "posts_with_video")
BASE_TIME = 1_700_000_000  # createdAt of the first post `post()` adds: 2023-11-14 22:13:20 UTC
RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"

XRPC = "/xrpc/"
CREATE_SESSION_PATH = XRPC + "com.atproto.server.createSession"
REFRESH_SESSION_PATH = XRPC + "com.atproto.server.refreshSession"
GET_SESSION_PATH = XRPC + "com.atproto.server.getSession"
CREATE_RECORD_PATH = XRPC + "com.atproto.repo.createRecord"
GET_RECORD_PATH = XRPC + "com.atproto.repo.getRecord"
LIST_RECORDS_PATH = XRPC + "com.atproto.repo.listRecords"
DELETE_RECORD_PATH = XRPC + "com.atproto.repo.deleteRecord"
AUTHOR_FEED_PATH = XRPC + "app.bsky.feed.getAuthorFeed"
PROFILE_PATH = XRPC + "app.bsky.actor.getProfile"
RESOLVE_HANDLE_PATH = XRPC + "com.atproto.identity.resolveHandle"

INVALID_LOGIN = {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
AUTH_REQUIRED = {"error": "AuthenticationRequired", "message": "Authentication Required"}
AUTH_MISSING = {"error": "AuthMissing", "message": "Authentication Required"}
EXPIRED = {"error": "ExpiredToken", "message": "Token has expired"}
REVOKED = {"error": "ExpiredToken", "message": "Token has been revoked"}
INVALID_TOKEN = {"error": "InvalidToken", "message": "Token could not be verified"}
WRONG_TOKEN_TYPE = {"error": "InvalidToken", "message": "Invalid token type"}
RATE_LIMIT_EXCEEDED = {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
INTERNAL_SERVER_ERROR = {"error": "InternalServerError", "message": "Internal Server Error"}
NOT_IMPLEMENTED = {"error": "MethodNotImplemented", "message": "Method Not Implemented"}
DUPLICATE_RKEY = Reply(500, INTERNAL_SERVER_ERROR)  # what bsky.social answers a create at a taken rkey, today


def invalid_request(message: str) -> dict[str, str]:
    return {"error": "InvalidRequest", "message": message}


def rate_limited(*, reset_in: int = 60, limit: int = RATE_LIMIT, window: int = RATE_WINDOW) -> dict[str, Any]:
    """The keyword arguments of `server.fail` for Bluesky's 429, its window resetting `reset_in` seconds from now.

    `fake.server.fail(CREATE_RECORD_PATH, **rate_limited(reset_in=60))` rate-limits the next post.
    """
    headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": "0",
               "RateLimit-Reset": str(int(time.time()) + reset_in), "RateLimit-Policy": f"{limit};w={window}"}
    return {"status": 429, "body": RATE_LIMIT_EXCEEDED, "headers": headers}


def tid(micros: int, clock_id: int = 0) -> str:
    """A TID: 13 sortable base-32 characters for 53 bits of microseconds since 1970 and a 10-bit clock id."""
    number = (micros << 10) | (clock_id & 0x3FF)
    return "".join(TID_ALPHABET[(number >> shift) & 31] for shift in range(60, -1, -5))


def cid_for(data: Any) -> str:
    """A CIDv1 (dag-cbor, sha-256) in base32, as a PDS writes them, over the JSON instead of the DAG-CBOR bytes."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).digest()
    return "b" + base64.b32encode(b"\x01\x71\x12\x20" + digest).decode("ascii").lower().rstrip("=")


def iso(seconds: float) -> str:
    """An atproto datetime, as the AppView writes `indexedAt`: UTC, milliseconds, a Z."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def graphemes(text: str) -> int:
    """How many user-perceived characters (Unicode extended grapheme clusters, UAX #29) `text` holds.

    The PDS counts with Intl.Segmenter; this follows its rules closely enough for post text: CR LF, combining and
    spacing marks, variation selectors, emoji modifiers and tags, ZWJ emoji sequences, flag pairs, Hangul jamo.
    """
    count, previous, regional_run, pictographic = 0, None, 0, False
    for char in text:
        kind = _grapheme_kind(char)
        if previous is None or _breaks(previous, kind, regional_run, pictographic):
            count += 1
            pictographic = False
        regional_run = regional_run + 1 if kind == "RI" else 0
        if kind == "PICTO":
            pictographic = True
        elif kind not in ("EXTEND", "ZWJ"):
            pictographic = False
        previous = kind
    return count


def _grapheme_kind(char: str) -> str:
    code = ord(char)
    category = unicodedata.category(char)
    if char in "\r\n":
        return "CR" if char == "\r" else "LF"
    if code == 0x200D:
        return "ZWJ"
    if 0x1F1E6 <= code <= 0x1F1FF:
        return "RI"
    if category in ("Mn", "Me", "Mc") or code == 0x200C or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return "EXTEND"
    if category in ("Cc", "Cf", "Zl", "Zp"):
        return "CONTROL"
    if 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C:
        return "L"
    if 0x1160 <= code <= 0x11A7 or 0xD7B0 <= code <= 0xD7C6:
        return "V"
    if 0x11A8 <= code <= 0x11FF or 0xD7CB <= code <= 0xD7FB:
        return "T"
    if 0xAC00 <= code <= 0xD7A3:
        return "LV" if (code - 0xAC00) % 28 == 0 else "LVT"
    if category == "So" or 0x1F000 <= code <= 0x1FAFF:  # near enough to Extended_Pictographic
        return "PICTO"
    return "OTHER"


def _breaks(previous: str, kind: str, regional_run: int, pictographic: bool) -> bool:
    if previous == "CR" and kind == "LF":
        return False
    if previous in ("CR", "LF", "CONTROL") or kind in ("CR", "LF", "CONTROL"):
        return True
    hangul = {"L": ("L", "V", "LV", "LVT"), "LV": ("V", "T"), "V": ("V", "T"), "LVT": ("T",), "T": ("T",)}
    if kind in hangul.get(previous, ()):
        return False
    if kind in ("EXTEND", "ZWJ"):
        return False
    if previous == "ZWJ" and kind == "PICTO" and pictographic:
        return False
    return not (previous == "RI" and kind == "RI" and regional_run % 2 == 1)


@dataclass
class Actor:
    did: str
    handle: str
    display_name: str
    created_at: str


@dataclass
class Record:
    uri: str
    cid: str
    value: dict[str, Any]
    indexed_at: str


@dataclass
class FeedItem:
    """One line of an author feed: the actor's post, or their repost of someone's."""

    actor: str  # the did whose feed it is in
    post_uri: str
    cid: str  # the post's, or the repost's
    sort_at: str
    repost: Record | None = None


@dataclass
class RefreshState:
    did: str
    scope: str
    successor: str | None = None  # the jti it was rotated to
    rotated_at: float = 0.0
    revoked: bool = False


@dataclass
class Repo:
    records: dict[tuple[str, str], Record] = field(default_factory=dict)  # (collection, rkey) -> record
    commit: dict[str, str] | None = None  # {"cid", "rev"} of the head


class FakeBluesky(FakeAPI):
    """bsky.social's PDS and the Bluesky AppView on one local server; ACCOUNT logs in with APP_PASSWORD."""

    def __init__(self) -> None:
        self.actors: dict[str, Actor] = {}  # did -> actor
        self.repos: dict[str, Repo] = {}  # did -> repo
        self.feed: list[FeedItem] = []  # every author feed's items
        self.created: list[Record] = []  # records made through createRecord, oldest first
        self.pending: list[FeedItem] = []  # created posts the AppView has not indexed yet (`indexing` False)
        self.indexing = True  # False: new posts stay out of author feeds until `index()`
        self.access_lifetime = ACCESS_LIFETIME  # seconds, for tokens issued from now on
        self.duplicate_rkey = DUPLICATE_RKEY  # createRecord's answer for an rkey already taken
        self._refresh: dict[str, RefreshState] = {}  # jti -> state
        self._access: list[str] = []  # access tokens issued
        self._expired: set[str] = set()  # access tokens the server holds for expired whatever their `exp`
        self._logins: list[float] = []  # times of createSession calls that reached the limiter
        self._served = 0  # requests answered, for RateLimit-Remaining
        self._posts_added = 0
        self._replies: Counter[str] = Counter()  # post uri -> replies to it
        self._reposts: Counter[str] = Counter()  # post uri -> reposts of it
        self._lock = threading.RLock()
        self.add_actor(ACCOUNT, did=ACCOUNT_DID, display_name="nnbot (a bot)")
        self.server = FakeServer(self._route, name="bluesky")

    # --- what a test sets up and reads

    def add_actor(self, handle: str, *, did: str | None = None, display_name: str | None = None) -> str:
        """An account other people's posts come from; answers its did."""
        did = did or "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        self.actors[did] = Actor(did, handle, display_name or handle.split(".")[0].title(), iso(BASE_TIME - 86400))
        self.repos[did] = Repo()
        return did

    def post(self, handle: str, text: str, *, reply_to: str | None = None, created_at: str | None = None,
             langs: list[str] | None = None) -> str:
        """A post already on Bluesky (each an hour after the one before, unless `created_at`); answers its uri."""
        did = self.did(handle)
        self._posts_added += 1
        when = BASE_TIME + self._posts_added * 3600
        value: dict[str, Any] = {"$type": POST, "text": text, "createdAt": created_at or iso(when),
                                 "langs": langs or ["en"]}
        if reply_to:
            parent = self.record(reply_to)
            assert parent is not None, f"no post {reply_to}"
            root = parent.value.get("reply", {}).get("root") or {"uri": parent.uri, "cid": parent.cid}
            value["reply"] = {"root": root, "parent": {"uri": parent.uri, "cid": parent.cid}}
        record = self._write(did, POST, tid(int(when * 1e6), self._posts_added), value, indexed_at=iso(when))
        self.feed.append(FeedItem(did, record.uri, record.cid, _sort_at(record)))
        return record.uri

    def repost(self, handle: str, uri: str) -> str:
        """`handle` reposts the post `uri`; answers the repost's uri."""
        did = self.did(handle)
        subject = self.record(uri)
        assert subject is not None, f"no post {uri}"
        self._posts_added += 1
        when = BASE_TIME + self._posts_added * 3600
        value = {"$type": REPOST, "subject": {"uri": subject.uri, "cid": subject.cid}, "createdAt": iso(when)}
        record = self._write(did, REPOST, tid(int(when * 1e6), self._posts_added), value, indexed_at=iso(when))
        self.feed.append(FeedItem(did, subject.uri, record.cid, record.indexed_at, repost=record))
        return record.uri

    def delete(self, uri: str) -> None:
        """The record at `uri` goes, as if its author deleted it (reposts of it stay in feeds, and are not shown)."""
        did, collection, rkey = _split(uri)
        with self._lock:
            if (record := self.repos[did].records.pop((collection, rkey), None)) is not None:
                self._count(record, -1)
            self.feed = [item for item in self.feed
                         if (item.repost.uri if item.repost is not None else item.post_uri) != uri]

    def index(self) -> None:
        """The AppView catches up: posts created while `indexing` was False show in author feeds."""
        with self._lock:
            self.feed.extend(self.pending)
            self.pending.clear()

    def did(self, handle_or_did: str) -> str:
        for actor in self.actors.values():
            if handle_or_did in (actor.did, actor.handle) or handle_or_did.lower() == actor.handle.lower():
                return actor.did
        raise KeyError(handle_or_did)

    def record(self, uri: str) -> Record | None:
        did, collection, rkey = _split(uri)
        return self.repos.get(did, Repo()).records.get((collection, rkey))

    def posts(self, handle: str = ACCOUNT) -> list[Record]:
        """An account's posts in its repo, oldest first (by rkey: TIDs sort by time)."""
        records = self.repos[self.did(handle)].records
        return [records[key] for key in sorted(records) if key[0] == POST]

    def login_requests(self) -> int:
        """How many createSession requests arrived, answered or not."""
        return self.server.count("POST", CREATE_SESSION_PATH)

    def refresh_requests(self) -> int:
        return self.server.count("POST", REFRESH_SESSION_PATH)

    def create_requests(self) -> int:
        """How many createRecord requests arrived, answered or not."""
        return self.server.count("POST", CREATE_RECORD_PATH)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 400 ExpiredToken from now on, whatever its `exp` says."""
        with self._lock:
            self._expired.update(self._access)

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far answers 400 ExpiredToken "Token has been revoked" (say, a new password)."""
        with self._lock:
            for state in self._refresh.values():
                state.revoked = True

    # --- routes

    def _route(self, request: Request) -> Reply:
        handlers = {
            ("POST", CREATE_SESSION_PATH): self._create_session, ("POST", REFRESH_SESSION_PATH): self._refresh_session,
            ("GET", GET_SESSION_PATH): self._get_session, ("POST", CREATE_RECORD_PATH): self._create_record,
            ("GET", GET_RECORD_PATH): self._get_record, ("POST", DELETE_RECORD_PATH): self._delete_record,
            ("GET", LIST_RECORDS_PATH): self._list_records,
            ("GET", AUTHOR_FEED_PATH): self._author_feed, ("GET", PROFILE_PATH): self._profile,
            ("GET", RESOLVE_HANDLE_PATH): self._resolve_handle,
        }
        handler = handlers.get((request.method, request.path))
        with self._lock:
            self._served += 1
            if handler is None:
                return self._reply(501, NOT_IMPLEMENTED)
            return handler(request)

    def _create_session(self, request: Request) -> Reply:
        body = _json_body(request)
        identifier = str(body.get("identifier") or "").lower()
        now = time.time()
        self._logins = [t for t in self._logins if now - t < RATE_WINDOW] + [now]
        if len(self._logins) > SESSION_LIMIT:
            return Reply(429, RATE_LIMIT_EXCEEDED, _limit_headers(SESSION_LIMIT, 0, RATE_WINDOW))
        headers = _limit_headers(SESSION_LIMIT, SESSION_LIMIT - len(self._logins), RATE_WINDOW)
        account = self.actors[ACCOUNT_DID]
        scope = {APP_PASSWORD: "com.atproto.appPass", PASSWORD: "com.atproto.access"}.get(body.get("password"))
        if identifier not in (account.handle, account.did, EMAIL) or scope is None:
            return Reply(401, INVALID_LOGIN, headers)
        return Reply(200, self._session(account, scope), headers)

    def _refresh_session(self, request: Request) -> Reply:
        claims, error = self._verify(request, "refresh+jwt")
        if error:
            return error
        state = self._refresh.get(claims.get("jti", ""))
        if state is None or state.revoked or (state.successor and time.time() - state.rotated_at > REFRESH_GRACE):
            return self._reply(400, REVOKED)
        if state.successor is None:
            state.successor, state.rotated_at = secrets.token_urlsafe(24), time.time()
            self._refresh[state.successor] = RefreshState(state.did, state.scope)
        return self._reply(200, self._session(self.actors[state.did], state.scope, jti=state.successor))

    def _get_session(self, request: Request) -> Reply:
        claims, error = self._verify(request, "at+jwt")
        if error:
            return error
        body = self._session(self.actors[claims["sub"]], claims["scope"])
        del body["accessJwt"], body["refreshJwt"]
        return self._reply(200, body)

    def _create_record(self, request: Request) -> Reply:
        claims, error = self._verify(request, "at+jwt")
        if error:
            return error
        body = _json_body(request)
        for name in ("repo", "collection", "record"):
            if name not in body:
                return self._reply(400, invalid_request(f'Input must have the property "{name}"'))
        try:
            did = self.did(str(body["repo"]))
        except KeyError:
            return self._reply(400, invalid_request(f"Could not find repo: {body['repo']}"))
        if did != claims["sub"]:
            return self._reply(401, AUTH_REQUIRED)
        collection, value = str(body["collection"]), body["record"]
        if not isinstance(value, dict):
            return self._reply(400, invalid_request("Input/record must be an object"))
        value = {"$type": collection, **value}
        validate = body.get("validate")
        if validate is not False and (problem := _invalid_record(collection, value)):
            return self._reply(400, invalid_request(problem))
        rkey = body.get("rkey") or tid(time.time_ns() // 1000, secrets.randbelow(1024))
        if problem := _invalid_rkey(str(rkey)):
            return self._reply(400, invalid_request(problem))
        repo = self.repos[did]
        if body.get("swapCommit") and (repo.commit is None or body["swapCommit"] != repo.commit["cid"]):
            head = (repo.commit or {}).get("cid")
            return self._reply(400, {"error": "InvalidSwap", "message": f"Commit was at {head}"})
        if (collection, rkey) in repo.records:
            return self.duplicate_rkey
        record = self._write(did, collection, rkey, value, indexed_at=iso(time.time()))
        self.created.append(record)
        if collection == POST:
            item = FeedItem(did, record.uri, record.cid, _sort_at(record))
            (self.feed if self.indexing else self.pending).append(item)
        answer: dict[str, Any] = {"uri": record.uri, "cid": record.cid, "commit": repo.commit}
        if validate is not False:
            answer["validationStatus"] = "valid" if collection == POST else "unknown"
        return self._reply(200, answer)

    def _get_record(self, request: Request) -> Reply:
        if error := self._optional_auth(request):
            return error
        query = request.query
        for name in ("repo", "collection", "rkey"):
            if name not in query:
                return self._reply(400, invalid_request(f'Error: Params must have the property "{name}"'))
        try:
            did = self.did(query["repo"])
        except KeyError:
            return self._reply(400, invalid_request(f"Could not find repo: {query['repo']}"))
        uri = f"at://{did}/{query['collection']}/{query['rkey']}"
        record = self.record(uri)
        if record is None or query.get("cid", record.cid) != record.cid:
            return self._reply(400, {"error": "RecordNotFound", "message": f"Could not locate record: {uri}"})
        return self._reply(200, {"uri": record.uri, "cid": record.cid, "value": record.value})

    def _list_records(self, request: Request) -> Reply:
        if error := self._optional_auth(request):
            return error
        query = request.query
        for name in ("repo", "collection"):
            if name not in query:
                return self._reply(400, invalid_request(f'Error: Params must have the property "{name}"'))
        limit = int(query.get("limit", LIST_DEFAULT_LIMIT))
        if not 1 <= limit <= LIST_MAX_LIMIT:
            bound = "greater than 100" if limit > LIST_MAX_LIMIT else "less than 1"
            return self._reply(400, invalid_request(f"Error: limit can not be {bound}"))
        try:
            did = self.did(query["repo"])
        except KeyError:
            return self._reply(400, invalid_request(f"Could not find repo: {query['repo']}"))
        reverse = query.get("reverse") == "true"
        keys = sorted((rkey for collection, rkey in self.repos[did].records if collection == query["collection"]),
                      reverse=not reverse)
        if cursor := query.get("cursor"):
            keys = [rkey for rkey in keys if (rkey > cursor if reverse else rkey < cursor)]
        page = [self.repos[did].records[(query["collection"], rkey)] for rkey in keys[:limit]]
        answer: dict[str, Any] = {"records": [{"uri": r.uri, "cid": r.cid, "value": r.value} for r in page]}
        if page:
            answer["cursor"] = _split(page[-1].uri)[2]
        return self._reply(200, answer)

    def _delete_record(self, request: Request) -> Reply:
        claims, error = self._verify(request, "at+jwt")
        if error:
            return error
        body = _json_body(request)
        try:
            did = self.did(str(body.get("repo")))
        except KeyError:
            return self._reply(400, invalid_request(f"Could not find repo: {body.get('repo')}"))
        if did != claims["sub"]:
            return self._reply(401, AUTH_REQUIRED)
        uri = f"at://{did}/{body.get('collection')}/{body.get('rkey')}"
        if self.record(uri) is None:
            return self._reply(200, {})
        self.delete(uri)
        self._commit(did)
        return self._reply(200, {"commit": self.repos[did].commit})

    def _author_feed(self, request: Request) -> Reply:
        if error := self._optional_auth(request):
            return error
        query = request.query
        if "actor" not in query:
            return self._reply(400, invalid_request('Error: Params must have the property "actor"'))
        limit = int(query.get("limit", FEED_DEFAULT_LIMIT))
        if not 1 <= limit <= FEED_MAX_LIMIT:
            bound = "greater than 100" if limit > FEED_MAX_LIMIT else "less than 1"
            return self._reply(400, invalid_request(f"Error: limit can not be {bound}"))
        kind = query.get("filter", "posts_with_replies")
        if kind not in FEED_FILTERS:
            return self._reply(400, invalid_request(f"Error: filter must be one of ({'|'.join(FEED_FILTERS)})"))
        try:
            did = self.did(query["actor"])
        except KeyError:
            return self._reply(400, invalid_request("Profile not found"))
        items = sorted((item for item in self.feed if item.actor == did and self._kept(item, kind)),
                       key=_feed_key, reverse=True)
        if "cursor" in query:
            try:
                millis, cid = query["cursor"].split("::")
                after = (int(millis), cid)
            except ValueError:
                return self._reply(400, invalid_request("Malformed cursor"))
            items = [item for item in items if _feed_key(item) < after]
        page = items[:limit]
        answer: dict[str, Any] = {"feed": [view for item in page if (view := self._feed_view(item))]}
        if page:
            millis, cid = _feed_key(page[-1])
            answer["cursor"] = f"{millis}::{cid}"
        return self._reply(200, answer)

    def _profile(self, request: Request) -> Reply:
        if error := self._optional_auth(request):
            return error
        try:
            actor = self.actors[self.did(request.query.get("actor", ""))]
        except KeyError:
            return self._reply(400, invalid_request("Profile not found"))
        posts = sum(1 for collection, _ in self.repos[actor.did].records if collection == POST)
        return self._reply(200, {**self._basic(actor), "description": "", "indexedAt": actor.created_at,
                                 "followersCount": 0, "followsCount": 0, "postsCount": posts,
                                 "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False}})

    def _resolve_handle(self, request: Request) -> Reply:
        try:
            return self._reply(200, {"did": self.did(request.query.get("handle", ""))})
        except KeyError:
            return self._reply(400, invalid_request("Unable to resolve handle"))

    # --- sessions and tokens

    def _session(self, actor: Actor, scope: str, *, jti: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        jti = jti or secrets.token_urlsafe(24)
        self._refresh.setdefault(jti, RefreshState(actor.did, scope))
        access = _jwt({"typ": "at+jwt", "alg": "HS256"}, {"scope": scope, "sub": actor.did, "aud": SERVICE_DID,
                                                          "iat": now, "exp": now + self.access_lifetime,
                                                          "jti": secrets.token_urlsafe(12)})
        refresh = _jwt({"typ": "refresh+jwt", "alg": "HS256"},
                       {"scope": "com.atproto.refresh", "sub": actor.did, "aud": SERVICE_DID, "jti": jti,
                        "iat": now, "exp": now + REFRESH_LIFETIME})
        self._access.append(access)
        did_doc = {"@context": ["https://www.w3.org/ns/did/v1"], "id": actor.did,
                   "alsoKnownAs": [f"at://{actor.handle}"],
                   "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                "serviceEndpoint": self.url}]}
        return {"accessJwt": access, "refreshJwt": refresh, "handle": actor.handle, "did": actor.did,
                "didDoc": did_doc, "email": EMAIL, "emailConfirmed": True, "emailAuthFactor": False,
                "active": True}

    def _verify(self, request: Request, typ: str) -> tuple[dict[str, Any], Reply | None]:
        """The bearer token's claims, or the PDS's answer to a missing, bad, expired or wrong-kind token."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return {}, self._reply(401, AUTH_MISSING)
        token = header.removeprefix("Bearer ")
        decoded = _decode(token)
        if decoded is None:
            return {}, self._reply(400, INVALID_TOKEN)
        token_header, claims = decoded
        if claims.get("exp", 0) <= time.time() or token in self._expired:
            return {}, self._reply(400, EXPIRED)
        if token_header.get("typ") != typ:
            return {}, self._reply(400, WRONG_TOKEN_TYPE)
        return claims, None

    def _optional_auth(self, request: Request) -> Reply | None:
        """Reads need no login, but a token that comes along must be good."""
        return self._verify(request, "at+jwt")[1] if "authorization" in request.headers else None

    # --- the repo and the AppView's views

    def _write(self, did: str, collection: str, rkey: str, value: dict[str, Any], *, indexed_at: str) -> Record:
        record = Record(f"at://{did}/{collection}/{rkey}", cid_for(value), value, indexed_at)
        self.repos[did].records[(collection, rkey)] = record
        self._count(record, 1)
        self._commit(did)
        return record

    def _count(self, record: Record, change: int) -> None:
        """Keep the replies and reposts each post has, for its view, as records come and go."""
        if parent := (record.value.get("reply") or {}).get("parent"):
            self._replies[parent["uri"]] += change
        if record.value.get("$type") == REPOST:
            self._reposts[record.value["subject"]["uri"]] += change

    def _commit(self, did: str) -> None:
        repo = self.repos[did]
        rev = tid(time.time_ns() // 1000, len(repo.records))
        repo.commit = {"cid": cid_for({"did": did, "rev": rev, "prev": repo.commit}), "rev": rev}

    def _kept(self, item: FeedItem, kind: str) -> bool:
        if item.repost is not None:
            return kind not in ("posts_with_media", "posts_with_video")
        record = self.record(item.post_uri)
        reply = record.value.get("reply") if record else None
        if kind == "posts_no_replies":
            return reply is None
        if kind == "posts_and_author_threads":
            return reply is None or reply["root"]["uri"].startswith(f"at://{item.actor}/")
        if kind in ("posts_with_media", "posts_with_video"):
            embed = (record.value.get("embed") or {}).get("$type", "") if record else ""
            return embed == ("app.bsky.embed.images" if kind == "posts_with_media" else "app.bsky.embed.video")
        return True

    def _feed_view(self, item: FeedItem) -> dict[str, Any] | None:
        """The item as the AppView shows it, or None where its post is gone (a repost of a deleted post)."""
        record = self.record(item.post_uri)
        if record is None:
            return None
        view: dict[str, Any] = {"post": self._post_view(record)}
        if reply := record.value.get("reply"):
            view["reply"] = {"root": self._ref_view(reply["root"]["uri"]),
                             "parent": self._ref_view(reply["parent"]["uri"])}
        if item.repost is not None:
            view["reason"] = {"$type": "app.bsky.feed.defs#reasonRepost",
                              "by": self._basic(self.actors[item.actor]), "uri": item.repost.uri,
                              "cid": item.repost.cid, "indexedAt": item.repost.indexed_at}
        return view

    def _post_view(self, record: Record) -> dict[str, Any]:
        author = self.actors[_split(record.uri)[0]]
        return {"uri": record.uri, "cid": record.cid, "author": self._basic(author), "record": record.value,
                "bookmarkCount": 0, "replyCount": self._replies[record.uri], "repostCount": self._reposts[record.uri],
                "likeCount": 0, "quoteCount": 0,
                "indexedAt": record.indexed_at, "viewer": {"bookmarked": False, "threadMuted": False,
                                                           "embeddingDisabled": False}, "labels": []}

    def _ref_view(self, uri: str) -> dict[str, Any]:
        record = self.record(uri)
        if record is None:
            return {"$type": "app.bsky.feed.defs#notFoundPost", "uri": uri, "notFound": True}
        return {"$type": "app.bsky.feed.defs#postView", **self._post_view(record)}

    def _basic(self, actor: Actor) -> dict[str, Any]:
        return {"did": actor.did, "handle": actor.handle, "displayName": actor.display_name,
                "viewer": {"muted": False, "blockedBy": False}, "labels": [], "createdAt": actor.created_at}

    def _reply(self, status: int, body: dict[str, Any]) -> Reply:
        remaining = max(RATE_LIMIT - self._served, 0)
        return Reply(status, body, _limit_headers(RATE_LIMIT, remaining, RATE_WINDOW))


def _limit_headers(limit: int, remaining: int, window: int) -> dict[str, str]:
    return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(int(time.time()) + window), "RateLimit-Policy": f"{limit};w={window}"}


def _invalid_record(collection: str, value: dict[str, Any]) -> str | None:
    """The PDS's lexicon validation of a post (the lexicons it does not know it takes as they come)."""
    if value["$type"] != collection:
        return f"Invalid $type: expected {collection}, got {value['$type']}"
    if collection != POST:
        return None
    for name in ("text", "createdAt"):
        if name not in value:
            return f'Invalid {POST} record: Record must have the property "{name}"'
    text = value["text"]
    if not isinstance(text, str):
        return f"Invalid {POST} record: Record/text must be a string"
    if len(text.encode("utf-8")) > POST_MAX_BYTES:  # maxLength counts UTF-8 bytes, and is checked first
        return f"Invalid {POST} record: Record/text must not be longer than {POST_MAX_BYTES} characters"
    if graphemes(text) > POST_MAX_GRAPHEMES:
        return f"Invalid {POST} record: Record/text must not be longer than {POST_MAX_GRAPHEMES} graphemes"
    return None


def _invalid_rkey(rkey: str) -> str | None:
    """@atproto/syntax's ensureValidRecordKey, the only check the PDS makes of a chosen rkey."""
    if not 1 <= len(rkey) <= 512:
        return "record key must be 1 to 512 characters"
    if not RKEY.match(rkey):
        return "record key syntax not valid (regex)"
    if rkey in (".", ".."):
        return 'record key can not be "." or ".."'
    return None


def _sort_at(record: Record) -> str:
    """The AppView sorts a post by the earlier of its createdAt and indexedAt (a post cannot date itself ahead)."""
    return min(record.value["createdAt"], record.indexed_at, key=_millis)


def _feed_key(item: FeedItem) -> tuple[int, str]:
    return _millis(item.sort_at), item.cid


def _millis(moment: str) -> int:
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000)


def _split(uri: str) -> tuple[str, str, str]:
    did, collection, rkey = uri.removeprefix("at://").split("/")
    return did, collection, rkey


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(JWT_SECRET, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def _decode(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The header and claims of a token this fake signed, or None."""
    try:
        header, claims, signature = token.split(".")
        expected = _b64(hmac.new(JWT_SECRET, f"{header}.{claims}".encode("ascii"), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            return None
        return tuple(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[return-value]
                     for part in (header, claims))
    except (ValueError, UnicodeError):
        return None
