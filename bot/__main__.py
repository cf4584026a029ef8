"""`python -m bot` is the same as the `bangfu` console script."""

from bot.cli import main

main()
