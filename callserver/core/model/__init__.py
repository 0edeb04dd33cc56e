"""The live model of calls, queues and agents (pure: standard library only).

``LiveModel`` is the entry point; the records it is built from stay private to this package.
"""

from __future__ import annotations

from callserver.core.model.live import LiveModel
from callserver.core.model.records import (
    ChannelInfo,
    MemberInfo,
    QueueEntryInfo,
    QueueSnapshot,
    StoredCall,
    WaitingCaller,
)
from callserver.core.model.resyncer import RESYNC_CAUSE

__all__ = [
    "RESYNC_CAUSE",
    "ChannelInfo",
    "LiveModel",
    "MemberInfo",
    "QueueEntryInfo",
    "QueueSnapshot",
    "StoredCall",
    "WaitingCaller",
]
