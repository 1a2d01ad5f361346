"""A resident's answer to the follow-up survey, in words: for the survey itself, the history
and the resident's own list."""

from __future__ import annotations

from bot.i18n import N_, Translator

SCORE_LABELS = {
    5: N_("😊 Very satisfied"),
    4: N_("🙂 Satisfied"),
    3: N_("😐 Fairly satisfied"),
    2: N_("🙁 Dissatisfied"),
    1: N_("😞 Very dissatisfied"),
}

# The first answer in the words of the question it answers: a check-up that did not help was
# not a problem left unsolved.
_ANSWERED = {
    "consultation": (N_("Answered"), N_("Not answered")),
    "checkup": (N_("Helped"), N_("Did not help")),
}


def rating_words(t: Translator, solved: bool, score: int | None, kind: str) -> str:
    """"Solved · 🙂 Satisfied (4/5)": an answer as the resident and the workers read it
    ("Not solved" alone when no score was given)."""
    yes, no = _ANSWERED.get(kind, (N_("Solved"), N_("Not solved")))
    solved_words = t(yes) if solved else t(no)
    if not score:
        return solved_words
    label = t(SCORE_LABELS[score]) if score in SCORE_LABELS else "?"
    return f"{solved_words} · {label} ({score}/5)"
