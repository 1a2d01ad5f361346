"""one check-up place per enterprise and slot; wrong invitation codes and waiting enterprises
kept outside the forms

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:00:00.000000
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

_ACTIVE = "status IN ('booked', 'confirmed')"

_booking = sa.table("booking", sa.column("id", sa.Integer), sa.column("slot_id", sa.Integer),
                    sa.column("enterprise_id", sa.Integer), sa.column("ticket_id", sa.Integer),
                    sa.column("status", sa.String),
                    sa.column("updated_at", storage.types.UTCDateTime()))
_slot = sa.table("checkup_slot", sa.column("id", sa.Integer), sa.column("booked", sa.Integer))
_ticket = sa.table("ticket", sa.column("id", sa.Integer), sa.column("status", sa.String),
                   sa.column("details", sa.JSON), sa.column("close_reason", sa.String),
                   sa.column("closed_at", storage.types.UTCDateTime()),
                   sa.column("updated_at", storage.types.UTCDateTime()))
_event = sa.table("ticket_event", sa.column("ticket_id", sa.Integer),
                  sa.column("at", storage.types.UTCDateTime()), sa.column("kind", sa.String),
                  sa.column("actor_id", sa.BigInteger), sa.column("actor_role", sa.String),
                  sa.column("data", sa.JSON))


def _cancel_second_places() -> None:
    """Before the unique index can exist, an enterprise that holds two places in one slot
    (possible before this revision) keeps its first booking; the later ones are cancelled
    as the enterprise's own cancelling would: the place freed, the ticket withdrawn. The
    enterprise still has its check-up at that time."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(_booking.c.id, _booking.c.slot_id, _booking.c.enterprise_id,
                                  _booking.c.ticket_id)
                        .where(_booking.c.status.in_(("booked", "confirmed")))
                        .order_by(_booking.c.id)).all()
    seen: set[tuple[int, int]] = set()
    now = datetime.now(UTC)
    for booking_id, slot_id, enterprise_id, ticket_id in rows:
        if (slot_id, enterprise_id) not in seen:
            seen.add((slot_id, enterprise_id))
            continue
        bind.execute(sa.update(_booking).where(_booking.c.id == booking_id)
                     .values(status="cancelled", updated_at=now))
        bind.execute(sa.update(_slot).where(_slot.c.id == slot_id, _slot.c.booked > 0)
                     .values(booked=_slot.c.booked - 1))
        details = bind.execute(sa.select(_ticket.c.details)
                               .where(_ticket.c.id == ticket_id)).scalar() or {}
        details = {k: v for k, v in details.items() if k != "proposal"}
        details["booking"] = "cancelled"
        bind.execute(sa.update(_ticket).where(_ticket.c.id == ticket_id,
                                              _ticket.c.status.in_(("open", "claimed",
                                                                    "in_progress")))
                     .values(status="withdrawn", close_reason="withdrawn", closed_at=now,
                             updated_at=now, details=details))
        bind.execute(sa.insert(_event).values(
            ticket_id=ticket_id, at=now, kind="withdrawn", actor_id=None, actor_role="system",
            data={"reason": "second place of the enterprise in the slot"}))
        log.warning("cancelled booking %s: its enterprise already held a place in that slot",
                    booking_id)


def upgrade() -> None:
    op.create_table(
        "invite_guess",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invite_guess")),
    )
    op.create_index("ix_invite_guess_user_id_at", "invite_guess", ["user_id", "at"],
                    unique=False)
    op.create_index(op.f("ix_invite_guess_at"), "invite_guess", ["at"], unique=False)
    op.create_table(
        "checkup_waiting",
        sa.Column("enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("told_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"],
                                name=op.f("fk_checkup_waiting_enterprise_id_enterprise")),
        sa.PrimaryKeyConstraint("enterprise_id", name=op.f("pk_checkup_waiting")),
    )
    _cancel_second_places()
    op.create_index("uq_booking_slot_id_enterprise_id_active", "booking",
                    ["slot_id", "enterprise_id"], unique=True,
                    sqlite_where=sa.text(_ACTIVE), postgresql_where=sa.text(_ACTIVE))


def downgrade() -> None:
    op.drop_index("uq_booking_slot_id_enterprise_id_active", table_name="booking")
    op.drop_table("checkup_waiting")
    op.drop_index(op.f("ix_invite_guess_at"), table_name="invite_guess")
    op.drop_index("ix_invite_guess_user_id_at", table_name="invite_guess")
    op.drop_table("invite_guess")
