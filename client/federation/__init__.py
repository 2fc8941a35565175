"""The site's Flower ClientApp: translates messages to :mod:`pathloop.client.federated`."""
