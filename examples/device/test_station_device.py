"""Unit tests of the device program's own logic, without a server:
`python3 -m unittest discover -s examples/device` (the Rust suite runs this too: tests/api/device.rs)."""

import json
import tempfile
import unittest
from pathlib import Path

import station_device as sd


class FakeService:
    """Answers POSTs from a script of statuses (None: no answer) and records what it was sent."""

    def __init__(self, script):
        self.script = list(script)
        self.sent = []

    def __call__(self, url, body, headers, timeout):
        self.sent.append((url, json.loads(body), dict(headers)))
        status = self.script.pop(0) if self.script else 201
        if isinstance(status, sd.Answer):
            return status
        return sd.Answer(status, "{}" if status is not None else "connection refused")


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def device(directory, service, clock, **overrides):
    settings = sd.Settings(url="http://station.test", authorization="Token k", station="Pi",
                           lat=1.0, lon=2.0, interval=10.0, simulate_from=1_000, **overrides)
    return sd.Device(settings, sd.Buffer(Path(directory)), send=service, sensor=lambda now: 20.5,
                     clock=clock, sleep=clock.sleep, out=lambda line: None)


class DeviceTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.clock = Clock()

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_reading_goes_as_a_single_object_with_the_token_and_a_key(self):
        service = FakeService([201])
        d = device(self.dir, service, self.clock)
        d.take_reading()
        d.upload()
        url, body, headers = service.sent[0]
        self.assertEqual(url, "http://station.test/station/")
        self.assertEqual(body, {"name": "Pi", "timestamp": 1000, "temperature": 20.5,
                                "lat": 1.0, "lon": 2.0})
        self.assertEqual(headers["Authorization"], "Token k")
        self.assertTrue(headers["Idempotency-Key"].startswith("device-"))
        self.assertEqual(d.buffer.pending(), 0)

    def test_readings_are_buffered_while_the_service_is_away_then_sent_in_bulk(self):
        service = FakeService([None, 503, 429])
        d = device(self.dir, service, self.clock)
        for _ in range(5):
            d.take_reading()
            d.upload()
            self.clock.sleep(100)  # past any backoff: every tick tries
        # The first reading was frozen alone (a single post) at the first failure; its retries
        # are the very same request.
        self.assertEqual([body for _, body, _ in service.sent[:3]], [service.sent[0][1]] * 3)
        keys = {headers["Idempotency-Key"] for _, _, headers in service.sent[:4]}
        self.assertEqual(len(keys), 1)
        # Then the backlog, oldest first, as one array under a key of its own; then single
        # posts again.
        _, backlog, headers = service.sent[4]
        self.assertEqual([r["timestamp"] for r in backlog], [1010, 1020, 1030])
        self.assertNotIn(headers["Idempotency-Key"], keys)
        self.assertEqual(service.sent[5][1]["timestamp"], 1040)
        self.assertEqual(len(service.sent), 6)
        self.assertEqual(d.buffer.pending(), 0)
        self.assertEqual(d.uploaded, 5)

    def test_a_retry_after_a_lost_answer_sends_the_same_body_and_key_even_after_a_restart(self):
        service = FakeService([201, None])
        d = device(self.dir, service, self.clock, batch_size=3)
        for _ in range(4):
            d.buffer.add({"name": "Pi", "timestamp": len(d.buffer.queue), "temperature": 1,
                          "lat": 0, "lon": 0})
        d.upload()
        first = service.sent[1]
        # The device restarts: a new process reads the buffer from disk.
        again = FakeService([201])
        d2 = device(self.dir, again, self.clock, batch_size=50)
        self.assertEqual(d2.buffer.pending(), 1)
        d2.upload()
        self.assertEqual(again.sent[0][1], first[1])
        self.assertEqual(again.sent[0][2]["Idempotency-Key"], first[2]["Idempotency-Key"])

    def test_the_key_is_derived_from_the_batch(self):
        a = [{"name": "Pi", "timestamp": 1, "temperature": 2, "lat": 3, "lon": 4}]
        self.assertEqual(sd.idempotency_key(a), sd.idempotency_key(json.loads(json.dumps(a))))
        self.assertNotEqual(sd.idempotency_key(a), sd.idempotency_key(a * 2))
        key = sd.idempotency_key(a)
        self.assertTrue(1 <= len(key) <= 255 and all(33 <= ord(c) <= 126 for c in key))

    def test_a_refused_batch_is_set_aside_not_retried_forever(self):
        service = FakeService([sd.Answer(400, '[{}, {"temperature": ["bad"]}]')])
        d = device(self.dir, service, self.clock)
        for n in range(3):
            d.buffer.add({"name": "Pi", "timestamp": n, "temperature": 1, "lat": 0, "lon": 0})
        d.upload()
        self.assertEqual(len(service.sent), 1)
        self.assertEqual(d.buffer.pending(), 0)
        rejected = [json.loads(line) for line in
                    Path(self.dir, "rejected.jsonl").read_text().splitlines()]
        self.assertEqual(rejected[0]["status"], 400)
        self.assertEqual(len(rejected[0]["readings"]), 3)
        self.assertEqual(d.set_aside, 3)

    def test_408_and_429_are_retried_and_retry_after_is_honoured(self):
        service = FakeService([408, sd.Answer(429, "{}", retry_after=30.0), 201])
        d = device(self.dir, service, self.clock)
        d.take_reading()
        d.upload()
        self.assertEqual(len(service.sent), 1)
        self.clock.sleep(10)
        d.upload()
        self.assertEqual(len(service.sent), 2)
        self.clock.sleep(29)
        d.upload()
        self.assertEqual(len(service.sent), 2, "tried before Retry-After passed")
        self.clock.sleep(1)
        d.upload()
        self.assertEqual(d.buffer.pending(), 0)

    def test_the_buffer_survives_a_restart_and_a_torn_last_line(self):
        d = device(self.dir, FakeService([None]), self.clock)
        d.take_reading()
        d.upload()  # frozen as a batch, not acknowledged
        d.take_reading()
        with open(Path(self.dir, "queue.jsonl"), "ab") as out:
            out.write(b'{"name": "Pi", "timest')  # a power cut in the middle of a write
        restarted = sd.Buffer(Path(self.dir))
        self.assertEqual(restarted.pending(), 2)

    def test_run_stops_after_count_once_everything_is_uploaded(self):
        service = FakeService([None, None])
        d = device(self.dir, service, self.clock, count=3)
        self.assertEqual(d.run(), 0)
        self.assertEqual(d.produced, 3)
        uploaded = []
        for _, body, _ in service.sent[2:]:
            uploaded += body if isinstance(body, list) else [body]
        self.assertEqual([r["timestamp"] for r in uploaded], [1000, 1010, 1020])

    def test_run_reports_readings_it_could_not_upload(self):
        d = device(self.dir, FakeService([None] * 1000), self.clock, count=2, drain_seconds=5)
        self.assertEqual(d.run(), 1)
        self.assertEqual(d.buffer.pending(), 2)


if __name__ == "__main__":
    unittest.main()
