"""A Django database backend (``ENGINE = "reactive.embedded.backend"``): PostgreSQL that reports
a server that is not running at once, with the hint to start it (see ``base``)."""
