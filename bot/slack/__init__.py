"""The Slack edge: translates Slack payloads to core calls and core results to Block Kit."""
