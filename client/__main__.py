"""``python -m pathloop.client`` runs the ``pathloop`` command."""

from pathloop.client.cli.app import main

main()
