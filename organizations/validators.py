import zoneinfo

from django.core.exceptions import ValidationError


def validate_time_zone(value: str):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "%(value)s is not a known time zone. Use a name like Europe/Warsaw or UTC.",
            params={"value": value},
        )
