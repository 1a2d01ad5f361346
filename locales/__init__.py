"""gettext catalogs (zh_Hans default, zh_Hant, en) and the tools that keep them complete.

    python -m locales extract   # source → locales/gridgate.pot → update the three .po files
    python -m locales check     # every msgid translated, placeholders intact, catalogs current

The bot compiles the .po files in memory at start-up (bot.i18n), so there is no compile step to
forget; `python -m locales compile` writes .mo files only for tools that want them.
"""
