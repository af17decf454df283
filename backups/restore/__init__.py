"""Restoring backed-up OneDrive content to Microsoft 365: one RestoreJob from its selection to
its end.

    plan (the selection -> RestoreItems, 500 per transaction) -> the target OneDrive's folders,
    by parent id -> each file from the store into an upload session, in fragments, in parallel
    -> verified: Microsoft's quickXorHash of the new item equals the backed-up one -> recorded.

Resumability: the row and its items are the truth. A takeover after a worker died lists again
only an unfinished plan, keeps every finished item, and resumes each file in flight from its
saved upload session (`nextExpectedRanges`), so at most the fragment on the wire is sent twice.

The modules: paths (where things go), plan (the items), content (a version's bytes from any
offset), folders (paths to folder ids in the target OneDrive), upload (one file, in a worker
thread, no database), run (RestoreRun: the claim, the threads, the recording, the end),
notify (the email and the audit entry at the end), checks (what must hold before starting).
"""


class RestoreRefused(Exception):
    """The restore cannot start: the message says what is missing (a write permission, the
    target's OneDrive, a selection, a user of the organization)."""
