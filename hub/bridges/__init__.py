"""Bridges: conversations mirrored to and from networks that do not speak
ActivityPub. ``base`` is the connector every network implements, ``core``
the hub's side (placing envelopes, queueing and making sends), ``email``
the first network.

Like ``federation``, this package is an adapter: it depends on the core and
attaches itself (:func:`attach`); the core never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.context import Hub


def attach(hub: Hub):
    """The bridges of this hub process: the email bridge always (it sends even
    without a listener), and the adapter's job handlers and message hook."""
    from hub.bridges.core import Bridges
    from hub.bridges.email import EmailConnector

    bridges = Bridges.attach(hub)
    bridges.add_connector(EmailConnector(hub.cfg))
    return bridges
