"""In-process event bus: synchronous fan-out of domain events to subscribers.

Subscribers must be cheap and must not block (an async consumer puts the event on its own bounded
queue and returns). One subscriber raising is logged and never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from callserver.core.events import DomainEvent

log = logging.getLogger(__name__)

Subscriber = Callable[[DomainEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.published = 0
        self.subscriber_errors = 0

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: DomainEvent) -> None:
        self.published += 1
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                self.subscriber_errors += 1
                log.exception("event subscriber %r failed on %s", subscriber, event.type)
