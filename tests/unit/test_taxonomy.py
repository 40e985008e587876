from pathlib import Path

import pytest

from core.runtime import RuntimeSettings, load_runtime_settings
from core.taxonomy import DEFAULT_CONFIG, RUNTIME_SECTIONS, ConfigError, load_taxonomy


def test_default_taxonomy_has_the_documented_labels() -> None:
    tax = load_taxonomy()
    assert tax.category_names == [
        "website-bug",
        "framework-issue",
        "content-gap",
        "feature-request",
        "positive",
        "noise",
    ]
    assert tax.severity_names == ["critical", "high", "medium", "low"]
    assert tax.form_types["bug"] == {"website-bug": 0.6, "framework-issue": 0.4}
    assert tax.form_types["general"] == {}
    for spec in tax.categories:
        assert spec.examples and spec.cues and "{where}" in spec.action


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "team.toml"
    path.write_text(text)
    return path


def test_errors_name_the_bad_key(tmp_path: Path) -> None:
    base = DEFAULT_CONFIG.read_text()
    bad = base.replace("needs_human_below = 0.55", "needs_human_below = 7")
    with pytest.raises(ConfigError, match=r"triage\.needs_human_below"):
        load_runtime_settings(_write(tmp_path, bad))
    load_taxonomy(_write(tmp_path, bad))  # the labels themselves are fine
    with pytest.raises(ConfigError, match=r"outbox\.batchsize"):
        load_runtime_settings(_write(tmp_path, base.replace("batch = 16", "batchsize = 16")))
    with pytest.raises(ConfigError, match=r"categoris"):
        load_taxonomy(_write(tmp_path, base + "\n[categoris]\nname = 'x'\n"))
    bad = base.replace("feature-request = 1.0", "feature-wish = 1.0")
    with pytest.raises(ConfigError, match="unknown category 'feature-wish'"):
        load_taxonomy(_write(tmp_path, bad))
    bad = base.replace('name = "noise"', 'name = "positive"')
    with pytest.raises(ConfigError, match="duplicate names: positive"):
        load_taxonomy(_write(tmp_path, bad))
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_taxonomy(_write(tmp_path, "[[categories]\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_taxonomy(tmp_path / "missing.toml")


def test_a_team_can_replace_the_taxonomy(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[[categories]]
name = "billing"
description = "Invoices and payments"
emoji = "moneybag"
action = "Forward {subject}{where} to billing."
[[categories]]
name = "other"
description = "Anything else"
emoji = "grey_question"
action = "Look at {subject}{where}."
[[severities]]
name = "urgent"
description = "Now"
emoji = "fire"
[[severities]]
name = "later"
description = "Whenever"
emoji = "turtle"
""",
    )
    tax = load_taxonomy(path)
    assert tax.category_names == ["billing", "other"]
    assert tax.noise_category is None
    assert tax.lowest_severity == "later"
    with pytest.raises(ValueError, match="unknown category 'website-bug'"):
        tax.check_category("website-bug")


def test_runtime_settings_are_apart_from_the_taxonomy_and_default_to_the_checked_in_file() -> None:
    """Code that builds an engine without a config file runs as the bot does by default."""
    assert load_runtime_settings() == RuntimeSettings()
    assert "learning" not in load_taxonomy().model_dump()
    assert set(RuntimeSettings().model_dump()) == set(RUNTIME_SECTIONS)


def test_a_team_file_tunes_the_runtime_without_touching_the_labels(tmp_path: Path) -> None:
    base = DEFAULT_CONFIG.read_text()
    path = _write(tmp_path, base.replace("online_steps = 25", "online_steps = 7"))
    assert load_runtime_settings(path).learning.online_steps == 7
    assert load_taxonomy(path).fingerprint() == load_taxonomy().fingerprint()
