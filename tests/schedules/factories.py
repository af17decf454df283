import datetime as dt

from o365.models import DirectoryUser
from schedules.beat import sync_beat_entry
from schedules.models import Schedule
from tests.o365.factories import make_service


def mirror(service, count, prefix="u"):
    return DirectoryUser.objects.bulk_create(
        DirectoryUser(service=service, graph_id=f"{prefix}-{i}",
                      user_principal_name=f"{prefix}{i}@alpha.example",
                      mail=f"{prefix}{i}@alpha.example", display_name=f"{prefix.upper()} {i}",
                      onedrive="yes", drive_id=f"b!{prefix}{i}")
        for i in range(count))


def make_schedule(organization, service=None, **fields):
    service = service or make_service(organization)
    values = {"name": "Nightly", "time": dt.time(22, 0), "time_zone": "UTC",
              "start_date": dt.date(2026, 1, 1)}
    values.update(fields)
    schedule = Schedule.objects.create(organization=organization, service=service, **values)
    sync_beat_entry(schedule)
    return schedule
