"""Read the mail that the lab's SMTP sink (aiosmtpd, Maildir handler) received."""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from email.message import Message

from course.paths import LabPaths


@dataclass(frozen=True)
class Mail:
    sender: str
    to: str
    subject: str
    date: str
    body: str

    def summary(self) -> str:
        return f"{self.date}  {self.sender} -> {self.to}  {self.subject!r}"


def _body(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    texts = []
    for part in parts:
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True) or b""
            texts.append(payload.decode(part.get_content_charset() or "utf-8", errors="replace"))
    return "\n".join(texts)


def read_mail(paths: LabPaths, limit: int | None = None) -> list[Mail]:
    """Messages oldest first; the last ``limit`` of them when given."""
    if not (paths.mail_dir / "cur").exists() and not (paths.mail_dir / "new").exists():
        return []
    box = mailbox.Maildir(paths.mail_dir, create=False)
    found = []
    for key in box.iterkeys():
        msg = box.get_message(key)
        found.append((msg.get_date(), Mail(
            sender=msg.get("From", ""), to=msg.get("To", ""), subject=msg.get("Subject", ""),
            date=msg.get("Date", ""), body=_body(msg))))
    found.sort(key=lambda pair: pair[0])
    mails = [m for _, m in found]
    return mails[-limit:] if limit else mails
