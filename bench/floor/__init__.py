"""The floor apps of bench/socket_floor.py: what an idle websocket costs without our code."""
