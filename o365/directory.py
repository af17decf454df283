"""IMPORT USERS and SYNCHRONIZE USERS: mirror a tenant's users, then create or update accounts.

The mirror (DirectoryUser) is refreshed from /users/delta: the first time by reading every user
(delta's initial round, which ends with a bookmark), later from the saved deltaLink, so an
unchanged directory costs one request. A 410 (bookmark expired) falls back to a full read,
reconciled: users Kodo knew but no longer listed are marked removed.

Accounts are matched by email (mail, else userPrincipalName; case-insensitive) once; after that
the link is by the Microsoft 365 object id. Directory data only ever creates, links and changes
accounts whose one role is *user* of this organization: an email of an administrator or a
restore operator (of any organization, or the server's administrator), of another
organization's account, or of an account already linked is a conflict, never linked; an address
that is not a valid email is skipped. Each page's accounts are written in one transaction, so a
failure never leaves a half-linked account.
"""

import logging
import secrets
import time
import unicodedata
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, UNUSABLE_PASSWORD_SUFFIX_LENGTH
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connections, router, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from o365.graph import BATCH_LIMIT, GraphError, NotFound, ResyncRequired
from o365.models import DirectoryJob, DirectoryUser
from organizations.models import Membership

log = logging.getLogger(__name__)

USER_FIELDS = (
    "id",
    "displayName",
    "mail",
    "userPrincipalName",
    "accountEnabled",
    "assignedLicenses",
    "userType",
)
SELECT = ",".join(USER_FIELDS)
# updated_at is written too: a full read's reconciliation takes rows updated since the job
# started as listed (bulk writes skip auto_now).
MIRROR_FIELDS = [
    "user_principal_name",
    "mail",
    "display_name",
    "account_enabled",
    "licensed",
    "is_guest",
    "removed_at",
    "removed_permanently",
    "updated_at",
]
MAX_CONFLICTS_KEPT = 200
BATCH_SIZE = 1000
DRIVE_CHECK_THREADS = 4
DRIVE_CHECKS_PER_REQUEST = BATCH_LIMIT  # users whose OneDrive one JSON batch asks about
PROGRESS_EVERY_SECONDS = 1.0
# Graph "no OneDrive" answers seen in the field (docs/GRAPH.md §2).
NO_ONEDRIVE_CODES = {
    "ResourceNotFound",
    "BadRequest",
    "UnknownError",
    "itemNotFound",
    "Request_ResourceNotFound",
}


# Conflict reasons shown in a job's summary.
ADMINISTRATOR = "email belongs to an administrator or a restore operator"
OTHER_ORGANIZATION = (
    "This email belongs to a Kodo account of another organization; it was not linked."
)
OUTSIDE = "This email belongs to a Kodo account outside this organization; it was not linked."
LINKED_REFUSALS = {
    ADMINISTRATOR: "is an administrator or a restore operator",
    OTHER_ORGANIZATION: "belongs to another organization",
    OUTSIDE: "is not in this organization",
}
MAX_SHOWN_EMAIL = 320
# Cut a longer mail or userPrincipalName to the column's size and end it with this, so the cut
# value is never a valid address (a domain cannot end with dots).
CUT_MARK = "..."


def login_email_problem(email: str) -> str | None:
    """Why `email` cannot be a Kodo login, or None: it must be a valid address (Django's
    EmailValidator), fit the username column, and have no control or invisible characters."""
    if not email:
        return "no email address; skipped"
    limit = get_user_model()._meta.get_field("username").max_length
    if limit is not None and len(email) > limit:
        return f"email address longer than {limit} characters; skipped"
    if any(
        unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp") or c == "\ufffd" for c in email
    ):
        return "email address with spaces or control characters; skipped"
    try:
        validate_email(email)
    except ValidationError:
        return "not a valid email address; skipped"
    return None


@dataclass
class AccountIndex:
    """Accounts a batch may touch: by lower-case login or email, their memberships
    ({organization id: role}) and the directory rows of this organization linked to them."""

    by_email: dict = field(default_factory=lambda: defaultdict(dict))
    roles: dict = field(default_factory=lambda: defaultdict(dict))
    links: dict = field(default_factory=lambda: defaultdict(set))


def _fit(value, size: int = 320) -> str:
    """A Graph string as a column can hold it: no NUL (PostgreSQL refuses them), cut to size."""
    value = str(value or "").replace("\x00", "\ufffd")
    return value if len(value) <= size else value[: size - len(CUT_MARK)] + CUT_MARK


@dataclass
class Options:
    graph_ids: frozenset | None = None  # None: every user
    include_disabled: bool = False
    include_unlicensed: bool = False
    include_guests: bool = False

    @classmethod
    def from_job(cls, job):
        raw = job.options or {}
        ids = raw.get("graph_ids")
        return cls(
            graph_ids=frozenset(ids) if ids else None,
            include_disabled=bool(raw.get("include_disabled")),
            include_unlicensed=bool(raw.get("include_unlicensed")),
            include_guests=bool(raw.get("include_guests")),
        )

    def skip_reason(self, row: DirectoryUser) -> str | None:
        return row.skip_reason(
            chosen=self.graph_ids,
            include_disabled=self.include_disabled,
            include_unlicensed=self.include_unlicensed,
            include_guests=self.include_guests,
        )


def _apply_graph_user(row: DirectoryUser, data: dict):
    """Copy what Graph sent; delta may send only some properties of a changed user."""
    if "userPrincipalName" in data:
        row.user_principal_name = _fit(data["userPrincipalName"])
    if "mail" in data:
        row.mail = _fit(data["mail"])
    if "displayName" in data:
        row.display_name = _fit(data["displayName"], 256)
    if "accountEnabled" in data:
        row.account_enabled = data["accountEnabled"] is not False
    if "assignedLicenses" in data:
        row.licensed = bool(data["assignedLicenses"])
    if "userType" in data or "userPrincipalName" in data:
        row.is_guest = data.get("userType") == "Guest" or "#EXT#" in row.user_principal_name.upper()
    row.removed_at = None
    row.removed_permanently = False


def _update_rows(model, rows, fields):
    """Write `fields` of each row by primary key, as one executemany in one transaction. Django's
    bulk_update builds a CASE WHEN expression per row and field, whose compilation cost the worker
    more than the database's work (bench/bench_import_users.py)."""
    if not rows:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    # Only quoted names from the model's metadata are formatted in; values go as parameters.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608
        + ", ".join(f"{quote(field.column)} = %s" for field in columns)
        + f" WHERE {quote(meta.pk.column)} = %s"
    )
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for field in columns]
        + [row.pk]
        for row in rows
    ]
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _unusable_password() -> str:
    """What set_unusable_password() stores ("!" and 40 random characters), made from one
    secrets call instead of 40 (Django's costs ~40 µs a user)."""
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)[:UNUSABLE_PASSWORD_SUFFIX_LENGTH]


class DirectorySync:
    """Runs one DirectoryJob. Methods are steps; counters are saved on the job as it goes."""

    def __init__(self, job: DirectoryJob, client):
        self.job = job
        self.configuration = job.configuration
        self.organization = self.configuration.organization
        self.client = client
        self.options = Options.from_job(job)
        self.touched_ids: set[str] = set()
        self.now = timezone.now()
        self.mirror_was_empty = False
        self._last_progress = 0.0

    # -- mirror ----------------------------------------------------------------------------
    def refresh_mirror(self) -> str:
        """Bring the mirror up to date; returns the new deltaLink (saved by the caller)."""
        link = self.configuration.users_delta_link
        if link:
            try:
                return self._read_pages(link, params=None, full=False)
            except ResyncRequired:
                log.info(
                    "users delta token expired for configuration %s: full read",
                    self.configuration.pk,
                )
        self.job.full_read = True
        self.mirror_was_empty = not DirectoryUser.objects.filter(
            configuration=self.configuration
        ).exists()
        delta_link = self._read_pages("/users/delta", params={"$select": SELECT}, full=True)
        self._reconcile_unlisted()
        return delta_link

    def _read_pages(self, url, params, full: bool) -> str:
        delta_link = ""
        for page in self.client.iter_pages(url, params=params):
            self._upsert(page.get("value", []))
            self.job.pages_read += 1
            self.save_progress(every=PROGRESS_EVERY_SECONDS)
            delta_link = page.get("@odata.deltaLink", delta_link)
        return delta_link

    def _upsert(self, users: list[dict]):
        by_id = {u["id"]: u for u in users if u.get("id")}  # the last occurrence wins
        # The first import into an empty mirror has only rows of its own earlier pages.
        known = (
            [graph_id for graph_id in by_id if graph_id in self.touched_ids]
            if self.mirror_was_empty
            else list(by_id)
        )
        existing = (
            {
                row.graph_id: row
                for row in DirectoryUser.objects.filter(
                    configuration=self.configuration, graph_id__in=known
                )
            }
            if known
            else {}
        )
        new, changed = [], []
        for graph_id, data in by_id.items():
            row = existing.get(graph_id)
            removed = data.get("@removed")
            if removed is not None:
                if row is not None and not row.removed_at:
                    row.removed_at = self.now
                    row.removed_permanently = removed.get("reason") == "deleted"
                    changed.append(row)
                    self.job.removed += 1
                continue
            self.job.users_seen += 1
            if row is None:
                row = DirectoryUser(configuration=self.configuration, graph_id=graph_id)
                new.append(row)
            else:
                changed.append(row)
            _apply_graph_user(row, data)
        now = timezone.now()
        for row in changed:
            row.updated_at = now
        with transaction.atomic():
            DirectoryUser.objects.bulk_create(new, batch_size=BATCH_SIZE)
            _update_rows(DirectoryUser, changed, MIRROR_FIELDS)
        self.touched_ids.update(by_id)

    def _reconcile_unlisted(self):
        unlisted = DirectoryUser.objects.filter(
            configuration=self.configuration, removed_at__isnull=True
        ).exclude(graph_id__in=self._seen_ids_query())
        self.job.removed += unlisted.update(removed_at=self.now)

    def _seen_ids_query(self):
        # Rows touched in this job were updated at or after self.now.
        return DirectoryUser.objects.filter(
            configuration=self.configuration, updated_at__gte=self.now
        ).values("graph_id")

    # -- accounts ----------------------------------------------------------------------------
    def import_accounts(self):
        rows = DirectoryUser.objects.filter(
            configuration=self.configuration, account__isnull=True
        ).order_by("pk")
        self._in_batches(rows, self._import_batch)

    def synchronize_accounts(self):
        rows = (
            DirectoryUser.objects.filter(
                configuration=self.configuration, graph_id__in=self.touched_ids
            )
            .select_related("account")
            .order_by("pk")
            if not self.job.full_read
            else DirectoryUser.objects.filter(configuration=self.configuration)
            .select_related("account")
            .order_by("pk")
        )
        self._in_batches(rows, self._synchronize_batch)

    def _in_batches(self, queryset, handle, size=BATCH_SIZE):
        last_pk = 0
        while True:
            batch = list(queryset.filter(pk__gt=last_pk)[:size])
            if not batch:
                return
            with transaction.atomic():
                handle(batch)
            last_pk = batch[-1].pk
            self.save_progress(every=PROGRESS_EVERY_SECONDS)

    def _accounts_for(self, emails, linked_accounts=()) -> "AccountIndex":
        """The accounts whose login or email is one of `emails` (case-insensitive), and what
        decides whether directory data may touch them: memberships and existing links."""
        emails = {email for email in emails if email}
        found = (
            list(
                get_user_model()
                .objects.annotate(login=Lower("username"), address=Lower("email"))
                .filter(Q(login__in=emails) | Q(address__in=emails))
            )
            if emails
            else []
        )
        index = AccountIndex()
        for account in found:
            for email in {account.login, account.address} & emails:
                index.by_email[email][account.pk] = account
        ids = {account.pk for account in found} | {account.pk for account in linked_accounts}
        for user_id, organization_id, role in Membership.objects.filter(
            user_id__in=ids
        ).values_list("user_id", "organization_id", "role"):
            index.roles[user_id][organization_id] = role
        for account_id, row_pk in DirectoryUser.objects.filter(
            configuration__organization=self.organization, account_id__in=ids
        ).values_list("account_id", "pk"):
            index.links[account_id].add(row_pk)
        return index

    def _refusal(self, account, index) -> str | None:
        """Why directory data must leave `account` alone: it may only create, link and change
        accounts whose one role, in this organization only, is *user*."""
        roles = index.roles[account.pk]
        privileged = {Membership.Role.ADMIN, Membership.Role.OPERATOR}
        if account.is_superuser or account.is_staff or privileged & set(roles.values()):
            return ADMINISTRATOR
        if set(roles) - {self.organization.pk}:
            return OTHER_ORGANIZATION
        if roles.get(self.organization.pk) != Membership.Role.USER:
            return OUTSIDE
        return None

    def _match(self, row, index):
        """(account, None) to link `row` to, (None, None) when no account has its email, or
        (None, reason) when the email's account must not be linked."""
        matches = list(index.by_email.get(row.email, {}).values())
        if not matches:
            return None, None
        refusals = [self._refusal(account, index) for account in matches]
        if ADMINISTRATOR in refusals:
            return None, ADMINISTRATOR
        if len(matches) > 1:
            return None, "More than one Kodo account has this email; it was not linked."
        if refusals[0]:
            return None, refusals[0]
        if index.links[matches[0].pk] - {row.pk}:
            return None, (
                "This email belongs to a Kodo account already linked to another "
                "Microsoft 365 user; it was not linked."
            )
        return matches[0], None

    def _link(self, row, account, index):
        row.account = account
        index.links[account.pk].add(row.pk)
        self.job.linked += 1

    def _conflict(self, row, reason):
        self.job.conflicts += 1
        self._detail(row, reason)

    def _skip(self, row, reason):
        self.job.skipped += 1
        self._detail(row, reason, skipped=True)

    def _detail(self, row, reason, **extra):
        if len(self.job.conflict_details) < MAX_CONFLICTS_KEPT:
            self.job.conflict_details.append(
                {
                    "email": row.email[:MAX_SHOWN_EMAIL],
                    "name": row.display_name,
                    "reason": reason,
                    **extra,
                }
            )

    def _import_batch(self, rows):
        eligible = []
        for row in rows:
            if self.options.skip_reason(row):
                self.job.skipped += 1
            elif problem := login_email_problem(row.email):
                self._skip(row, problem)
            else:
                eligible.append(row)
        index = self._accounts_for({r.email for r in eligible})
        User = get_user_model()
        to_create, claimed = [], set()
        for row in eligible:
            if row.email in claimed:
                self._conflict(row, "Another Microsoft 365 user in this import has this email.")
                continue
            claimed.add(row.email)
            account, refusal = self._match(row, index)
            if refusal:
                self._conflict(row, refusal)
            elif account is not None:
                self._link(row, account, index)
            else:
                first, _, last = row.display_name.partition(" ")
                account = User(
                    username=row.email,
                    email=row.email,
                    first_name=first[:150],
                    last_name=last[:150],
                    is_active=row.account_enabled,
                    password=_unusable_password(),
                )
                to_create.append(account)
                row.account = account
        User.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
        Membership.objects.bulk_create(
            [
                Membership(user=a, organization=self.organization, role=Membership.Role.USER)
                for a in to_create
            ],
            batch_size=BATCH_SIZE,
        )
        for row in eligible:
            row.account_id = row.account.pk if row.account else None
        _update_rows(DirectoryUser, [r for r in eligible if r.account_id], ["account"])
        self.job.created += len(to_create)

    def _synchronize_batch(self, rows):
        unlinked = []
        for row in rows:
            if row.account_id is not None or row.removed_at:
                continue
            if problem := login_email_problem(row.email):
                self._skip(row, problem)
            else:
                unlinked.append(row)
        linked = [r for r in rows if r.account_id is not None]
        new_emails = {r.email for r in linked if r.email != r.account.username.lower()}
        index = self._accounts_for(
            {r.email for r in unlinked} | new_emails, [r.account for r in linked]
        )
        for row in unlinked:
            account, refusal = self._match(row, index)
            if refusal:
                self._conflict(row, refusal)
            elif account is not None:
                self._link(row, account, index)
        newly_linked = [r for r in unlinked if r.account_id]
        _update_rows(DirectoryUser, newly_linked, ["account"])
        self._update_accounts(linked + newly_linked, index)

    def _update_accounts(self, rows, index):
        """Copy names, email and enabled state into linked accounts. The link is by object id:
        a new `mail` renames the account only to an address no other account has."""
        User = get_user_model()
        changed, unlinked, renamed_to = [], [], set()
        for row in rows:
            account = row.account
            refusal = self._refusal(account, index)
            if refusal:  # promoted, or linked before this rule: never changed, no longer linked
                row.account = None
                unlinked.append(row)
                self._conflict(
                    row,
                    f"The linked Kodo account {account.username} "
                    f"{LINKED_REFUSALS[refusal]}: it was unlinked and left "
                    "unchanged.",
                )
                continue
            first, _, last = row.display_name.partition(" ")
            wanted = {
                "first_name": first[:150],
                "last_name": last[:150],
                "is_active": row.account_enabled and not row.removed_at,
            }
            if row.email != account.username.lower():
                holders = set(index.by_email.get(row.email, {})) - {account.pk}
                if problem := login_email_problem(row.email):
                    self._skip(
                        row,
                        f"{problem.removesuffix('; skipped')}: the change was "
                        f"skipped and {account.username} keeps its email.",
                    )
                elif holders or row.email in renamed_to:
                    self._conflict(
                        row,
                        f"Cannot change {account.username} to {row.email}: "
                        "another Kodo account has that email.",
                    )
                else:
                    wanted.update(username=row.email, email=row.email)
                    renamed_to.add(row.email)
            if any(getattr(account, k) != v for k, v in wanted.items()):
                for key, value in wanted.items():
                    setattr(account, key, value)
                changed.append(account)
        _update_rows(DirectoryUser, unlinked, ["account"])
        _update_rows(User, changed, ["first_name", "last_name", "is_active", "username", "email"])
        self.job.updated += len(changed)

    # -- OneDrive --------------------------------------------------------------------------
    def check_onedrives(self):
        """Find out, for linked users not checked yet, whether they have a OneDrive.

        A batch of rows at a time: results are saved (and the job's heartbeat beats) as they
        come, and memory stays flat however many users there are. Graph is asked in JSON batches
        of DRIVE_CHECKS_PER_REQUEST users, DRIVE_CHECK_THREADS batches at once; a batch of rows
        is saved while the next one is being checked."""
        rows = (
            DirectoryUser.objects.filter(
                configuration=self.configuration,
                account__isnull=False,
                removed_at__isnull=True,
                onedrive=DirectoryUser.OneDrive.UNKNOWN,
            )
            .only("graph_id", "onedrive", "drive_id", "onedrive_checked_at")
            .order_by("pk")
        )
        last_pk = 0
        checking = None  # the previous batch and its checks: saved while this one is checked
        with ThreadPoolExecutor(DRIVE_CHECK_THREADS) as pool:
            while True:
                batch = list(rows.filter(pk__gt=last_pk)[:BATCH_SIZE])
                if batch:
                    last_pk = batch[-1].pk
                    size = DRIVE_CHECKS_PER_REQUEST
                    futures = [
                        pool.submit(self._check_drives, batch[i : i + size])
                        for i in range(0, len(batch), size)
                    ]
                if checking is not None:
                    self._save_drive_checks(*checking)
                if not batch:
                    return
                checking = (batch, futures)

    def _save_drive_checks(self, batch, futures):
        self.job.errors += sum(future.result() for future in futures)
        _update_rows(
            DirectoryUser,
            [r for r in batch if r.onedrive != DirectoryUser.OneDrive.UNKNOWN],
            ["onedrive", "drive_id", "onedrive_checked_at"],
        )
        self.save_progress(every=PROGRESS_EVERY_SECONDS)

    def _check_drives(self, rows) -> int:
        """GET /users/{id}/drive for these users in one JSON batch; returns the errors."""
        try:
            answers = self.client.get_many(
                [f"/users/{row.graph_id}/drive" for row in rows], params={"$select": "id"}
            )
        except GraphError as failure:  # the batch itself failed, after the client's retries
            log.warning("OneDrive check failed for %d users: %s", len(rows), failure)
            return len(rows)
        errors = 0
        checked_at = timezone.now()
        for row in rows:
            answer = answers[f"/users/{row.graph_id}/drive"]
            error = answer.error
            if error is None:
                row.onedrive = DirectoryUser.OneDrive.PROVISIONED
                row.drive_id = answer.json().get("id", "")
                row.onedrive_checked_at = checked_at
            elif isinstance(error, NotFound) or (
                error.code in NO_ONEDRIVE_CODES and error.status in (400, 404, 500)
            ):
                row.onedrive = DirectoryUser.OneDrive.MISSING
                row.onedrive_checked_at = checked_at
            else:
                log.warning("OneDrive check failed for %s: %s", row.graph_id, error)
                errors += 1
        return errors

    # -- bookkeeping ---------------------------------------------------------------------------
    def save_progress(self, every: float = 0):
        """Save the counters and beat the heartbeat (kodo.jobs.Job.beat: raises LostClaim when
        another worker took the job over); with `every`, at most that often (seconds)."""
        if every and time.monotonic() - self._last_progress < every:
            return
        self._last_progress = time.monotonic()
        self.job.beat(**{name: getattr(self.job, name) for name in PROGRESS_FIELDS})


PROGRESS_FIELDS = [
    "pages_read",
    "users_seen",
    "created",
    "updated",
    "linked",
    "removed",
    "skipped",
    "conflicts",
    "errors",
    "conflict_details",
    "full_read",
]
