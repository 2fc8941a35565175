"""``python -m pathloop.client`` runs the ``pathloop`` command."""

from pathloop.client.cli.app import main

if __name__ == "__main__":  # importing it (multiprocessing's spawn does) runs nothing
    main()
