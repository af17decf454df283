"""The process supervision the README ships (scripts/systemd): every queue has a worker, every
process is restarted when it dies, and there is exactly one beat."""

import configparser
from pathlib import Path

from kodo.celery import QUEUES

UNITS = Path(__file__).resolve().parents[2] / "scripts" / "systemd"


def _units():
    units = {}
    for path in sorted(UNITS.glob("*.service")):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str
        parser.read(path)
        units[path.name] = parser
    return units


def test_every_queue_is_consumed_by_a_supervised_worker():
    consumed = set()
    for name, unit in _units().items():
        command = unit["Service"]["ExecStart"].split()
        if "worker" in command:
            consumed.update(command[command.index("-Q") + 1].split(","))
            assert f"{name.removeprefix('kodo-worker-').removesuffix('.service')}@%%h" in command
    assert consumed == set(QUEUES)


def test_every_process_is_restarted_when_it_dies():
    units = _units()
    assert {"kodo-web.service", "kodo-beat.service"} <= set(units)
    for name, unit in units.items():
        assert unit["Service"]["Restart"] == "always", name
        assert unit["Service"]["EnvironmentFile"] == "/etc/kodo/kodo.env", name


def test_there_is_exactly_one_beat():
    beats = [name for name, unit in _units().items() if " beat" in unit["Service"]["ExecStart"]]
    assert beats == ["kodo-beat.service"]
