"""The labelled PII corpus and its scorer (`triage-bot bench redaction`)."""
