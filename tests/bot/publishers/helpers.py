"""Shared by the publisher tests: the error a publish raises, and a port nothing listens on."""

from __future__ import annotations

import socket

import pytest

from bot.publishers.base import Publisher, PublishError


def publish_error(publisher: Publisher, text: str = "Hello from the bot") -> PublishError:
    with pytest.raises(PublishError) as caught:
        publisher.publish(text)
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
