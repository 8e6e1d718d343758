"""The inbox: conversations the customer owns, and each actor's private work on them.

* ``conversations``: starting, replying, participants, moderation, and
  ``place_message``, the one door every message takes into a conversation;
* ``state``: each actor's inbox (status, assignee, labels, notes, reads) and
  the listings and views of it;
* ``access``: members and roles, and the audit log;
* ``webhooks``: events to an actor's HTTPS endpoints, as durable jobs.

Nothing here knows how messages travel: it queues ``outbox.publish`` jobs and
network adapters deliver them. Organizations and customers use the same calls.
"""
