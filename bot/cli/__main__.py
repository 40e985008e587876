"""`python -m bot.cli`: what the console script runs (tests and benchmarks use it)."""

from bot.cli import main

main()
