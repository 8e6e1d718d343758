"""Which hosts a domain block covers, and how a typed domain is read."""

from __future__ import annotations

import pytest

from hub.errors import UsageError
from hub.moderation import DomainBlocks, normal_domain


def test_a_block_covers_the_domain_its_subdomains_and_every_port_but_not_look_alikes():
    blocks = DomainBlocks()
    blocks.domains = frozenset({"spam.example", "localhost:4000"})
    for host in ("spam.example", "SPAM.example", "social.spam.example", "spam.example:8443", "spam.example."):
        assert blocks.blocked(host), host
    for host in ("notspam.example", "spam.example.org", "example", "localhost", "localhost:4001", "", None):
        assert not blocks.blocked(host), host
    assert blocks.blocked("localhost:4000")


@pytest.mark.parametrize(("typed", "domain"), [
    ("Spam.Example", "spam.example"), ("https://spam.example/@zoe", "spam.example"), ("@zoe@spam.example", "spam.example"),
    ("bücher.example", "xn--bcher-kva.example"), ("localhost:4000", "localhost:4000"),
])
def test_typed_domains_are_read_as_hosts(typed, domain):
    assert normal_domain(typed) == domain


@pytest.mark.parametrize("typed", ["", "  ", "spam example", "host:port"])
def test_what_is_not_a_domain_is_refused(typed):
    with pytest.raises(UsageError):
        normal_domain(typed)
