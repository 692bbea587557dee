"""Typed calls through a client generated from the OpenAPI document.

tests/contract/run generates `switchboard_client` with openapi-python-client
from `switchboard openapi`, seeds a server, and runs this with the generated
package on PYTHONPATH and the server's URL, the admin's and the member's token
and the seeded ids in the environment. Every answer is parsed into the
generated models: a body that does not fit its schema fails here.
"""

import os
import sys
from http import HTTPStatus
from uuid import UUID, uuid4

from switchboard_client import AuthenticatedClient
from switchboard_client.api.accounts import create_token, me, revoke
from switchboard_client.api.connections import get_connection, list_connections, preview
from switchboard_client.api.networks import list_networks
from switchboard_client.models import (
    ConnectionOut,
    ConnectionRequest,
    Kind,
    Me,
    NetworkOut,
    NewTokenIn,
    NewTokenOut,
    Plan,
    Problem,
    Status,
)
from switchboard_client.types import UNSET

BASE = os.environ["CONTRACT_BASE_URL"]
PAYMENTS_NET = UUID(os.environ["CONTRACT_NETWORK_ID"])
SEARCH_NET = UUID(os.environ["CONTRACT_OTHER_NETWORK_ID"])
PENDING_NET = UUID(os.environ["CONTRACT_PENDING_NETWORK_ID"])
CONNECTION = UUID(os.environ["CONTRACT_CONNECTION_ID"])


def client(token: str) -> AuthenticatedClient:
    # Undocumented statuses raise instead of parsing to None.
    return AuthenticatedClient(base_url=BASE, token=token, raise_on_unexpected_status=True)


def expect(value, kind):
    assert isinstance(value, kind), f"expected a {kind.__name__}, got {value!r}"
    return value


admin = client(os.environ["CONTRACT_ADMIN_TOKEN"])
member = client(os.environ["CONTRACT_MEMBER_TOKEN"])

# Who am I: the member, in payments, not an admin.
who = expect(me.sync(client=member), Me)
assert who.email == "member@example.test" and not who.is_admin, who
assert [(t.slug, t.role) for t in who.teams] == [("payments", "member")], who.teams
assert expect(me.sync(client=admin), Me).is_admin

# All networks, a page of one at a time, following the cursors.
seen, cursor = [], None
while True:
    page = list_networks.sync_detailed(client=admin, limit=1, cursor=cursor or UNSET)
    assert page.status_code == HTTPStatus.OK, page
    seen += [expect(n, NetworkOut).id for n in page.parsed]
    cursor = page.headers.get("next-cursor")
    if not cursor:
        break
assert sorted(seen, key=str) == sorted([PAYMENTS_NET, SEARCH_NET, PENDING_NET], key=str), seen

# The member's connection, in the list and on its own.
page = list_connections.sync(client=member, limit=10, kind=Kind.NETWORK_TO_NETWORK)
assert [c.id for c in page] == [CONNECTION], page
one = expect(get_connection.sync(CONNECTION, client=member), ConnectionOut)
assert one.kind == Kind.NETWORK_TO_NETWORK and isinstance(one.status, Status), one
assert one.plan_hash.startswith("v2:"), one.plan_hash

# The plan a request would get, without saving it.
plan = preview.sync(
    client=member,
    body=ConnectionRequest(
        kind=Kind.NETWORK_TO_NETWORK,
        reason="plan only",
        source_network_id=PAYMENTS_NET,
        destination_network_id=SEARCH_NET,
        protocol="tcp",
        ports="8443",
    ),
)
expect(plan, Plan)
assert plan.kind == Kind.NETWORK_TO_NETWORK, plan

# Errors are problem details, parsed as such.
missing = expect(get_connection.sync(uuid4(), client=member), Problem)
assert missing.status == 404 and missing.request_id, missing

# A token made, used, revoked, and refused afterwards.
made = expect(create_token.sync(client=member, body=NewTokenIn(name="generated client", expires_in_days=1)), NewTokenOut)
assert made.token.startswith(made.prefix), made
assert expect(me.sync(client=client(made.token)), Me).id == who.id
gone = revoke.sync_detailed(made.id, client=member)
assert gone.status_code == HTTPStatus.NO_CONTENT, gone
refused = expect(me.sync(client=client(made.token)), Problem)
assert refused.status == 401, refused

print("tests/contract/client.py: typed calls through the generated client passed", file=sys.stderr)
