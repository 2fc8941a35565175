"""pathloop.client — the site node that runs beside a hospital's slides."""
