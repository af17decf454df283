from django.db import migrations, models

# The words organizations.invitations.message() wrote after the address, one per method.
MESSAGE_ENDS = (" to set a password.", " to sign in with Microsoft.")


def invited_from_audit_log(apps, schema_editor):
    """Each membership's `invited_at`: its last `user_invited` audit entry (the message names the
    address: "Invited kim@example.com to set a password.")."""
    AuditEvent = apps.get_model("organizations", "AuditEvent")
    Membership = apps.get_model("organizations", "Membership")
    last: dict[tuple[int, str], object] = {}
    events = AuditEvent.objects.filter(action="user_invited", organization__isnull=False)
    for organization_id, text, created_at in events.values_list(
        "organization_id", "message", "created_at"
    ).iterator():
        for end in MESSAGE_ENDS:
            if text.startswith("Invited ") and text.endswith(end):
                key = (organization_id, text[len("Invited ") : -len(end)])
                if key not in last or created_at > last[key]:
                    last[key] = created_at
    for (organization_id, email), created_at in last.items():
        Membership.objects.filter(
            organization_id=organization_id, user__email=email, role="user"
        ).update(invited_at=created_at)


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0004_self_service_operator_microsoft_identity"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="invited_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(invited_from_audit_log, migrations.RunPython.noop),
    ]
