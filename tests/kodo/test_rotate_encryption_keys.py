from cryptography.fernet import Fernet
from django.core.management import call_command

from kodo import crypto
from o365.models import Configuration
from tests.factories import SECRET, make_configuration


def test_it_re_encrypts_every_secret_with_the_newest_key(world, settings):
    old = settings.KODO_ENCRYPTION_KEYS[0]
    make_configuration(world.org_a)
    new = Fernet.generate_key().decode()
    settings.KODO_ENCRYPTION_KEYS = [new, old]

    call_command("rotate_encryption_keys")

    settings.KODO_ENCRYPTION_KEYS = [new]  # the old key is gone
    configuration = Configuration.objects.get()
    assert crypto.decrypt_text(configuration.client_secret_encrypted) == SECRET
    assert "o365.Configuration" in crypto.ENCRYPTED_FIELDS


def test_it_re_wraps_the_organizations_store_keys(world, settings):
    from backups.models import OrganizationStoreKey
    from backups.storage import org_keys

    old = settings.KODO_ENCRYPTION_KEYS[0]
    keys = org_keys(world.org_a)
    new = Fernet.generate_key().decode()
    settings.KODO_ENCRYPTION_KEYS = [new, old]

    call_command("rotate_encryption_keys")

    settings.KODO_ENCRYPTION_KEYS = [new]  # the old key is gone; the backups still open
    stored = OrganizationStoreKey.objects.get(organization=world.org_a).org_keys()
    assert (stored.data_key, stored.id_key) == (keys.data_key, keys.id_key)
