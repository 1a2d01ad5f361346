"""What the bot's web pages (the residents' web chat, the centres' console) share in the
browser, in ``static/``: the DOM helper (dom.js) and the base style (pages.css), served beside
each page's own files (bot.web_guard.add_page)."""
