"""Timed work: scheduled tasks are database rows (a restart loses none, and several processes
never run one twice), claimed by a short APScheduler tick."""
