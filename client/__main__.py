"""``python -m pathloop.client`` runs the ``pathloop`` command."""

from pathloop.client.cli.app import main

if __name__ == "__main__":  # worker processes spawned by training import this module too
    main()
