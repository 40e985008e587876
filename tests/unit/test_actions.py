from core.actions import suggest_action
from core.taxonomy import load_taxonomy


def test_action_names_what_and_where_from_the_text() -> None:
    tax = load_taxonomy()
    action = suggest_action(
        tax.category("website-bug"),
        "Hi team! The contact form gives a 500 error when I press submit. Thanks.",
        "/contact",
    )
    assert "contact form gives a 500 error" in action and "on /contact" in action
    assert action.startswith("Reproduce and fix")


def test_location_found_in_text_when_no_page_and_long_text_clipped() -> None:
    tax = load_taxonomy()
    action = suggest_action(
        tax.category("content-gap"),
        "how do i set up caching? nothing on https://lumen.dev/docs/cache explains it " * 5,
        None,
    )
    assert "on https://lumen.dev/docs/cache" in action
    assert len(action) < 250
    long = suggest_action(tax.category("website-bug"), "the button " * 100, "/x")
    assert "…" in long and len(long) < 200


def test_an_edited_action_is_said_of_the_new_item() -> None:
    from core.actions import adapt_action

    tax = load_taxonomy()
    spec = tax.category("website-bug")
    before = "The contact form gives a 500 error when I press submit."
    edited = (
        "Page the forms team: “the contact form gives a 500 error when I press submit” "
        "on /contact, then roll back"
    )
    after = adapt_action(
        edited, spec, before, "/contact", "The signup form gives a 500 error.", "/signup"
    )
    assert "the signup form gives a 500 error" in after and "on /signup" in after
    assert after.startswith("Page the forms team") and after.endswith("then roll back")
    # An edit in the team's own words, quoting nothing: carried over as it is.
    plain = adapt_action("Escalate to payments", spec, before, None, "Other text.", None)
    assert plain == "Escalate to payments"


def test_the_llm_sees_the_teams_actions_and_writes_one_only_after_them() -> None:
    import json

    from core.backends.llm import LLMAnswer, LLMClassifier, _Reply
    from core.models import Label
    from core.service import make_item
    from core.settings import LLMSettings

    tax = load_taxonomy()
    lookalike = make_item("Checkout crashes with a 500", item_id="a")
    label = Label(
        item_id="a",
        category="website-bug",
        severity="critical",
        action="Roll back the payments deploy",
        reviewers=["U1"],
        agreement=1.0,
    )
    llm = LLMClassifier(
        tax, LLMSettings(model="m", api_key="k"), few_shot=lambda item: [(lookalike, label, 0.9)]
    )
    messages, used = llm.messages(make_item("Checkout crashes again", item_id="b"))
    assert used == ["a"]
    assert json.loads(messages[2]["content"])["action"] == "Roll back the payments deploy"
    answer = LLMAnswer(
        category="website-bug", severity="critical", confidence=0.8, action="Roll back  it\x00"
    )
    item = make_item("Checkout crashes again", item_id="b")
    taken = llm._from_answer(item, _Reply(answer, ["a"], with_actions=True))
    assert taken.action == "Roll back it"
    template = llm._from_answer(item, _Reply(answer, [], with_actions=False))
    assert template.action == suggest_action(tax.category("website-bug"), item.redacted_text, None)
