"""Live queries over the Convex sync protocol: the wire messages, one session per websocket,
and the Reactor that re-runs invalidated queries at one snapshot and pushes Transitions."""
