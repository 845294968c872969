"""The `file` platform: each post is one JSON line appended to a file and fsynced; a dry run that leaves a record.

A line is `{"id", "bot", "text", "posted_at"}`. Appends take an exclusive lock on the file, so several
processes posting at once never interleave their lines. A post is a whole line or nothing: a write cut short (a
full disk) is cut back off the file, and a file that cannot be written at all (read-only, full, missing folder) is
the destination's problem, not the post's (`Outcome.ACCOUNT`: the candidate waits for the destination to be fixed).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bot.publishers.base import Outcome, PostKey, Posted, PublishError, RemotePost

logger = logging.getLogger(__name__)

READ_TAIL_BYTES = 1 << 20  # recent_posts reads at most the file's last MiB
# Errors that refuse every post, whatever its text: the destination must be fixed first.
DESTINATION_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EISDIR,
                      errno.ENOTDIR, errno.EFBIG)


class FilePublisher:
    def __init__(self, path: Path, *, bot: str) -> None:
        self.path = path
        self.bot = bot

    def describe(self) -> str:
        return f"the file {self.path}"

    def publish(self, text: str, *, key: PostKey | None = None) -> Posted:  # no repeat refusal: unused
        post_id = uuid.uuid4().hex[:16]
        line = json.dumps({"id": post_id, "bot": self.bot, "text": text,
                           "posted_at": datetime.now(UTC).isoformat(timespec="seconds")}, ensure_ascii=False)
        try:
            # O_APPEND and one write per line; the lock keeps other processes' lines whole around ours.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._refused(exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._append(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)
        return Posted(remote_id=post_id, url=f"{self.path.as_uri()}#{post_id}")

    def _append(self, fd: int, data: bytes) -> None:
        """Write `data` whole at the end of the file, or leave the file as it was and raise."""
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = 0
            while written < len(data):  # os.write may write part of it (a nearly full disk) without an error
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, start)  # the part written is not a post
                os.fsync(fd)
            except OSError:  # a part of the line may be left behind: say so rather than guess
                raise PublishError(f"Writing the post to {self.path} failed ({exc.strerror}) and the part written "
                                   "could not be taken back; look at the file's last line.",
                                   outcome=Outcome.UNKNOWN) from None
            raise self._refused(exc) from None

    def _refused(self, exc: OSError) -> PublishError:
        if exc.errno in DESTINATION_ERRORS:
            return PublishError(f"Cannot write to {self.path} ({exc.strerror}); nothing was posted, and the bot "
                                "waits until the file can be written (check the disk, its permissions and the "
                                "bot's destination).", outcome=Outcome.ACCOUNT)
        return PublishError(f"Writing the post to {self.path} failed ({exc.strerror}); nothing was posted.",
                            outcome=Outcome.TRANSIENT)

    def recent_posts(self, *, limit: int) -> list[RemotePost]:
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - READ_TAIL_BYTES))
                lines = f.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise PublishError(f"Cannot read {self.path} ({exc.strerror}).", outcome=Outcome.TRANSIENT) from None
        posts: list[RemotePost] = []
        for line in reversed(lines):
            try:
                entry = json.loads(line)
                posted_at = datetime.fromisoformat(entry["posted_at"])
                posts.append(RemotePost(remote_id=str(entry["id"]), url=f"{self.path.as_uri()}#{entry['id']}",
                                        text=str(entry["text"]), created_at=posted_at.astimezone(UTC),
                                        bot=str(entry["bot"]) if entry.get("bot") is not None else None))
            except (ValueError, KeyError, TypeError):
                continue  # a partial first line of the tail, or a line someone else wrote
            if len(posts) >= limit:
                break
        return posts

    def close(self) -> None:
        pass
