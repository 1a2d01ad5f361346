"""Timed work. DESIGN §6: durable scheduled tasks claimed by a short APScheduler tick."""
