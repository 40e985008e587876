"""The Discord edge: settings, pure embed rendering, and the discord.py client."""
