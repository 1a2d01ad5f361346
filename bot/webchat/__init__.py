"""The web chat: a second door for residents without Telegram, reached from the QR code on
their grid's poster (``/chat?at=CODE`` on the bot's own HTTP server).

It drives the same actions and shows the same views as the Telegram door (``inputs``), keeps
every conversation in the database (``bot.actions.webchat``; what the bot says on its own
initiative arrives through the outbox: ``bot.delivery.web``), and guards itself on the open
internet (``bot.web_guard``: Origin, CSRF token, cookie, rate limits, headers; ``photos``: uploads
checked by content and re-encoded without their metadata). ``routes`` is the HTTP door; the
page is ``static/`` (plain HTML, CSS and JavaScript, no inline script, no third party).
"""
