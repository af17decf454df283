from backups.models import OrganizationStoreKey
from backups.storage import org_keys, store_for


def test_an_organization_gets_its_keys_on_first_use_wrapped(world, store_dir):
    assert not OrganizationStoreKey.objects.exists()
    keys = org_keys(world.org_a)

    row = OrganizationStoreKey.objects.get(organization=world.org_a)
    assert keys.data_key not in bytes(row.wrapped_keys)
    assert org_keys(world.org_a).to_bytes() == keys.to_bytes()
    assert org_keys(world.org_b).to_bytes() != keys.to_bytes()


def test_organizations_cannot_read_each_others_chunks(world, store_dir):
    ref = store_for(world.org_a).put_chunk(b"payroll 2024")
    assert store_for(world.org_a).get_chunk(ref.id) == b"payroll 2024"
    assert not store_for(world.org_b).has_chunk(ref.id)
