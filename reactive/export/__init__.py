"""Data out and in: streaming export (CDC) over the change log, snapshot ZIPs, and the
endpoints the official Convex CLI calls."""
