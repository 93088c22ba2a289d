"""A small Django app whose models the test suite reads and writes."""
