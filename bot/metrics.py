"""What /metrics shows, in Prometheus' format (prometheus_client).

Counters and the latency histogram are kept by this process (Prometheus adds the instances up);
the gauges that describe the shared database (backlogs, tickets by state, scheduler lag) are read
from it when /metrics is scraped, so every instance reports the same truth.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from telegram import Update

from storage.db import Database
from storage.models import TICKET_STATUSES
from storage.uow import UnitOfWork

__all__ = ["CONTENT_TYPE", "Metrics", "update_type"]

# Handling an update is a few database round trips and a Bot API call or two.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def update_type(update: object) -> str:
    """"message", "callback_query", … — the kind of update, as allowed_updates names it."""
    if isinstance(update, Update):
        for kind in Update.ALL_TYPES:
            if getattr(update, kind, None) is not None:
                return kind
    return "other"


class Metrics:
    """One per process (no global registry: nothing is built at import time)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter("gridgate_updates", "Updates handled, by type", ["type"],
                               registry=r)
        self.duplicates = Counter("gridgate_updates_duplicate",
                                  "Updates received again after they were handled (dropped)",
                                  registry=r)
        self.handling = Histogram("gridgate_update_handling_seconds",
                                  "Time to handle one update, by type", ["type"],
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.webhook_requests = Counter(
            "gridgate_webhook_requests", "Webhook calls, by outcome (stored, duplicate, "
            "forbidden, invalid, unavailable, error)", ["outcome"], registry=r)
        self.outbox_sent = Counter("gridgate_outbox_sent", "Outbox calls Telegram accepted",
                                   registry=r)
        self.outbox_failures = Counter(
            "gridgate_outbox_failures", "Outbox calls that failed, by reason (the error's class, "
            "e.g. Forbidden, BadRequest, RetryAfter, TimedOut, NetworkError)", ["reason"],
            registry=r)
        self.outbox_resent = Counter(
            "gridgate_outbox_resent", "Outbox calls made again because the instance that "
            "made them died (or timed out) before recording Telegram's answer: they may show "
            "twice", registry=r)
        self.outbox_given_up = Counter(
            "gridgate_outbox_given_up", "Outbox calls given up after failing for "
            "delivery.give_up_after", registry=r)
        self.scheduler_tasks = Counter("gridgate_scheduler_tasks_run",
                                       "Scheduled tasks this process ran", registry=r)
        self.outbox_backlog = Gauge("gridgate_outbox_backlog",
                                    "Outbox messages waiting to be sent", registry=r)
        self.outbox_retrying = Gauge(
            "gridgate_outbox_retrying", "Outbox messages that failed at least once and wait "
            "to be tried again", registry=r)
        self.outbox_oldest_retrying = Gauge(
            "gridgate_outbox_oldest_retrying_seconds", "Since when the oldest outbox message "
            "that is being retried was queued (0 when none is)", registry=r)
        self.inbox_backlog = Gauge("gridgate_inbox_backlog",
                                   "Received updates waiting to be handled", registry=r)
        self.tickets = Gauge("gridgate_tickets", "Tickets by state", ["state"], registry=r)
        self.scheduler_lag = Gauge(
            "gridgate_scheduler_lag_seconds",
            "How late the most overdue scheduled task is (0 when none is waiting)", registry=r)
        self.last_tick = Gauge("gridgate_scheduler_last_tick_timestamp_seconds",
                               "When this process's scheduler last ticked", registry=r)
        for state in TICKET_STATUSES:
            self.tickets.labels(state)  # shown as 0 before the first ticket
        for outcome in ("stored", "duplicate", "forbidden", "invalid", "unavailable", "error"):
            self.webhook_requests.labels(outcome)

    def outbox_failed(self, reason: str) -> None:
        self.outbox_failures.labels(reason).inc()

    async def refresh(self, db: Database, now: datetime) -> None:
        """Read the database's gauges (before a scrape)."""
        async with UnitOfWork(db) as uow:
            self.outbox_backlog.set(await uow.outbox.backlog())
            retrying, oldest_retry = await uow.outbox.retrying()
            self.inbox_backlog.set(await uow.inbox.backlog())
            counts = await uow.tickets.count_by_status()
            oldest = await uow.tasks.oldest_due(now)
        self.outbox_retrying.set(retrying)
        self.outbox_oldest_retrying.set(
            max(0.0, (now - oldest_retry).total_seconds()) if oldest_retry else 0.0)
        for state in TICKET_STATUSES:
            self.tickets.labels(state).set(counts.get(state, 0))
        self.scheduler_lag.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
