"""The GitHub edge: issues opened from cards, and their state read back."""
