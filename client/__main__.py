"""``python -m pathloop.client`` runs the ``pathloop`` command."""

from pathloop.client.cli import main

main()
