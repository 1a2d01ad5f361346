"""Unit of work: one session, one transaction, the repositories that share it.

Repositories never commit; the service that owns the unit of work does. When the unit of work
runs while an update is being handled, its commit also records that update's id, so the effects
of an update and the fact that it was handled land together or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.models import ProcessedUpdate
from storage.repositories.admin_log import AdminLogRepository
from storage.repositories.bookings import BookingRepository
from storage.repositories.console_access import ConsoleAccessRepository
from storage.repositories.drafts import DraftRepository
from storage.repositories.enterprises import EnterpriseRepository
from storage.repositories.groups import GroupRepository
from storage.repositories.inbox import InboxRepository
from storage.repositories.nodes import NodeRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.privacy import PersonalDataRepository
from storage.repositories.surveys import SurveyRepository
from storage.repositories.tasks import TaskRepository
from storage.repositories.tickets import TicketRepository
from storage.repositories.updates import UpdateRepository
from storage.repositories.users import UserRepository
from storage.repositories.web import WebRepository


class DuplicateUpdate(Exception):
    """Another worker already committed the handling of this update_id."""


class LeaseLost(DuplicateUpdate):
    """This instance's lease on the update ran out and another instance took it over: the
    other one's handling stands, and this one must not commit."""


@dataclass
class InboxLease:
    """The inbox row an update is handled under (webhook mode, bot.inbox): the update's
    first commit removes it, so taking the update from the inbox and handling it need no
    transaction of their own, and learns the chat's next update (``next_head``)."""

    token: str
    chat_key: str
    removed: bool = False
    next_head: int | None = None


@dataclass
class UpdateScope:
    """The update being handled by the current asyncio task, if any."""

    update_id: int
    received_at: datetime
    recorded: bool = False
    # The inbox lease the update is handled under (webhook mode): its row goes at commit.
    inbox: InboxLease | None = None
    # The update's first commit comes after a message is sent (a question whose message id
    # is remembered with it): nothing records the id before (bot.actions.updates).
    deferred: bool = False
    # A commit was refused: the update had been handled before (counted once, by the
    # processor).
    duplicate: bool = False
    # What the door keeps with the update's first commit (the web chat: the message as the
    # person sent it), so it is stored exactly when the update counts as handled.
    with_first_commit: Callable[[UnitOfWork], Awaitable[None]] | None = None


_RECORD_UPDATE = insert(ProcessedUpdate.__table__)

current_update: ContextVar[UpdateScope | None] = ContextVar("current_update", default=None)
# Set by the inbox dispatcher around the handling of a leased update (bot.inbox).
current_inbox_lease: ContextVar[InboxLease | None] = ContextVar("current_inbox_lease",
                                                              default=None)


class UnitOfWork:
    session: AsyncSession
    nodes: NodeRepository
    groups: GroupRepository
    users: UserRepository
    updates: UpdateRepository
    tickets: TicketRepository
    drafts: DraftRepository
    outbox: OutboxRepository
    tasks: TaskRepository
    surveys: SurveyRepository
    enterprises: EnterpriseRepository
    bookings: BookingRepository
    privacy: PersonalDataRepository
    admin_log: AdminLogRepository
    inbox: InboxRepository
    web: WebRepository
    console: ConsoleAccessRepository

    def __init__(self, db: Database) -> None:
        self._db = db

    async def __aenter__(self) -> UnitOfWork:
        if self._db.turns is not None:
            await self._db.turns.acquire()  # in turn (storage.db.Turns)
        self.session = self._db.sessions()
        self.nodes = NodeRepository(self.session)
        self.groups = GroupRepository(self.session)
        self.users = UserRepository(self.session)
        self.updates = UpdateRepository(self.session)
        self.tickets = TicketRepository(self.session)
        self.drafts = DraftRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.tasks = TaskRepository(self.session)
        self.surveys = SurveyRepository(self.session)
        self.enterprises = EnterpriseRepository(self.session)
        self.bookings = BookingRepository(self.session)
        self.privacy = PersonalDataRepository(self.session)
        self.admin_log = AdminLogRepository(self.session)
        self.inbox = InboxRepository(self.session)
        self.web = WebRepository(self.session)
        self.console = ConsoleAccessRepository(self.session)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        # Closing drops whatever was not committed (the connection goes back to the pool rolled
        # back), and unlike rollback() it leaves loaded objects readable, detached, for the
        # handler to render after the transaction is over.
        try:
            await self.session.close()
        finally:
            if self._db.turns is not None:
                self._db.turns.release()

    async def commit(self) -> None:
        scope = current_update.get()
        if scope is not None and not scope.recorded:
            # A Core insert, not an ORM object flushed: it is made on every update, and the
            # ORM's bookkeeping for an object nobody reads again cost more than the insert.
            # The primary key refuses an update handled before.
            try:
                await self.session.execute(_RECORD_UPDATE, {
                    "update_id": scope.update_id, "processed_at": scope.received_at})
            except IntegrityError as exc:
                await self.session.rollback()
                scope.duplicate = True
                raise DuplicateUpdate(scope.update_id) from exc
            inbox = scope.inbox
            if inbox is not None:
                # The fence a lease lost meanwhile cannot pass (the row is another
                # instance's now), and the handled row leaves the inbox with the effects.
                if not await self.inbox.remove(scope.update_id, inbox.token):
                    await self.session.rollback()
                    raise LeaseLost(scope.update_id)
                next_head = await self.inbox.head_of(inbox.chat_key)
            if scope.with_first_commit is not None:
                await scope.with_first_commit(self)
        await self.session.commit()
        if scope is not None and not scope.recorded:
            scope.recorded = True
            if scope.inbox is not None:
                scope.inbox.removed, scope.inbox.next_head = True, next_head
