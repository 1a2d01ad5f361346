"""What the web chat says of its own: its page's words, the recovery code, and the refusals
that only a web page meets (too many messages, a file that is not a photo)."""

from __future__ import annotations

from bot.i18n import Translator


def page_strings(t: Translator) -> dict[str, str]:
    """The page's own words (buttons, hints) in the person's language."""
    return {
        "title": t("Community service chat"),
        "placeholder": t("Type a message"),
        "send": t("Send"),
        "photo": t("Photo"),
        "location": t("Location"),
        "share_location": t("Share my location"),
        "pick_on_map": t("Pick on the map"),
        "map_title": t("Where is it?"),
        "map_hint": t("Tap the place on the map, then confirm."),
        "confirm": t("Confirm this place"),
        "cancel": t("Cancel"),
        "phone_placeholder": t("Mobile number, e.g. 138 0013 8000"),
        "phone_send": t("Send number"),
        "reconnecting": t("Reconnecting…"),
        "offline": t("You are offline. Your message will be sent when the connection is back."),
        "sending": t("Sending…"),
        "reply": t("Reply"),
        "language": t("Language"),
        "recover": t("I have a recovery code"),
        "recover_hint": t("Enter the recovery code you were given on your other device."),
        "recover_send": t("Open my conversation"),
        "menu": t("Menu"),
        "no_push": t("This page cannot notify you when it is closed: come back to this page "
                     "to see replies to your requests."),
        "geolocation_denied": t("Your browser did not share your location. Pick the place "
                                "on the map instead."),
        "too_large": t("That photo is too large."),
        "not_image": t("Only photos can be sent here."),
        "error": t("Something went wrong. Please try again."),
    }


def location_sent(t: Translator, latitude: float, longitude: float) -> str:
    return t("📍 A place on the map ({latitude}, {longitude})", latitude=format(latitude, ".5f"),
             longitude=format(longitude, ".5f"))


def recovery_code(t: Translator, code: str) -> str:
    return t("🔑 <b>Your recovery code: {code}</b>\n"
             "Keep it. To see your requests on another phone or computer, open this chat "
             "there and choose “I have a recovery code” in the menu.", code=code)


def recovered(t: Translator) -> str:
    return t("✅ This device now shows your conversation.")


def wrong_recovery_code(t: Translator) -> str:
    return t("That recovery code is not right. Check it and try again.")


def too_many(t: Translator) -> str:
    return t("Too many messages in a short time. Please wait a moment and try again.")


def too_many_sessions(t: Translator) -> str:
    return t("Too many new conversations from this network. Please try again later.")


def too_many_photos(t: Translator) -> str:
    return t("Too many photos in a short time. Please try again later.")


def not_a_photo(t: Translator) -> str:
    return t("Only photos can be sent here (JPEG, PNG or WebP).")


def photo_too_large(t: Translator, megabytes: int) -> str:
    return t("That photo is too large: at most {megabytes} MB.", megabytes=megabytes)


def not_a_mobile(t: Translator) -> str:
    return t("That is not a mobile number. Please enter 11 digits, e.g. 138 0013 8000.")


def forbidden_origin(t: Translator) -> str:
    return t("This request did not come from the chat page. Please reload the page.")


def session_expired(t: Translator) -> str:
    return t("Your session has expired. Please reload the page.")


def bad_request(t: Translator) -> str:
    return t("That could not be understood. Please reload the page.")


def text_too_long(t: Translator, limit: int) -> str:
    return t("That message is too long: at most {limit} characters.", limit=limit)
