"""A local Telegram for gridgate: a Bot API server that answers as Telegram does, the people who
talk to the bot, and a page to be those people in a browser (`gridgate demo`).

world.py   the Bot API's state and methods (shared with the tests' fake transport)
api.py     the Bot API over HTTP;  webhook.py  updates pushed to a webhook
people.py  what people do, as the updates Telegram would deliver
server.py  one sandbox on one address;  page.py  the page and its JSON/WebSocket API
demo.py    the demo's cast and `gridgate demo`, which runs the bot against it
"""
