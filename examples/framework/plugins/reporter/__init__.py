"""reporter: calls back a function of its host. The framework registers
lookup_user(user_id); the operator's policy for this plugin
(examples/framework/policies/reporter.policy) grants it with
`@host-call lookup_user`. Its logging records reach the host too.
"""

__version__ = "1.0"

import logging

import plugbox

log = logging.getLogger(__name__)


@plugbox.export
def report(user_id):
    user = plugbox.host.lookup_user(user_id)       # runs in the host
    log.info("report for user %d: %s", user_id, user["name"])
    return f"{user['name']} <{user['email']}>: {len(user['roles'])} roles"
