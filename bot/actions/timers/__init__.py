"""What the timers do when they fall due: one function per kind of scheduled task.

The scheduler's ticker (``scheduler/ticker.py``) leases a due task and calls its function
with the unit of work in which it marks the task done, so that a task's effects (a notice in
the outbox, an escalation) and its "done" commit together or not at all. These functions are
actions whose commit belongs to the ticker: they never commit themselves.
"""
