"""Recording a machine (`doctor --record`) and planning from the recording."""

import json

import pytest
from gptoss_hub.hardware import fixture_names, load_fixture, load_report, probe_host
from gptoss_hub.hardware.recorded import RecordedHost, RecordedMachine, recorded_machine
from gptoss_hub.hardware.recording import RecordingHost, expected_fields, record_machine

from gptoss_hub.cli.main import main
from gptoss_hub.errors import InvalidRequestError


@pytest.mark.parametrize("name", ["h100", "mi300x", "m3-max", "2x-h100", "nvidia-driver-broken"])
def test_a_recording_of_a_recorded_machine_replays_to_the_same_report(name):
    # RecordingHost over a replayed fixture: what it keeps must be enough to replay the same report again.
    recorder = RecordingHost(RecordedHost(recorded_machine(name), name))
    report = probe_host(recorder)
    assert report == load_fixture(name)
    again = probe_host(RecordedHost(recorder.recording("again", expected_fields(report)), "again"))
    assert again == report and again.capabilities == report.capabilities


def test_a_recording_keeps_only_what_the_detectors_read():
    recorder = RecordingHost(RecordedHost(recorded_machine("h100"), "h100"))
    probe_host(recorder)
    recording = recorder.recording()
    original = recorded_machine("h100")
    assert set(recording.commands) <= set(original.commands)
    assert set(recording.files) <= set(original.files)
    assert "/proc/cpuinfo" in recording.files and any(c.startswith("nvidia-smi") for c in recording.commands)
    assert recording.distributions["torch"].version == original.distributions["torch"].version


def test_this_machine_records_and_replays_to_its_own_report():
    recording = record_machine()
    replayed = probe_host(RecordedHost(recording, "here"))
    assert expected_fields(replayed) == recording.expected
    assert recording.description  # says what was recorded


def test_a_recording_that_would_replay_differently_is_refused():
    class Forgetful(RecordingHost):
        def read_text(self, path):  # reads the file but keeps nothing
            return self._host.read_text(path)

    with pytest.raises(RuntimeError, match="does not replay to the same report"):
        _record_with(Forgetful)


def _record_with(recorder_class):
    from gptoss_hub.hardware import recording

    original = recording.RecordingHost
    recording.RecordingHost = recorder_class
    try:
        return recording.record_machine(host=RecordedHost(recorded_machine("h100"), "h100"))
    finally:
        recording.RecordingHost = original


def test_doctor_record_then_plan_for_the_recording(tmp_path, capsys):
    path = tmp_path / "machine.json"
    assert main(["doctor", "--json", "--record", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)  # the JSON on stdout stays clean
    recording = RecordedMachine.model_validate_json(path.read_text())
    assert recording.expected["accelerators"] == printed["hardware"]["accelerators"]
    assert load_report(path) == probe_host(RecordedHost(recording, "machine"))
    assert main(["plan", "tiny", "--hardware", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chosen"]


def test_plan_hardware_reads_doctor_json_and_a_plain_report(tmp_path, capsys):
    report = load_fixture("h100")
    doctor = tmp_path / "doctor.json"
    doctor.write_text(json.dumps({"version": "x", "hardware": json.loads(report.model_dump_json())}))
    plain = tmp_path / "report.json"
    plain.write_text(report.model_dump_json())
    assert load_report(doctor) == report == load_report(plain)


def test_a_file_that_is_neither_report_nor_recording_is_a_typed_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"commands": {"nvidia-smi": {"returncode": "not a number"}}}))
    with pytest.raises(InvalidRequestError, match="neither a hardware report nor a recording"):
        load_report(bad)
    assert "h100" in fixture_names()
