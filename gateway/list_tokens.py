"""Continuation tokens of ListObjectsV2 and ListBuckets: the last name a page returned.

Pure. AWS's tokens are opaque to clients; ours are that name in URL-safe base64, so that a
token survives any client's query encoding and a page resumes just after it whichever
gateway answers. A token that does not decode is the client's error, answered as AWS does.
"""

from __future__ import annotations

import base64
import binascii

from gateway import errors


def encode(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode("utf-8", "surrogateescape")).decode()


def decode(token: str) -> str:
    """The name a token holds; InvalidArgument for one we did not make (the empty one too:
    AWS refuses an empty continuation-token on ListObjectsV2)."""
    try:
        if not token:
            raise ValueError("empty token")
        return base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        raise errors.InvalidArgument("The continuation token provided is incorrect",
                                     ArgumentName="continuation-token") from None
