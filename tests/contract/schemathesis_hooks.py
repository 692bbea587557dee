"""schemathesis hooks for the contract stage (loaded by tests/contract/schemathesis.toml).

The CONTRACT_* variables come from tests/contract/run.
"""

import itertools
import os
import re
import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase

# The id of the token the run authenticates with.
OWN_TOKEN_ID = os.environ.get("CONTRACT_TOKEN_ID")

# A count, not `random`: Hypothesis seeds `random` alike for every case.
CLIENTS = itertools.count(1)

# Operations that schemathesis finds no object for by itself (nothing in the
# document links to them, no answer it sees names their ids) and the seeded
# object to aim them at: path pattern -> {path parameter: value}.
SEEDED = {
    r"^/api/v1/teams/\{slug\}/(webhook|members)$": {"slug": "payments"},
    r"^/api/v1/pools/\{id\}/quotas/\{team\}$": {"id": os.environ.get("CONTRACT_POOL_ID"), "team": "payments"},
    r"^/api/v1/connections/\{id\}/(repair|retry|repair-mode)$": {
        "id": os.environ.get("CONTRACT_CONNECTION_ID")
    },
    r"^/api/v1/networks/\{id\}/ownership/": {"id": os.environ.get("CONTRACT_PENDING_NETWORK_ID")},
}


@schemathesis.hook
def before_call(context, case, kwargs):
    # The server rate-limits wrong API tokens per client address (10 a minute,
    # README "Sessions"), and behind a trusted proxy it takes that address from
    # X-Forwarded-For. tests/contract/run trusts 127.0.0.1 as a proxy, and every
    # request here says it comes from a client of its own (an address of the
    # documentation range 2001:db8::/32: a header value, never contacted). So
    # the requests and the `ignored_auth` probes (copies of this case) with no
    # or a wrong token get the 401 they are about, not the 429 that the tenth
    # wrong token from one address gets. The limiter is tested in tests/integration.
    n = next(CLIENTS)
    client = "2001:db8:{:x}:{:x}::1".format(n >> 16 & 0xFFFF, n & 0xFFFF)
    case.headers = {**(case.headers or {}), "X-Forwarded-For": client}

    # A page's `cursor` is a token the server handed out (`Next-Cursor`): a
    # generated one is no valid input whatever the schema says, and the 422
    # for it would fail `positive_data_acceptance` on every list. Lists are
    # asked for from their start; tests/contract/client.py follows real cursors.
    if case.query and "cursor" in case.query:
        case.query = {k: v for k, v in case.query.items() if k != "cursor"}

    # Seeded objects for the operations in SEEDED, except where the path is
    # meant to be wrong (a negative case) and in the stateful phase, whose
    # chains bring the ids of what they created (a pinned id there would make
    # "the created object is not found" out of nothing).
    meta = case.meta
    if (
        meta is not None
        and meta.phase.name != TestPhase.STATEFUL
        and not meta.is_negative_at(ParameterLocation.PATH)
    ):
        for pattern, values in SEEDED.items():
            if re.search(pattern, case.operation.path):
                given = {k: v for k, v in values.items() if v}
                case.path_parameters = {**(case.path_parameters or {}), **given}

    # schemathesis reuses ids it saw in answers, so it finds the run's own token
    # in GET /api/v1/tokens; revoking it would leave the rest of the run
    # testing only the 401 of a stranger. Aim that DELETE at a token that does
    # not exist instead (the 404 case); tokens made by POST /api/v1/tokens are
    # still revoked for real.
    if (
        case.operation.label == "DELETE /api/v1/tokens/{id}"
        and OWN_TOKEN_ID
        and str((case.path_parameters or {}).get("id")) == OWN_TOKEN_ID
    ):
        case.path_parameters = {**case.path_parameters, "id": str(uuid.uuid4())}
