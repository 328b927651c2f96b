"""A per-process memory of keys that just authenticated, for at most half a second.

Every API call authenticates: resolving the key (a query, the owner joined) and loading
the owner's privileges (a UNION query) cost more than the rest of a small call's reads.
A key that authenticated less than `SECONDS` ago in this process is taken from here with
its owner and privileges, as they were then.

Why it is safe (issue "Hot path": a revoked or expired key, a deactivated account, a role
member removed or `use_api_key` removed must be refused everywhere within 1 s):
- an entry lives `SECONDS` (0.5 s), so a change made in any process, by any means
  (admin, API, `QuerySet.update()`), is seen by every process within 0.5 s;
- a change made through the ORM's save, delete or many-to-many methods in this process
  clears the whole memory at once (signals in AccountsConfig.ready());
- expiry is checked on every call against the remembered `expires_at`;
- only keys that authenticated are remembered: a failed key is looked up (and counted by
  the failure throttle) every time.
Each caller gets its own copies of the key and its owner, never the shared objects.
"""

import copy

from django.utils import timezone

from apps.accounts import keys, selectors
from apps.accounts.models import ApiKey
from apps.accounts.services import resolve_api_key
from apps.core.memory import ShortMemory

SECONDS = 0.5
# digest → (key with its owner, the owner's privileges, the owner's role names once asked)
memory = ShortMemory(seconds=SECONDS, max_entries=1024)
clear = memory.clear  # connected to the account models' signals


def usable_key(raw: str) -> ApiKey | None:
    """As resolve_api_key, but a key that authenticated within SECONDS is not read again
    (and threads missing it at once share one read: ShortMemory.remembered).

    The returned key's owner has its privileges loaded (`has_perm` asks no query), and
    its role names once one caller asked for them (`selectors.role_names`, for /me)."""
    if not keys.is_well_formed(raw):
        return resolve_api_key(raw)  # the constant-time path for malformed keys
    digest = keys.digest(raw)
    remembered = memory.remembered(digest, lambda: _read(raw), copy=_copy)
    if remembered is None:
        return None
    api_key = remembered[0]
    if api_key.is_usable(timezone.now()):
        return api_key
    memory.forget(digest)  # expired since it was remembered
    return resolve_api_key(raw)


Entry = tuple[ApiKey, frozenset[str], selectors.RoleNames]


def _read(raw: str) -> Entry | None:
    api_key = resolve_api_key(raw)
    if api_key is None:
        return None
    owner = api_key.owner
    privileges = frozenset(owner.get_all_permissions())
    owner._perm_cache = set(privileges)  # what ModelBackend.has_perm reads
    roles = selectors.RoleNames()  # read by the first caller that asks, then kept
    owner._role_names = roles
    return api_key, privileges, roles


def _copy(entry: Entry) -> Entry:
    """The key and its owner as a caller's own objects (privileges and role names are
    shared: immutable, and read once)."""
    api_key, privileges, roles = entry
    owner = copy.copy(api_key.owner)
    owner._perm_cache = set(privileges)
    owner._role_names = roles
    api_key = copy.copy(api_key)
    api_key.owner = owner
    return api_key, privileges, roles
