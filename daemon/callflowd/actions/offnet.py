"""``offnet``: call a number outside through the carriers (Kazoo's cf_offnet).

data: as ``resources`` (Kazoo 4.3 ``callflows.offnet``; cf_offnet is cf_resources with
``use_local_resources: false``, the system's carriers instead of the account's: callflowd has
one set of resources, ``resources:``, for both).

Branches: as ``resources``: answered -> the flow stops; no carrier -> ``NO_ROUTE_DESTINATION``
/ ``sip:404``; failed -> the cause's child, else ``sip:<code>``'s, else the default response
and the flow stops.
"""

from callflowd.actions import resources

Data = resources.Data
SUPPORTED = resources.SUPPORTED
NOT_SUPPORTED = resources.NOT_SUPPORTED
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = resources.APPLICATIONS
LONG_APPLICATIONS = resources.LONG_APPLICATIONS


def handle(call, data):
    return resources.handle(call, data)
