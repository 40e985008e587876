"""The encoder's view of a text: boilerplate out, meaning kept, plain feedback untouched."""

from core.features import encoder_view

VSCODE_ISSUE = """Pre launch task doesn't run

<!-- ⚠️⚠️ Do Not Delete This! bug_report_template ⚠️⚠️ -->
<!-- Please read our Rules of Conduct: https://opensource.microsoft.com/codeofconduct/ -->
Does this issue occur when all extensions are disabled?: **Yes**

### Steps

1. Run the task
![screenshot](https://user-images.githubusercontent.com/1/abc.png)

### Error message (automated)

_No response_

```text
TypeError: cannot read properties of undefined
    at main.js:28171:41
```

See [the docs](https://code.visualstudio.com/docs/editor/tasks) and https://github.com/microsoft/vscode/issues/1
"""


def test_template_boilerplate_goes_and_the_report_stays() -> None:
    view = encoder_view(VSCODE_ISSUE)
    assert view.startswith("Pre launch task doesn't run\nDoes this issue occur")
    assert "<!--" not in view and "Rules of Conduct" not in view
    assert "bug_report_template" not in view  # the lexical features still read it (raw text)
    assert "Yes" in view and "**" not in view and "###" not in view
    assert "Steps\n1. Run the task\n[image]" in view
    assert "Error message (automated)" not in view and "_No response_" not in view


def test_code_shrinks_to_its_first_line_and_links_to_text_and_host() -> None:
    view = encoder_view(VSCODE_ISSUE)
    assert "[code: TypeError: cannot read properties of undefined]" in view
    assert "main.js:28171" not in view
    assert "See the docs and github.com" in view
    assert "https://" not in view


def test_plain_feedback_is_unchanged_but_for_whitespace() -> None:
    text = "The contact form gives a 500 error when I press submit. Price: $5 < $10!"
    assert encoder_view(text) == text
    assert encoder_view("Login  button\n\n\n does nothing") == "Login button\ndoes nothing"
    assert encoder_view("Use <b>bold</b> in __init__") == "Use bold in __init__"


def test_never_empty_when_the_text_is_all_markup() -> None:
    assert encoder_view("<!-- only a comment -->") == "<!-- only a comment -->"
    assert encoder_view("```\n```") == "[code: ]"
    assert encoder_view("   ") == ""


def test_unclosed_comment_and_fence_end_at_the_text_end() -> None:
    assert encoder_view("Crash on start <!-- template text that never closes") == "Crash on start"
    assert encoder_view("Crash on start\n```\nTraceback (most recent call last)") == (
        "Crash on start\n[code: Traceback (most recent call last)]"
    )


def test_the_engine_embeds_the_view_and_reads_n_grams_from_the_raw_text() -> None:
    import numpy as np

    from bot.app import default_encoder
    from core.features import lexical_counts
    from core.service import make_item
    from core.taxonomy import load_taxonomy
    from core.triage import TriageEngine, encoder_text

    taxonomy = load_taxonomy()
    encoder = default_encoder()
    item = make_item(VSCODE_ISSUE, source="file", item_id="view-1")
    engine = TriageEngine(taxonomy, encoder)
    view = encoder_view(item.redacted_text)
    assert encoder_text(item, engine.runtime) == view
    batch, _ = engine.batch([item])
    np.testing.assert_allclose(batch.embeddings[0], encoder.encode([view])[0], atol=1e-6)
    np.testing.assert_allclose(engine.embed([item])[0], batch.embeddings[0], atol=1e-6)
    assert not np.allclose(batch.embeddings[0], encoder.encode([item.redacted_text])[0], atol=1e-3)
    raw_ids, _ = lexical_counts(item.redacted_text, engine.runtime.learning.lexical_buckets)
    np.testing.assert_array_equal(batch.lexical[0], raw_ids)
