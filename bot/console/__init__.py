"""The centres' console: staff of the district, street and community centres and the desk
leads sign in through the bot (``/console``) and see, live, where their subtree stands: the
map of open and overdue tickets, the rates they are judged by, and the queue of what needs a
push. ``routes`` is the HTTP door (on the bot's own server, beside the web chat); it asks
the actions (``bot.actions.console``) and shows their plain data; ``static/`` is the page.
"""
