"""Re-read the backup store: authenticate chunks, check every file version's chunks exist and
that its content still has its quickXorHash. Exits non-zero when anything is wrong."""

import random

from django.core.management.base import BaseCommand, CommandError

from backups.models import FileVersion, OrganizationStoreKey
from backups.storage import store_for
from backups.store import CorruptChunk, ObjectNotFound, QuickXorHash
from organizations.commands import organization_from_argument
from organizations.models import Organization


class Command(BaseCommand):
    help = "Verify the backup store: all chunks, or a random sample (--sample 0.1)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Organization name or code (default: all).")
        parser.add_argument("--sample", type=float, default=1.0,
                            help="Fraction of file versions and chunks to re-read (default 1).")

    def handle(self, *args, organization=None, sample=1.0, **options):
        if not 0 < sample <= 1:
            raise CommandError("--sample must be a fraction above 0 and at most 1, e.g. 0.1.")
        orgs = ([organization_from_argument(organization)] if organization else
                Organization.objects.filter(
                    pk__in=OrganizationStoreKey.objects.values("organization")))
        problems = 0
        for org in orgs:
            problems += self._verify(org, sample)
        if problems:
            raise CommandError(f"{problems} problems found in the backup store.")
        self.stdout.write("The backup store is sound.")

    def _report(self, org, text):
        self.stdout.write(f"PROBLEM [{org}] {text}")

    def _verify(self, org, sample):
        store = store_for(org)
        problems = 0
        referenced = set()
        checked_contents = set()
        versions = FileVersion.objects.for_organization(org).filter(is_folder=False).only(
            "pk", "path", "size", "quickxorhash", "chunks", "organization_id")
        files = 0
        for version in versions.iterator(chunk_size=2000):
            files += 1
            ids = version.chunk_ids
            missing = [chunk_id for chunk_id in ids
                       if chunk_id not in referenced and not store.has_chunk(chunk_id)]
            referenced.update(ids)
            if missing:
                problems += 1
                self._report(org, f"{version.path} (version {version.pk}): {len(missing)} "
                                  f"missing chunks, e.g. {missing[0]}")
                continue
            content_key = (version.quickxorhash, version.size, tuple(ids))
            if content_key in checked_contents or random.random() >= sample:
                continue
            checked_contents.add(content_key)
            problems += self._verify_content(org, store, version)
        chunks = corrupt = 0
        for chunk_id in store.iter_chunk_ids():
            if chunk_id in referenced and random.random() >= sample:
                continue
            chunks += 1
            try:
                store.verify_chunk(chunk_id)
            except (CorruptChunk, ObjectNotFound) as error:
                corrupt += 1
                self._report(org, f"chunk {chunk_id} is unreadable: {error}")
        self.stdout.write(f"[{org}] {files} file versions, {len(referenced)} chunks referenced; "
                          f"re-read {len(checked_contents)} contents and {chunks} chunks; "
                          f"{problems + corrupt} problems.")
        return problems + corrupt

    def _verify_content(self, org, store, version):
        hasher, size = QuickXorHash(), 0
        try:
            for block in store.read_stream(version.chunk_ids):
                hasher.update(block)
                size += len(block)
        except (CorruptChunk, ObjectNotFound) as error:
            self._report(org, f"{version.path} (version {version.pk}): {error}")
            return 1
        if size != version.size or hasher.b64digest() != version.quickxorhash:
            self._report(org, f"{version.path} (version {version.pk}): content is {size} bytes "
                              f"with quickXorHash {hasher.b64digest()}, recorded {version.size} "
                              f"bytes with {version.quickxorhash}")
            return 1
        return 0
