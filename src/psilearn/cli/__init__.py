"""Command-line interface: `psilearn <command> ...`. Each command lives in its own module with a
``register(subparsers)`` function; ``main.py`` assembles them."""
