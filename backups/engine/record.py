"""Recording: what a run changed (versions started and ended, issues, counts), in short
transactions that each prove the claim first, and the end of the run."""

from django.db import transaction
from django.utils import timezone

from backups.engine.download import Outcome
from backups.engine.host import EngineMixin
from backups.engine.plan import RECORD_BATCH, Item
from backups.models import BackupRun, FileVersion, RunIssue
from backups.prune import secure_chunks
from backups.storage import clear_damage
from backups.store import StreamResult
from o365.models import DirectoryUser


class Recording(EngineMixin):
    """OneDriveBackup's writes to the database (uses self.run, self.user, self.store,
    self.progress, self._beat and self._close)."""

    def _record_no_onedrive(self, error):
        run, user = self.run, self.user
        with transaction.atomic():
            self._beat(force=True)
            # The date restarts the wait before backups look for this OneDrive again.
            user.onedrive = DirectoryUser.OneDrive.MISSING
            user.onedrive_checked_at = timezone.now()
            user.save(update_fields=["onedrive", "onedrive_checked_at", "updated_at"])
            RunIssue.objects.create(
                run=run,
                kind=RunIssue.Kind.SKIPPED,
                reason=RunIssue.Reason.NO_ONEDRIVE,
                message=error.message or str(error),
            )
            self._close(BackupRun.Status.SKIPPED, "The user has no OneDrive.")

    def _record_changes(self, state, plan, current):
        run = self.run
        for start in range(0, len(plan.deletions), RECORD_BATCH):
            batch = plan.deletions[start : start + RECORD_BATCH]
            with transaction.atomic():
                self._beat(force=True)
                FileVersion.objects.filter(
                    pk__in=[v.pk for v in batch], end_run__isnull=True
                ).update(end_run=run, deleted=True)
                run.add(files_deleted=sum(1 for v in batch if not v.is_folder))
        for start in range(0, len(plan.metadata), RECORD_BATCH):
            batch = plan.metadata[start : start + RECORD_BATCH]
            with transaction.atomic():
                self._beat(force=True)
                old = [current[item.id].pk for item, _ in batch if item.id in current]
                FileVersion.objects.filter(pk__in=old, end_run__isnull=True).update(end_run=run)
                FileVersion.objects.bulk_create(
                    [
                        self._version(
                            state,
                            item,
                            path,
                            chunks=current[item.id].chunks if item.id in current else [],
                        )
                        for item, path in batch
                    ]
                )
                run.add(
                    files_moved=sum(
                        1 for item, _ in batch if item.id in current and not item.is_folder
                    )
                )
        if plan.skips:
            with transaction.atomic():
                self._beat(force=True)
                RunIssue.objects.bulk_create(
                    [
                        RunIssue(
                            run=run,
                            kind=RunIssue.Kind.SKIPPED,
                            reason=skip.reason,
                            item_id=item.id,
                            path=path,
                            message=skip.message,
                        )
                        for item, path, skip in plan.skips
                    ]
                )
                run.add(files_skipped=len(plan.skips))

    def _version(self, state, item: Item, path: str, chunks) -> FileVersion:
        return FileVersion(
            organization_id=self.run.organization_id,
            drive=state,
            item_id=item.id,
            parent_id=item.parent_id,
            path=path,
            name=item.name,
            is_folder=item.is_folder,
            size=0 if item.is_folder else item.size,
            quickxorhash=item.quickxorhash,
            mime_type=item.mime_type,
            created_datetime=item.created,
            modified_datetime=item.modified,
            etag=item.etag,
            ctag=item.ctag,
            chunks=chunks,
            first_run=self.run,
        )

    def _record_outcomes(self, state, outcomes: list[Outcome], current):
        """Record finished downloads in one transaction. Every outcome's chunks are stored
        already; a crash before this commits only means downloading these few files again."""
        run = self.run
        stored = [(o, o.result) for o in outcomes if o.result is not None]
        deleted_ids = [
            o.item.id
            for o in outcomes
            if o.skip is not None and o.skip.reason == RunIssue.Reason.DELETED
        ]
        issues: list[RunIssue] = []
        counts: dict[str, int] = {}
        for outcome in outcomes:
            if outcome.result is not None:
                continue
            if outcome.skip is not None:
                issues.append(
                    RunIssue(
                        run=run,
                        kind=RunIssue.Kind.SKIPPED,
                        reason=outcome.skip.reason,
                        item_id=outcome.item.id,
                        path=outcome.path,
                        message=outcome.skip.message,
                    )
                )
                counts["files_skipped"] = counts.get("files_skipped", 0) + 1
            else:
                reason = (
                    RunIssue.Reason.VERIFY
                    if "did not match" in outcome.error
                    else RunIssue.Reason.DOWNLOAD
                )
                issues.append(
                    RunIssue(
                        run=run,
                        kind=RunIssue.Kind.FAILED,
                        reason=reason,
                        item_id=outcome.item.id,
                        path=outcome.path,
                        message=outcome.error[:2000],
                    )
                )
                counts["files_failed"] = counts.get("files_failed", 0) + 1
        healed = self.store.take_healed()  # damaged chunks written again: sound after sync
        if stored or healed:
            # The chunks' renames become durable here, for the whole batch at once, before any
            # row points to them (write_stream was told to defer its directory fsyncs).
            self.store.sync()
        if stored:
            stored = self._secure_chunks(stored, issues, counts)
        versions = [
            self._version(state, o.item, o.path, [[ref.id, ref.size] for ref in result.chunks])
            for o, result in stored
        ]
        if stored:
            counts.update(
                files_downloaded=len(stored),
                bytes_downloaded=sum(result.size for _, result in stored),
                bytes_stored=sum(result.new_bytes_stored for _, result in stored),
            )
        with transaction.atomic():
            self._beat(force=True)
            if stored:
                FileVersion.objects.filter(
                    drive=state, item_id__in=[o.item.id for o, _ in stored], end_run__isnull=True
                ).update(end_run=run)
                for version in FileVersion.objects.bulk_create(versions):
                    current[version.item_id] = version
            if deleted_ids:
                ended = FileVersion.objects.filter(
                    drive=state, item_id__in=deleted_ids, end_run__isnull=True
                ).update(end_run=run, deleted=True)
                if ended:
                    counts["files_deleted"] = ended
            if issues:
                RunIssue.objects.bulk_create(issues)
            if counts:
                run.add(**counts)
        if healed:
            clear_damage(run.organization, healed)
        self.progress(run)

    def _secure_chunks(
        self, stored: list[tuple[Outcome, StreamResult]], issues, counts
    ) -> list[tuple[Outcome, StreamResult]]:
        """Make the chunks these versions reuse safe from prune before recording them: a chunk
        prune marked unreferenced is un-marked, one it already set aside is put back. An outcome
        whose chunk is gone for good is failed instead (the next run downloads it again)."""
        chunk_ids = {ref.id for _, result in stored for ref in result.chunks}
        lost = secure_chunks(self.run.organization, self.store, chunk_ids)
        if not lost:
            return stored
        kept = []
        for outcome, result in stored:
            if any(ref.id in lost for ref in result.chunks):
                issues.append(
                    RunIssue(
                        run=self.run,
                        kind=RunIssue.Kind.FAILED,
                        reason=RunIssue.Reason.OTHER,
                        item_id=outcome.item.id,
                        path=outcome.path,
                        message="A chunk of the file left the store while it was being backed up; "
                        "the next backup downloads it again.",
                    )
                )
                counts["files_failed"] = counts.get("files_failed", 0) + 1
            else:
                kept.append((outcome, result))
        return kept

    def _finish(self, state, delta_link, root_id, failed_ids):
        run = self.run
        with transaction.atomic():
            self._beat(force=True)
            state.delta_link = delta_link or state.delta_link
            state.root_item_id = root_id or state.root_item_id
            state.retry_item_ids = sorted(set(failed_ids))
            state.last_run = run
            state.save(
                update_fields=[
                    "delta_link",
                    "root_item_id",
                    "retry_item_ids",
                    "last_run",
                    "updated_at",
                ]
            )
            self._report_lost_versions(state)
            run.refresh_from_db()
            status = BackupRun.Status.PARTIAL if run.files_failed else BackupRun.Status.SUCCEEDED
            self._close(status, "")

    def _report_lost_versions(self, state):
        """Older versions still using a damaged chunk after this run downloaded the current
        content again cannot be restored: name them on the run (once: they are marked lost)."""
        lost = list(
            FileVersion.objects.filter(
                drive=state,
                damage=FileVersion.Damage.DAMAGED,
                end_run__isnull=False,
            )
            .order_by("path", "pk")
            .values_list("pk", "path")
        )
        if not lost:
            return
        FileVersion.objects.filter(pk__in=[pk for pk, _ in lost]).update(
            damage=FileVersion.Damage.LOST
        )
        self.run.lost_versions = [
            *self.run.lost_versions,
            *({"path": path, "version": pk} for pk, path in lost),
        ]
        BackupRun.objects.filter(pk=self.run.pk).update(lost_versions=self.run.lost_versions)
