"""The Microsoft Graph application permissions Kodo needs, and which granted roles satisfy them.

A token's `roles` claim lists the application permissions an admin consented to. A broader
permission covers a narrower one: X.ReadWrite.All covers X.Read.All, Directory.Read.All covers
User.Read.All, and the Sites permissions reach every OneDrive (OneDrive is SharePoint).
"""

REQUIRED_PERMISSIONS = [
    ("User.Read.All", "Read the directory to import and synchronize users."),
    ("Files.Read.All", "Read every user's OneDrive to back it up."),
]

RESTORE_PERMISSIONS = [
    (
        "Files.ReadWrite.All",
        "Write files back to OneDrive when restoring (it also covers Files.Read.All).",
    ),
]

PERMISSIONS = REQUIRED_PERMISSIONS + RESTORE_PERMISSIONS

# Permission -> granted roles that satisfy it besides itself and its ReadWrite sibling.
_ALSO_SATISFIED_BY = {
    "User.Read.All": {"Directory.Read.All", "Directory.ReadWrite.All"},
    "Files.Read.All": {
        "Sites.Read.All",
        "Sites.ReadWrite.All",
        "Sites.Manage.All",
        "Sites.FullControl.All",
    },
    "Files.ReadWrite.All": {"Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"},
}


def _satisfies(granted: set[str], permission: str) -> bool:
    wanted = permission.lower()
    candidates = {wanted} | {r.lower() for r in _ALSO_SATISFIED_BY.get(permission, ())}
    if wanted.endswith(".read.all"):
        candidates.add(wanted[: -len(".read.all")] + ".readwrite.all")
    return bool(candidates & granted)


def missing_permissions(roles: list[str], *, restore: bool = False) -> list[str]:
    """The required permissions (plus the restore ones when `restore`) that `roles` lacks,
    in the order of PERMISSIONS."""
    granted = {role.lower() for role in roles or ()}
    needed = PERMISSIONS if restore else REQUIRED_PERMISSIONS
    return [name for name, _ in needed if not _satisfies(granted, name)]
