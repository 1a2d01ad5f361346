"""What the bot's web pages (the residents' web chat, the centres' console) share in the
browser: ``static/`` holds it, served beside each page's own files (bot.web_guard.add_page)."""
