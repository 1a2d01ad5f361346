"""The sandbox page's own words, translated like the bot's (locales/, Babel): the page gets them
in its language from ``/sandbox/state`` as ``texts``. The keys are what the script uses."""

from __future__ import annotations

from bot.i18n import N_

PAGE_TEXTS: dict[str, str] = {
    "title": N_("gridgate sandbox"),
    "intro": N_("A local Telegram for trying gridgate: each chat below talks to the real bot, "
                "over the Bot API, with no Telegram account and no internet."),
    "language": N_("Language"),
    "bot_starting": N_("The bot is starting…"),
    "bot_running": N_("The bot is running"),
    "bot_stopping": N_("The bot is stopping…"),
    "bot_stopped": N_("The bot has stopped"),
    "bot_crashed": N_("The bot stopped unexpectedly; it is being started again"),
    "restart_bot": N_("Restart the bot"),
    "web_chat": N_("Web chat (residents without Telegram)"),
    "web_chat_hint": N_("Opens the bot's web chat in a new tab, at grid {place}: a report "
                        "made there reaches the same grid workers' group as one from "
                        "Telegram."),
    "web_chat_waiting": N_("The web chat opens once the bot is running."),
    "console": N_("Centre console"),
    "console_hint": N_("The centres' console, in a new tab: 周伟 of the district centre signs "
                       "in by sending the /start command it shows, in his own chat with the "
                       "bot."),
    "speaking_as": N_("Speaking as"),
    "write": N_("Write a message…"),
    "send": N_("Send"),
    "reply": N_("Reply"),
    "replying_to": N_("Replying to {name}"),
    "edit": N_("Edit"),
    "editing": N_("Editing your message"),
    "cancel": N_("Cancel"),
    "edited": N_("edited"),
    "photo": N_("Photo"),
    "file": N_("File"),
    "caption": N_("Caption (optional)"),
    "location": N_("Location"),
    "location_title": N_("Share a location"),
    "location_hint": N_("Click the map of the demo district, or enter coordinates."),
    "latitude": N_("Latitude"),
    "longitude": N_("Longitude"),
    "share": N_("Share"),
    "contact_button": N_("Share my phone number"),
    "commands": N_("Commands"),
    "typing": N_("typing…"),
    "empty_chat": N_("No messages yet."),
    "start_hint": N_("This is your chat with {bot}. To begin, press Start (it sends /start), "
                     "as in a new chat in Telegram."),
    "start_button": N_("Start"),
    "has_group": N_("has a group in the sandbox"),
    "block": N_("Block the bot"),
    "unblock": N_("Unblock the bot"),
    "blocked": N_("You blocked the bot. Writing to it again unblocks it."),
    "violations": N_("Bot API violations"),
    "no_violations": N_("Every Bot API call so far follows the specification."),
    "no_spec": N_("No Bot API specification was given, so calls are not checked."),
    "disconnected": N_("Connection to the sandbox lost; reconnecting…"),
    "choose_file": N_("Choose a photo or a file to send."),
    "unknown_language": N_("That language is not available."),
    "no_restart": N_("This sandbox does not run the bot itself, so it cannot restart it."),
    "link_button": N_("Opens {url}"),
    "unsupported_button": N_("This kind of button does not work in the sandbox."),
    "anonymous": N_("anonymous"),
    "spec_checked": N_("Calls are checked against {version}."),
    "bot": N_("Bot"),
    "ok": N_("OK"),
    "close": N_("Close"),
    "insert_command": N_("Put it in the message box"),
    "no_commands": N_("No commands here yet."),
    "remove_attachment": N_("Remove"),
    "reveal": N_("Click to reveal"),
    "expand": N_("Click to show all"),
    "contact": N_("Contact"),
    "unsupported_message": N_("This kind of message is not shown in the sandbox ({kind})."),
    "no_answer": N_("The sandbox did not answer; try again."),
}
