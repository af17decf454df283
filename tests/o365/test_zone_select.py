"""The Users tab's time-zone <select> is rendered in Python once (not a template per option), and
renders what Django's Select renders."""

import re

import pytest
from django import forms

from o365.forms import AutoSyncForm, _time_zone_choices


class DjangoSelectForm(forms.Form):
    auto_sync_time_zone = forms.ChoiceField(label="Time zone", choices=_time_zone_choices)


def _canonical(html):
    """Tags without the whitespace between them, each tag's attributes in one order."""
    html = re.sub(r">\s+<", "><", html.strip())
    return re.sub(
        r"<(\w+)((?: [^>]*)?)>",
        lambda m: "<" + m[1] + "".join(sorted(re.findall(r' [\w-]+(?:="[^"]*")?', m[2]))) + ">",
        html,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": {"auto_sync_time_zone": "Europe/Warsaw"}},
        {"data": {"auto_sync_time_zone": 'Nowhere/"<b>'}},  # invalid: nothing selected, escaped
        {"data": {"auto_sync_time_zone": "America/Argentina/Buenos_Aires"}},
        {},
    ],
)
def test_it_renders_what_djangos_select_renders(kwargs):
    ours = str(AutoSyncForm(**kwargs)["auto_sync_time_zone"])
    django_s = str(DjangoSelectForm(**kwargs)["auto_sync_time_zone"])
    assert _canonical(ours) == _canonical(django_s)
    assert ours.count("<option") > 300 and "<b>" not in ours


def test_the_chosen_zone_is_selected_once():
    html = str(AutoSyncForm(initial={"auto_sync_time_zone": "Asia/Tokyo"})["auto_sync_time_zone"])
    assert html.count(" selected") == 1
    assert '<option value="Asia/Tokyo" selected>Asia/Tokyo</option>' in html


def test_the_options_are_rendered_once_not_per_page(monkeypatch):
    """No template per option (Django's Select builds its options' context and renders a
    template for each): the options' HTML is made once and reused by every page."""
    from o365 import forms as o365_forms

    str(AutoSyncForm()["auto_sync_time_zone"])
    misses = o365_forms._option_html.cache_info().misses

    def per_option_rendering(*args, **kwargs):
        raise AssertionError("options rendered through Django's templates")

    monkeypatch.setattr(forms.Select, "get_context", per_option_rendering)
    for zone in ("UTC", "Asia/Tokyo", "Europe/Warsaw"):
        html = str(AutoSyncForm(initial={"auto_sync_time_zone": zone})["auto_sync_time_zone"])
        assert f'value="{zone}" selected' in html
    assert o365_forms._option_html.cache_info().misses == misses
