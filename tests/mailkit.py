"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, for alert tests."""

from __future__ import annotations

import contextlib
import email
import email.header
import email.policy
import socket
from collections.abc import Iterator
from email.message import Message as MimeMessage


class SmtpInbox:
    def __init__(self) -> None:
        self.messages: list[MimeMessage] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"

    def texts(self) -> list[str]:
        """Each mail's decoded subject, a newline, and its text/plain parts."""
        out = []
        for mail in self.messages:
            subject = str(email.header.make_header(email.header.decode_header(mail["Subject"])))
            plain = [p.get_payload(decode=True).decode() for p in mail.walk()
                     if p.get_content_type() == "text/plain"]
            out.append(subject + "\n" + "\n".join(plain))
        return out


@contextlib.contextmanager
def running_smtp() -> Iterator[tuple[SmtpInbox, int]]:
    """An SMTP server on a free port until the block ends: (inbox, port)."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd's ready check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
