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
