"""Email over SMTP (``smtplib``): apprise parses the ``mailto://``/``mailtos://`` URL, we send.

The mail is ``multipart/alternative``: the plain-text part as rendered (every vulnerability id
listed), then the HTML part, with an ``X-Scanwatch-Message-Id`` header (and a ``Message-ID``
derived from it) so that a resend after a crash can be recognised.

The server's answer decides what happens next:

- 535/534/530 (authentication failed or required) and any other 5xx reply: permanent, with
  the server's words (a wrong password is dead-lettered at once, not retried until max_age);
- 4xx replies (greylisting, mailbox busy, too many connections): retried;
- no answer (refused, reset, timeout, TLS failure): retried.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from daemon.alerts.transports.base import SendOutcome, permanent, sent, transient
from daemon.alerts.transports.http import MESSAGE_ID_HEADER

TIMEOUT = 30.0


def _words(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())[:200]


def _reply(code: int, said: bytes | str) -> SendOutcome:
    error = f"SMTP {code} {_words(said)}".strip()
    if 400 <= code < 500:
        return transient(error)
    return permanent(error)


class EmailTransport:
    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin

    def build(self, title: str, body: str, body_format: str, message_id: str,
              text: str = "") -> EmailMessage:
        p = self.plugin
        mail = EmailMessage()
        name, addr = p.from_addr
        mail["From"] = formataddr((name or "", addr)) if name else addr
        mail["To"] = ", ".join(formataddr((n, a)) if n else a for n, a in p.targets)
        if p.cc:
            mail["Cc"] = ", ".join(sorted(p.cc))
        mail["Subject"] = title
        mail[MESSAGE_ID_HEADER] = message_id
        domain = addr.rpartition("@")[2] or "scanwatch.invalid"
        mail["Message-ID"] = make_msgid(idstring=f"scanwatch.{message_id}", domain=domain)
        for key, value in p.headers.items():
            mail[key] = value
        if body_format == "html":
            if not text:  # a caller without our text form: apprise's conversion of the HTML
                from daemon.alerts.transports import email_text_part

                text = email_text_part(body)
            mail.set_content(text)
            mail.add_alternative(body, subtype="html")
        else:
            mail.set_content(body)
        return mail

    def _connect(self) -> smtplib.SMTP:
        p = self.plugin
        context = ssl.create_default_context()
        if not p.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        host, port = p.smtp_host, p.port
        if p.secure and p.secure_mode == "ssl":
            return smtplib.SMTP_SSL(host, port or 465, timeout=TIMEOUT, context=context)
        smtp = smtplib.SMTP(host, port or (587 if p.secure else 25), timeout=TIMEOUT)
        if p.secure and p.secure_mode == "starttls":
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
        return smtp

    def notify(self, title: str, body: str, body_format: str, *, message_id: str,
               text: str = "") -> SendOutcome:
        p = self.plugin
        if not p.targets:
            return permanent("no recipient in the mailto URL")
        mail = self.build(title, body, body_format, message_id, text)
        recipients = [a for _, a in p.targets] + sorted(p.cc) + sorted(p.bcc)
        try:
            with self._connect() as smtp:
                if p.user and p.password:
                    smtp.login(p.user, p.password)
                refused = smtp.send_message(mail, from_addr=p.from_addr[1],
                                            to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            code, said = next(iter(exc.recipients.values()))
            return _reply(code, said)
        except smtplib.SMTPResponseException as exc:  # auth (535), sender refused, data refused
            return _reply(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPNotSupportedError as exc:
            return permanent(f"SMTP: {_words(str(exc))}")
        except (smtplib.SMTPException, OSError) as exc:
            return transient(f"no answer from SMTP server ({type(exc).__name__})")
        if refused:
            code, said = next(iter(refused.values()))
            return _reply(code, said)
        return sent()
