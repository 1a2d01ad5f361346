"""Typed SQLAlchemy models. The database is the truth: nothing lives only in a process's memory."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import AutoId, TelegramId, UTCDateTime

# Named constraints keep Alembic migrations stable and portable across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NODE_LEVELS = ("district", "street", "town", "park", "community", "village", "grid", "desk")
LANGUAGE_CODES = ("zh_Hans", "zh_Hant", "en")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class OrgNode(Base):
    """A place in the org tree (district → street → community → grid) or a desk.

    Desks (legal service, enterprise service) are non-geographic teams that hang under the
    district, so binding, routing and escalation treat them like any other node.
    """

    __tablename__ = "org_node"
    __table_args__ = (CheckConstraint(f"level IN ({_in(NODE_LEVELS)})", name="level"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_node.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    name_zh_hant: Mapped[str | None] = mapped_column(String(64))
    name_en: Mapped[str | None] = mapped_column(String(64))
    # GeoJSON text of a Polygon/MultiPolygon in WGS84 lon/lat; spatial queries run in memory
    # through shapely's STRtree, so no spatial extension is needed on either database.
    geometry: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    parent: Mapped[OrgNode | None] = relationship(remote_side=[id], lazy="raise")

    def display_name(self, language: str) -> str:
        if language == "zh_Hant" and self.name_zh_hant:
            return self.name_zh_hant
        if language == "en" and self.name_en:
            return self.name_en
        return self.name


class GroupChat(Base):
    """A Telegram group the bot is in, and the node it serves (one group ↔ one node)."""

    __tablename__ = "group_chat"
    __table_args__ = (
        CheckConstraint(f"language IN ({_in(LANGUAGE_CODES)})", name="language"),
    )

    chat_id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(255), default="")
    chat_type: Mapped[str] = mapped_column(String(16))
    is_forum: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether the bot may create forum topics here (an administrator with can_manage_topics);
    # None until Telegram says (my_chat_member, or asked before the first topic).
    can_manage_topics: Mapped[bool | None] = mapped_column(Boolean)
    # False once the bot was removed or the group migrated away; kept for history.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_node.id", ondelete="SET NULL"), unique=True
    )
    language: Mapped[str] = mapped_column(String(8), default="zh_Hans")
    bound_by: Mapped[int | None] = mapped_column(TelegramId)
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    node: Mapped[OrgNode | None] = relationship(lazy="raise")


class User(Base):
    """A person who talks to the bot in private. Personal fields stay minimal."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(
            f"language IS NULL OR language IN ({_in(LANGUAGE_CODES)})", name="language"
        ),
    )

    id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    # The explicit choice from /language; None means "follow Telegram's language_code".
    language: Mapped[str | None] = mapped_column(String(8))
    telegram_language_code: Mapped[str | None] = mapped_column(String(35))
    # Set when Telegram says the user blocked the bot; cleared when they write again.
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProcessedUpdate(Base):
    """An update_id already handled, written in the transaction that handled it,
    so a redelivered update is not handled twice."""

    __tablename__ = "processed_update"

    update_id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class InboundUpdate(Base):
    """An update received by the webhook and not yet handled (the inbox).

    The webhook answers Telegram only once the update is stored here, so an acknowledged
    update survives any crash. Every instance takes work from this table: only the oldest row
    of each chat (``chat_key``) may be leased, so one chat's updates are handled one at a time,
    in update_id order, whichever process handles them; a lease that runs out (a killed
    process) lets another instance take the row over. The row is deleted once handled.
    """

    __tablename__ = "inbound_update"
    __table_args__ = (Index("ix_inbound_update_chat_key_update_id", "chat_key", "update_id"),)

    update_id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    # "chat:<id>", "user:<id>" or "update:<id>" (no chat: ordered with nothing else).
    chat_key: Mapped[str] = mapped_column(String(48))
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease: Mapped[str | None] = mapped_column(String(32))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Leases taken: an update that keeps killing its process is set aside after a few.
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class TicketStatus(StrEnum):
    """Where a ticket is in its life; stored as the plain value, so a row read back compares
    equal to the member. Which action leads from which status to which is the transition
    table in bot.services.states."""

    OPEN = "open"                # waiting to be claimed
    CLAIMED = "claimed"          # a worker holds it
    IN_PROGRESS = "in_progress"  # its holder is working on it
    RESOLVED = "resolved"        # done, waiting for the residents' answer
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"      # the resident took it back


TICKET_STATUSES = tuple(TicketStatus)
OPEN_STATUSES = (TicketStatus.OPEN, TicketStatus.CLAIMED, TicketStatus.IN_PROGRESS)


class Draft(Base):
    """A conversation in progress: one row per person and flow, written at every
    step, so a restart or a second process continues exactly where the person was."""

    __tablename__ = "draft"
    __table_args__ = (UniqueConstraint("user_id", "flow"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId, index=True)
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When the idle resident was reminded (once per idle spell; a new answer clears it).
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TicketSequence(Base):
    """The daily counter behind public ticket numbers such as 1122-0042."""

    __tablename__ = "ticket_sequence"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Ticket(Base):
    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(TICKET_STATUSES)})", name="status"),
        Index("ix_ticket_category_status", "category", "status"),
        Index("ix_ticket_reporter_created", "reporter_id", "created_at"),
        # Digests and /stats count tickets opened, first claimed and resolved in a period,
        # and the open (and overdue) ones now.
        Index("ix_ticket_created_at", "created_at"),
        Index("ix_ticket_claimed_at", "claimed_at"),
        Index("ix_ticket_resolved_at", "resolved_at"),
        Index("ix_ticket_status_deadline", "status", "deadline_at"),
        # The retention sweep looks for tickets over for longer than the retention.
        Index("ix_ticket_closed_at", "closed_at"),
        # A street's or a community's numbers and the console: the tickets of a subtree's
        # nodes (node_id IN …) created or first claimed in a period, without reading all of
        # theirs; the created one covers what is summed of them.
        Index("ix_ticket_node_created", "node_id", "created_at", "status", "close_reason",
              "resolved_at", "claimed_at", "claim_due_at"),
        Index("ix_ticket_node_claimed", "node_id", "claimed_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    # Where it is handled now (moves on transfer and escalation) and where the place is.
    node_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("org_node.id"))
    address: Mapped[str | None] = mapped_column(String(256))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # None once the reporter's personal data is erased (bot.services.privacy).
    reporter_id: Mapped[int | None] = mapped_column(TelegramId)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    # Kept only when not anonymous; workers see the name and a masked phone.
    reporter_name: Mapped[str | None] = mapped_column(String(128))
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    holder_id: Mapped[int | None] = mapped_column(TelegramId)
    holder_name: Mapped[str | None] = mapped_column(String(128))
    # The group message that shows the ticket (edited in place) and its forum topic, if any.
    group_chat_id: Mapped[int | None] = mapped_column(TelegramId)
    card_message_id: Mapped[int | None] = mapped_column(Integer)
    topic_id: Mapped[int | None] = mapped_column(Integer)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # For the programme's rates: when it was first claimed, whether the last
    # resolution met its deadline, how often residents sent it back, and why it closed.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it had to be claimed by: the claim escalation's moment when it was reported (the
    # category's claim time at its node's level, counted outside quiet hours for a ticket
    # that is not urgent). The response rate compares claimed_at with it; None on tickets
    # reported before it was kept.
    claim_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    # Passed up for being overdue: late, even if resolved in time at the next level.
    missed_deadline: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    close_reason: Mapped[str | None] = mapped_column(String(16))  # CLOSE_REASONS
    # What a consultation or check-up asked for (how to answer, which day, consent
    # to a call-back, topics), and the enterprise a request is made for.
    details: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id"), index=True)
    # When the personal data on the ticket was erased (at the reporter's request or
    # after the retention period); what is left is anonymous statistics.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# "erased": a resolved ticket closed early because its reporter had their data erased.
CLOSE_REASONS = ("rated", "unanswered", "withdrawn", "no_show", "erased")
SURVEY_STATUSES = ("waiting", "asked", "answered", "unanswered", "cancelled")


class TicketSurvey(Base):
    """One resident's follow-up (回访) on one resolution of a ticket: the reporter and each
    co-reporter are asked, and a reopened ticket is asked again in a new round."""

    __tablename__ = "ticket_survey"
    __table_args__ = (
        UniqueConstraint("ticket_id", "user_id", "round"),
        CheckConstraint(f"status IN ({_in(SURVEY_STATUSES)})", name="status"),
        CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score"),
        Index("ix_ticket_survey_answered_at", "answered_at"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    # None once the resident's personal data is erased: the answer stays as a statistic.
    user_id: Mapped[int | None] = mapped_column(TelegramId)
    round: Mapped[int] = mapped_column(Integer)  # the ticket's reopen_count when asked
    # The node that resolved the ticket in this round: the answer rates its work, wherever
    # the ticket goes afterwards (a poor answer moves it up).
    node_id: Mapped[int | None] = mapped_column(ForeignKey("org_node.id"))
    status: Mapped[str] = mapped_column(String(12))
    solved: Mapped[bool | None] = mapped_column(Boolean)
    score: Mapped[int | None] = mapped_column(Integer)  # 1 非常不满意 … 5 非常满意
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TicketResolution(Base):
    """Each resolution of a ticket, at the node that made it. The ticket keeps only its
    latest (a reopening clears it), but every resolution was work done where it was done:
    the statistics count these, so a desk whose answer was sent back up keeps it."""

    __tablename__ = "ticket_resolution"
    __table_args__ = (Index("ix_ticket_resolution_resolved_at", "resolved_at"),
                      # the resolutions made under a subtree's nodes in a period
                      Index("ix_ticket_resolution_node_resolved", "node_id", "resolved_at",
                            "on_time"))

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"))
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Resolved by the deadline it had then (None: it had none; a ticket passed up for being
    # overdue stays late).
    on_time: Mapped[bool | None] = mapped_column(Boolean)


class TicketEvent(Base):
    """The append-only log of everything that happened to a ticket."""

    __tablename__ = "ticket_event"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(TelegramId)
    actor_role: Mapped[str] = mapped_column(String(16))  # resident, worker, admin, system
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class TicketReporter(Base):
    """Co-reporters: residents who added themselves to an existing nearby ticket."""

    __tablename__ = "ticket_reporter"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId, primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TicketAttachment(Base):
    __tablename__ = "ticket_attachment"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # photo, video, voice, video_note, document
    file_id: Mapped[str] = mapped_column(String(256))
    added_by_role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TicketMessage(Base):
    """A Telegram message that belongs to a ticket, so a reply to it can be relayed."""

    __tablename__ = "ticket_message"

    chat_id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    # "card", "resolve_prompt", "transfer_prompt", ... ; plain relayed messages are "relay".
    purpose: Mapped[str] = mapped_column(String(24), default="relay")


class OutboxMessage(Base):
    """A Bot API call the bot makes on its own initiative, written in the
    transaction that caused it and delivered by the rate-limited sender."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_not_before", "status", "not_before"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(TelegramId, index=True)
    method: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict] = mapped_column(JSON)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    # What the sent message is to the ticket (recorded in ticket_message), e.g. "card".
    purpose: Mapped[str | None] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScheduledTask(Base):
    """A future action: written with the event that needs it, cancelled when it no
    longer applies, claimed by the ticker when due and marked done in the same transaction as
    its effects, so it runs once even with several processes or after a crash."""

    __tablename__ = "scheduled_task"
    __table_args__ = (Index("ix_scheduled_task_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending/done/…
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(TelegramId)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    # One live task per key (e.g. a digest per group and day); re-scheduling moves it.
    key: Mapped[str | None] = mapped_column(String(160), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease: Mapped[str | None] = mapped_column(String(32))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


ENTERPRISE_ROLES = ("owner", "contact")


class Enterprise(Base):
    """A registered enterprise (企业): identified by its unified social credit code
    (统一社会信用代码, GB 32100-2015), with one or more contacts."""

    __tablename__ = "enterprise"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    industry: Mapped[str] = mapped_column(String(32))
    # The park or street it belongs to (a node of the org tree).
    node_id: Mapped[int | None] = mapped_column(ForeignKey("org_node.id"))
    # Given by a contact to a colleague who joins as another contact.
    invite_code: Mapped[str] = mapped_column(String(16), unique=True)
    created_by: Mapped[int | None] = mapped_column(TelegramId)  # None once erased
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EnterpriseContact(Base):
    """A person who may act for an enterprise; one person may manage several."""

    __tablename__ = "enterprise_contact"
    __table_args__ = (
        CheckConstraint(f"role IN ({_in(ENTERPRISE_ROLES)})", name="role"),
    )

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId, primary_key=True, index=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(12))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InviteGuess(Base):
    """A wrong invitation code someone typed. Counted per person, outside any form: cancelling
    the form, or starting another conversation, must not give the guesser fresh tries. Rows
    older than the guessing window are of no use and are removed."""

    __tablename__ = "invite_guess"
    __table_args__ = (Index("ix_invite_guess_user_id_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CheckupWaiting(Base):
    """An enterprise that wanted a check-up when no place was free: when the desk was last
    told, so that it hears of each enterprise once in a while, not at every try."""

    __tablename__ = "checkup_waiting"

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), primary_key=True,
                                               autoincrement=False)
    told_at: Mapped[datetime] = mapped_column(UTCDateTime)


SLOT_STATUSES = ("open", "closed")
BOOKING_STATUSES = ("booked", "confirmed", "cancelled", "done", "no_show")


class CheckupSlot(Base):
    """A time the lawyer desk offers for check-ups, with a number of places. ``booked`` never
    exceeds ``capacity`` (a constraint; bookings take a place with a conditional update)."""

    __tablename__ = "checkup_slot"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(SLOT_STATUSES)})", name="status"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="places"),
        Index("ix_checkup_slot_status_starts", "status", "starts_at"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    desk_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default="open")
    created_by: Mapped[int] = mapped_column(TelegramId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


ACTIVE_BOOKING_STATUSES = ("booked", "confirmed")
_ACTIVE_BOOKING = text(f"status IN ({_in(ACTIVE_BOOKING_STATUSES)})")


class Booking(Base):
    """An enterprise's place in a check-up slot; its ticket carries the card and the relay.

    An enterprise holds at most one place in a slot, whichever of its contacts books: the
    places are for different enterprises. A partial unique index enforces it, so two contacts
    booking at the same moment cannot both get one (on SQLite and PostgreSQL alike)."""

    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(BOOKING_STATUSES)})", name="status"),
        Index("uq_booking_slot_id_enterprise_id_active", "slot_id", "enterprise_id",
              unique=True, sqlite_where=_ACTIVE_BOOKING, postgresql_where=_ACTIVE_BOOKING),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("checkup_slot.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), unique=True)
    topics: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default="booked")
    lawyer_id: Mapped[int | None] = mapped_column(TelegramId)
    lawyer_name: Mapped[str | None] = mapped_column(String(128))
    report: Mapped[str | None] = mapped_column(Text)
    booked_by: Mapped[int | None] = mapped_column(TelegramId)  # None once erased
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


ADMIN_ACTION_SOURCES = ("telegram", "cli", "system")


class AdminAction(Base):
    """What an administrator (or the system, for the retention sweep) did to the data: one row
    per action, written in the transaction of the action itself. ``details`` holds
    codes and counts, never personal data."""

    __tablename__ = "admin_action"
    __table_args__ = (
        CheckConstraint(f"source IN ({_in(ADMIN_ACTION_SOURCES)})", name="source"),
        Index("ix_admin_action_at", "at"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(12))
    # Who: the Telegram account of a bot command, or the operating-system account that ran
    # a CLI command.
    actor_id: Mapped[int | None] = mapped_column(TelegramId)
    actor_name: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict] = mapped_column(JSON, default=dict)


# -- the web chat ---------------------------------------------------------------------------------

# Residents of the web chat are people like Telegram's, with ids of their own far above any
# Telegram user id (Telegram's have at most 52 significant bits): their private "chat" with the
# bot has the same id, so drafts, tickets and the outbox need no second kind of person.
WEB_USER_BASE = 1 << 60


def is_web_user(user_id: int | None) -> bool:
    return user_id is not None and user_id >= WEB_USER_BASE


class WebResident(Base):
    """A person of the web chat: their user id is ``WEB_USER_BASE + id``. ``last_seq`` numbers
    the conversation's entries; it is taken under this row's lock, so entries commit in the
    order of their numbers and a page that has seen entry n has seen every one before it."""

    __tablename__ = "web_resident"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The SHA-256 of the recovery code that opens this person's conversation on another
    # device (the code itself is shown once, never stored).
    recovery_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A browser's session: its cookie holds a random token, this row only the token's
    SHA-256, so a copy of the database opens no conversation."""

    __tablename__ = "web_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("web_resident.id", ondelete="CASCADE"),
                                             index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    # The token is replaced the first time the session is used for something (a cookie
    # planted in the browser before then opens nothing the person did).
    rotated: Mapped[bool] = mapped_column(Boolean, default=False)
    at_code: Mapped[str | None] = mapped_column(String(48))  # the poster's place
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class WebEntry(Base):
    """One entry of a web resident's conversation, in order (``seq``): a message (the bot's or
    the person's) or the edit of an earlier one (``message_id``: the message it shows or
    changes). ``outbox_id``: the outbox row it delivers, so a row sent again after a crash
    is shown once."""

    __tablename__ = "web_entry"
    __table_args__ = (
        UniqueConstraint("resident_id", "seq", name="uq_web_entry_resident_seq"),
        CheckConstraint("sender IN ('bot', 'me')", name="sender"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("web_resident.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[int] = mapped_column(Integer)
    edit: Mapped[bool] = mapped_column(Boolean, default=False)
    sender: Mapped[str] = mapped_column(String(4))
    body: Mapped[dict] = mapped_column(JSON)
    outbox_id: Mapped[int | None] = mapped_column(TelegramId, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebFile(Base):
    """A photo a web resident sent (re-encoded, without its EXIF data), by an unguessable
    token; cards and relays send it to Telegram as an upload."""

    __tablename__ = "web_file"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("web_resident.id", ondelete="CASCADE"),
                                             index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- the centres' console ---------------------------------------------------------------------

CONSOLE_SIGNIN_STATES = ("waiting", "confirmed", "used", "refused")


class ConsoleSignin(Base):
    """A browser asking to sign in to the console: the nonce it shows (as a Telegram link) and
    the browser's own secret, both kept as SHA-256. The person who presses Start in Telegram
    confirms it (``user_id``); only the browser holding the secret then gets the session, once."""

    __tablename__ = "console_signin"
    __table_args__ = (
        CheckConstraint(f"state IN ({_in(CONSOLE_SIGNIN_STATES)})", name="state"),
    )

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(12), default="waiting")
    user_id: Mapped[int | None] = mapped_column(TelegramId)
    name: Mapped[str | None] = mapped_column(String(128))
    # The nodes whose groups the person is in (their subtrees are what they see).
    roots: Mapped[list] = mapped_column(JSON, default=list)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ConsoleSession(Base):
    """A signed-in console browser: its cookie's token as SHA-256, who it is, what they see."""

    __tablename__ = "console_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId, index=True)
    name: Mapped[str] = mapped_column(String(128))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    roots: Mapped[list] = mapped_column(JSON, default=list)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When the person's groups were last asked (membership is checked again after a while).
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
