"""Lambda SnapStart: what one snapshot must not hand to every execution environment restored from it.

With SnapStart (the template's EnableSnapStart; docs/scaling.md) Lambda initialises the function
once per published version, snapshots the memory, and resumes many environments from that one copy. Anything
the module keeps would then be shared by all of them: the OAuth access token (Genesys rate-limits calls per
access token, so a fleet sharing one would share its limit), the cached client credentials, open sockets and
pools (stale after a restore, and never to be shared), the deployment cache and the ``random`` module's state
(every copy would draw the same backoff jitter and log sampling). So the snapshot is taken without any of
them, and each restored copy starts afresh.

The hooks come from ``snapshot_restore_py``, which Lambda's Python runtime provides (it is not shipped in the
package; requirements-dev.txt installs it for local runs and tests). Without SnapStart they never run.
"""

from __future__ import annotations

import random

from snapshot_restore_py import register_after_restore, register_before_snapshot

from . import credentials, genesys, oauth, sources, token_events, verify


def forget_container_state() -> None:
    """Drop every cache, pool and client the module state holds; the next request builds its own."""
    oauth.reset()
    credentials.reset()
    sources.reset()
    genesys.reset()
    token_events.reset()
    verify.reset()


def after_restore() -> None:
    forget_container_state()
    random.seed()  # from os.urandom: each restored copy draws its own numbers


register_before_snapshot(forget_container_state)
register_after_restore(after_restore)
