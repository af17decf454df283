"""Property-based: any input to the settings parser and to every form of Kodo is a form error or
a success, never an exception; posted to the views, never a 500 (issue 10, item 7).

Forms are discovered (every Form class defined in Kodo's apps, plus the Django auth forms its
URLs use), so a new form is covered without touching this file, or fails here until the
keyword arguments it needs are known below."""

import inspect
import json

import pytest
from django import forms
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.urls import get_resolver, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from o365.kodo_settings import TEXT_KEYS, TEXT_LIMITS, KodoSettings, parse_kodo_settings
from organizations.validators import forbidden_character
from tests.factories import make_configuration, make_schedule, mirror

KODO_APPS = ("kodo.", "organizations.", "o365.", "schedules.", "backups.")
DJANGO_AUTH_FORMS = [
    auth_forms.PasswordResetForm,
    auth_forms.SetPasswordForm,
    auth_forms.PasswordChangeForm,
]
NASTY = [
    "",
    " ",
    "\x00",
    "\ud800",
    "\n",
    "a\r\nBcc: x@example.com",
    "\u2028",
    "\x1b[31m",
    "é",
    "9" * 5000,
    "999999999999999",
    str(2**63),
    str(-(2**63) - 1),
    "-1",
    "0",
    "1e3",
    "NaN",
    "https://[::1",
    "https://u:p@127.0.0.1:9443/",
    "https://127.0.0.1:99999",
    "[[[[",
    "{}",
    "x" * 70_000,
    "22:00",
    "25:61",
    "2026-01-01",
    "0000-00-00",
    "on",
    "true",
    "a@b.example",
    "00000000-0000-0000-0000-000000000000",
    "Europe/Warsaw",
    "Mars/Olympus",
]
FAST = settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def json_values():
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=30),
        st.sampled_from(NASTY[:25]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.one_of(st.sampled_from(TEXT_KEYS), st.text(max_size=10)), inner, max_size=6
            ),
        ),
        max_leaves=20,
    )


def settings_objects():
    return st.dictionaries(st.sampled_from(TEXT_KEYS), json_values(), max_size=len(TEXT_KEYS))


def nearly_right_settings():
    """A file the script could have written, with one to three values replaced by anything."""
    base = {
        "AppName": "Kodo Backup",
        "TenantId": "00000000-0000-0000-0000-000000000001",
        "ClientId": "00000000-0000-0000-0000-000000000002",
        "ClientSecret": "secret",
        "Cloud": "Custom",
        "AuthorityHost": "https://127.0.0.1:9443",
        "GraphBaseUrl": "https://127.0.0.1:9443/v1.0",
    }
    changes = st.dictionaries(
        st.sampled_from(TEXT_KEYS),
        st.one_of(st.sampled_from(NASTY), json_values()),
        min_size=1,
        max_size=3,
    )
    return changes.map(lambda changed: {**base, **changed})


def _parses_or_refuses(raw: bytes):
    try:
        result = parse_kodo_settings(raw)
    except ValidationError as error:
        assert error.messages
        return
    assert isinstance(result, KodoSettings)
    for key, value in result.values.items():  # what a typed value may be, no more
        limit, multiline = TEXT_LIMITS.get(key, (200, False))
        assert isinstance(value, str) and len(value) <= limit
        assert forbidden_character(value, multiline=multiline) is None


@FAST
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.just(b"[" * 100_000 + b"]" * 100_000),
        st.integers(4301, 6000).map(lambda n: b'{"TenantId": ' + b"9" * n + b"}"),
    )
)
def test_the_settings_parser_refuses_any_bytes_with_a_form_error(raw):
    _parses_or_refuses(raw)


@settings(FAST, max_examples=60)
@given(
    st.one_of(nearly_right_settings(), settings_objects(), json_values()),
    st.booleans(),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_the_settings_parser_refuses_any_json_with_a_form_error(data, ascii_only, encoding):
    _parses_or_refuses(json.dumps(data, ensure_ascii=ascii_only).encode(encoding, "surrogatepass"))


# ----- every form -------------------------------------------------------------------------------


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def discovered_forms():
    get_resolver().url_patterns  # noqa: B018 - imports every view, hence every form in use
    import backups.views  # noqa: F401
    import o365.forms  # noqa: F401
    import o365.people  # noqa: F401
    import organizations.forms  # noqa: F401
    import schedules.forms  # noqa: F401

    kodo = {
        cls
        for cls in _subclasses(forms.BaseForm)
        if cls.__module__.startswith(KODO_APPS)
        and not cls.__name__.startswith("_")
        and not issubclass(cls, forms.ModelForm)
    }
    return sorted(kodo, key=lambda c: f"{c.__module__}.{c.__name__}") + DJANGO_AUTH_FORMS


@pytest.fixture
def objects(world):
    configuration = make_configuration(world.org_a)
    users = mirror(configuration, 2)
    schedule = make_schedule(world.org_a, configuration)
    return {
        "directory_user": users[0],
        "organization": world.org_a,
        "instance": None,
        "configuration": configuration,
        "user": world.admin_a,
        "request": None,
        "schedule": schedule,
    }


def _make_form(form_class, objects, *args):
    """The form with what its __init__ requires (a `user` first, as Django's auth forms want)."""
    kwargs, positional = {}, []
    for name, parameter in inspect.signature(form_class.__init__).parameters.items():
        required = parameter.default is parameter.empty
        if parameter.kind == parameter.KEYWORD_ONLY:
            if name in objects:
                kwargs[name] = objects[name]
            elif required:
                pytest.fail(f"{form_class.__name__} needs {name}=: add it to `objects` here.")
        elif name == "user" and required:
            positional.append(objects["user"])
    return form_class(*positional, *args, **kwargs)


def _choices(field) -> list[str]:
    if isinstance(field, forms.ModelChoiceField):
        return [str(pk) for pk in field.queryset.values_list("pk", flat=True)[:5]]
    values = []
    for key, label in getattr(field, "choices", []):
        if isinstance(label, list | tuple):
            values += [str(k) for k, _ in label]
        else:
            values.append(str(key))
    return values[:50]


def _has_lone_surrogate(value: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in value)


def field_values(field):
    # Any text a browser can send: a request's body is UTF-8, which cannot carry a lone
    # surrogate (Django decodes what is not UTF-8 with replacement characters).
    options = [v for v in NASTY if not _has_lone_surrogate(v)] + _choices(field)
    sendable = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
    one = st.one_of(st.sampled_from(options), sendable, st.integers().map(str))
    return st.lists(one, min_size=0, max_size=3)


def file_values():
    contents = st.one_of(
        st.binary(max_size=500),
        settings_objects().map(lambda d: json.dumps(d).encode()),
        st.just(b"[" * 100_000),
    )
    return st.one_of(
        st.none(),
        contents.map(lambda b: SimpleUploadedFile("KodoADSettings.json", b, "application/json")),
    )


def form_inputs(form):
    data = {
        name: field_values(field)
        for name, field in form.fields.items()
        if not isinstance(field, forms.FileField)
    }
    data["step"] = field_values(forms.CharField())
    data["action"] = st.lists(st.sampled_from(["save", "next", "back", "x"]), max_size=1)
    files = {
        name: file_values()
        for name, field in form.fields.items()
        if isinstance(field, forms.FileField)
    }
    return st.fixed_dictionaries(data), st.fixed_dictionaries(files)


def _query_dict(data) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, values in data.items():
        query.setlist(name, values)
    return query


@pytest.mark.parametrize("form_class", discovered_forms(), ids=lambda c: c.__name__)
def test_any_input_to_a_form_is_a_form_error_or_a_success(form_class, objects):
    data_strategy, files_strategy = form_inputs(_make_form(form_class, objects))

    @FAST
    @given(data_strategy, files_strategy)
    def check(data, files):
        form = _make_form(
            form_class, objects, _query_dict(data), {k: v for k, v in files.items() if v}
        )
        if not form.is_valid():
            assert form.errors

    check()


def test_the_forms_of_kodo_are_all_discovered():
    names = {cls.__name__ for cls in discovered_forms()}
    assert {
        "ConfigurationForm",
        "ImportUsersForm",
        "AutoSyncForm",
        "DirectoryFilterForm",
        "ScheduleForm",
        "OrganizationForm",
        "ServicesForm",
        "AuditSearchForm",
        "EmailAuthenticationForm",
        "PeopleFilterForm",
        "TaskFilterForm",
    } <= names


# ----- every form's view --------------------------------------------------------------------------

# (who, method, URL name, its arguments, the form whose fields are sent)
FORM_VIEWS = [
    ("admin_a", "post", "o365:configuration-new", "org", "o365.forms.ConfigurationForm"),
    ("admin_a", "post", "o365:configuration-edit", "configuration", "o365.forms.ConfigurationForm"),
    ("admin_a", "post", "o365:directory-import", "configuration", "o365.forms.ImportUsersForm"),
    ("admin_a", "post", "o365:directory-auto-sync", "configuration", "o365.forms.AutoSyncForm"),
    ("admin_a", "get", "o365:configuration-users", "org", "o365.forms.DirectoryFilterForm"),
    ("admin_a", "get", "o365:organization-users", "org", "o365.people.PeopleFilterForm"),
    ("admin_a", "post", "schedules:schedule-new", "org", "schedules.forms.ScheduleForm"),
    ("admin_a", "post", "schedules:schedule-edit", "schedule", "schedules.forms.ScheduleForm"),
    ("admin_a", "get", "organizations:audit-log", "org", "organizations.forms.AuditSearchForm"),
    ("admin_a", "get", "backups:tasks", "org", "backups.views.TaskFilterForm"),
    (
        "admin_a",
        "post",
        "organizations:server-organization-new",
        "",
        "organizations.forms.OrganizationForm",
    ),
    (
        "server_admin",
        "post",
        "organizations:server-organization-new",
        "",
        "organizations.forms.OrganizationForm",
    ),
    (
        "server_admin",
        "post",
        "organizations:server-organization-services",
        "org",
        "organizations.forms.ServicesForm",
    ),
    (
        "server_admin",
        "get",
        "organizations:server-audit-log",
        "",
        "organizations.forms.AuditSearchForm",
    ),
    ("server_admin", "post", "o365:server-cloud-new", "", "o365.forms.CloudForm"),
    ("anonymous", "post", "login", "", "organizations.forms.EmailAuthenticationForm"),
    ("anonymous", "post", "password_reset", "", "django.contrib.auth.forms.PasswordResetForm"),
]


def _url(name, arguments, world, objects):
    org = {"org_code": world.org_a.code}
    kwargs = {
        "": {},
        "org": org,
        "configuration": {**org, "configuration_code": objects["configuration"].code},
        "schedule": {**org, "schedule_code": objects["schedule"].code},
    }[arguments]
    return reverse(name, kwargs=kwargs)


def _without_what_no_browser_sends(values):
    return [v for v in values if "\x00" not in v and not _has_lone_surrogate(v)]


@pytest.mark.parametrize(
    "role, method, name, arguments, form_path",
    FORM_VIEWS,
    ids=[f"{v[0]}-{v[2]}" for v in FORM_VIEWS],
)
def test_any_input_sent_to_a_form_view_is_never_a_500(
    client, world, objects, role, method, name, arguments, form_path
):
    from django.utils.module_loading import import_string

    form_class = import_string(form_path)
    url = _url(name, arguments, world, objects)
    if role != "anonymous":
        client.force_login(getattr(world, role))
    data_strategy, files_strategy = form_inputs(_make_form(form_class, objects))

    @settings(FAST, max_examples=8)
    @given(data_strategy, files_strategy)
    def check(data, files):
        if method == "get":
            payload = {k: _without_what_no_browser_sends(values) for k, values in data.items()}
            response = client.get(url, payload)
        else:
            payload = {
                k: [v.encode("utf-8", "surrogatepass") for v in values]
                for k, values in data.items()
            }
            payload.update({k: v for k, v in files.items() if v})
            response = client.post(url, payload)
        assert response.status_code != 500

    check()
