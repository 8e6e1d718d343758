"""The integration suite, run against PostgreSQL: the same store, queries and
job queue as on SQLite (the `hub` fixture of this directory uses PostgreSQL)."""

from tests.integration.test_bridge_contract import *  # noqa: F401,F403
from tests.integration.test_bridges import *  # noqa: F401,F403
from tests.integration.test_conversations_ap import *  # noqa: F401,F403
from tests.integration.test_delivery import *  # noqa: F401,F403
from tests.integration.test_inbox import *  # noqa: F401,F403
from tests.integration.test_inbox_api import *  # noqa: F401,F403
from tests.integration.test_inbox_symmetry import *  # noqa: F401,F403
from tests.integration.test_routes import *  # noqa: F401,F403
