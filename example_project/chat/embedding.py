"""A deterministic local text embedding (feature hashing): no model, nothing downloaded.

Each lower-cased word and each character trigram of it adds +1 or -1 (by a hash bit) to one of
``DIMENSIONS`` buckets (by the rest of the hash); the vector is scaled to unit length, so cosine
distance compares word overlap. A real model plugs in where ``embed`` is called: compute the
vector in an action (it is a side effect) and store it with a mutation (docs/guides/search.md).
"""

import hashlib
import math
import re

DIMENSIONS = 64
_WORD = re.compile(r"\w+")


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in _WORD.findall(text.lower()):
        padded = f"#{word}#"
        features = [word] + [padded[i:i + 3] for i in range(len(padded) - 2)]
        for feature in features:
            digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(),
                                    "little")
            vector[digest % DIMENSIONS] += 1.0 if digest >> 63 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
