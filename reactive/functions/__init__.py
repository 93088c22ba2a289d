"""Users' functions: their definitions, discovery and arguments, the ``ctx`` they get, the
transactions they run in, and the runtime that calls them and converts what they return."""
