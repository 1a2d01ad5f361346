"""Delivery to Telegram: the rate-limited outbox sender and what permanent
failures mean for the data. See ``bot.delivery.sender`` for how to run it."""

from bot.delivery.facts import PostCard, group_gone, note_only_card, reroute_from_group
from bot.delivery.sender import OutboxSender

__all__ = ["OutboxSender", "PostCard", "group_gone", "note_only_card", "reroute_from_group"]
