import pytest
from cryptography.fernet import Fernet

from kodo import crypto


def test_it_round_trips_and_rotates(settings):
    old_key = settings.KODO_ENCRYPTION_KEYS[0]
    token = crypto.encrypt_text("s3cr3t")
    assert b"s3cr3t" not in token

    new_key = Fernet.generate_key().decode()
    settings.KODO_ENCRYPTION_KEYS = [new_key, old_key]
    rotated = crypto.rotate(token)
    settings.KODO_ENCRYPTION_KEYS = [new_key]
    assert crypto.decrypt_text(rotated) == "s3cr3t"
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt_text(token)
