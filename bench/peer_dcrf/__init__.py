"""The djangochannelsrestframework peer of bench/peer_dcrf.py: settings, URLs, consumer, ASGI.

Only our glue lives here; djangochannelsrestframework itself comes from PyPI (the ``bench``
extra).
"""
