"""Logs an admin can use under stress: repeats rate-limited with one summary, phone numbers
masked wherever they appear, config secrets never written."""

from __future__ import annotations

import io
import logging

from callserver.asterisk.ami_codec import AmiCodec
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.config import load_config
from callserver.core.bus import EventBus
from callserver.core.model.live import LiveModel
from callserver.logs import ALWAYS, RepeatLimiter, SafeFormatter, config_secrets, mask_phones

FMT = "%(levelname)s %(name)s: %(message)s"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rig(burst: int = 3, interval: float = 60.0, secrets: tuple[str, ...] = ()
         ) -> tuple[logging.Logger, io.StringIO, RepeatLimiter, Clock]:  # fmt: skip
    stream, clock = io.StringIO(), Clock()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter(FMT, secrets=secrets))
    limiter = RepeatLimiter(handler.handle, burst=burst, interval=interval, clock=clock)
    handler.addFilter(limiter)
    log = logging.getLogger(f"stress-{id(stream)}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log, stream, limiter, clock


def test_a_repeated_template_is_written_burst_times_then_summarised_once() -> None:
    log, stream, limiter, clock = _rig(burst=3)
    for i in range(1000):
        log.warning("PostgreSQL unreachable (%s): buffering %d events", "refused", i)
    assert len(stream.getvalue().splitlines()) == 3
    assert limiter.held == 997
    clock.now += 61
    log.warning("PostgreSQL unreachable (%s): buffering %d events", "refused", 1000)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[3] == ("WARNING " + log.name + ": PostgreSQL unreachable (refused): buffering"
                        " 999 events [repeated 997 more times in 60 s]")  # fmt: skip
    assert lines[4].endswith("buffering 1000 events")  # a new window starts


def test_other_templates_are_not_held_back_by_a_noisy_one() -> None:
    log, stream, _, _ = _rig(burst=2)
    for _ in range(500):
        log.error("AMI 127.0.0.1:5038: connection refused")
    log.info("callserver up")
    log.error("AMI connected")
    lines = stream.getvalue().splitlines()
    assert lines[-2:] == [f"INFO {log.name}: callserver up", f"ERROR {log.name}: AMI connected"]
    assert len(lines) == 4


def test_flush_reports_what_is_held_back_at_shutdown() -> None:
    log, stream, limiter, _ = _rig(burst=1)
    for _ in range(10):
        log.warning("outbox row %s failed", "x")
    limiter.flush()
    assert stream.getvalue().splitlines()[-1].endswith("[repeated 9 more times in 60 s]")


def test_the_number_of_tracked_templates_is_bounded() -> None:
    log, stream, limiter, _ = _rig(burst=1)
    limiter._max_keys = 100
    for i in range(5000):
        log.warning(f"template {i}")  # 5000 distinct templates on purpose
    assert len(limiter._windows) <= 100
    assert len(stream.getvalue().splitlines()) == 5000


def test_phone_numbers_are_masked_in_every_usual_form() -> None:
    text = (
        "lookup https://crm/p?phone=+79161234567 failed; 8 (916) 123-45-67, "
        "+7 916 123-45-67, 89161234567, 7-916-123-45-67; Key (phone)=(+4915112345678)"
    )
    out = mask_phones(text)
    assert "916" not in out and "1234567" not in out and "49151" not in out
    assert out.count("***4567") == 5 and "***5678" in out


def test_ids_times_and_counts_are_not_taken_for_phone_numbers() -> None:
    text = "uniqueid 1733000000.123 at 1733000000 (ms 1733000000123), 10000 events, 12:00:05"
    assert mask_phones(text) == text


def test_a_traceback_carrying_a_number_is_masked() -> None:
    log, stream, _, _ = _rig()
    try:
        raise ValueError("duplicate key (phone)=(+79161234567)")
    except ValueError:
        log.exception("insert failed")
    assert "9161234567" not in stream.getvalue() and "***4567" in stream.getvalue()


def test_config_secrets_are_found_and_never_written() -> None:
    config = load_config(None, env={
        "CALLSERVER_AMI_SECRET": "ami-s3cret", "CALLSERVER_ARI_PASSWORD": "ari-pw-77",
        "CALLSERVER_HTTP_API_TOKEN": "tok-abcdef",
        "CALLSERVER_DATABASE_DSN": "postgresql://cs:db-pass-1@db:5432/callserver",
        "CALLSERVER_REDIS_URL": "redis://:redis-pass-2@cache:6379/0",
        "CALLSERVER_CRM_HMAC_SECRET": "hmac-key-9",
    })  # fmt: skip
    secrets = config_secrets(config)
    for value in ("ami-s3cret", "ari-pw-77", "tok-abcdef", "db-pass-1", "redis-pass-2",
                  "hmac-key-9"):  # fmt: skip
        assert value in secrets
    log, stream, _, _ = _rig(secrets=tuple(secrets))
    log.error("login failed: Secret: %s; dsn %s", "ami-s3cret", config.database.dsn)
    log.error("webhook signed with %r", "hmac-key-9")
    out = stream.getvalue()
    assert not any(s in out for s in secrets)
    assert "postgresql://cs:***@db:5432/callserver" in out


def test_caller_numbers_in_malformed_ami_events_reach_the_log_masked() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FMT))  # a plain formatter: the call site masks
    translate_log = logging.getLogger("callserver.asterisk.ami_translate")
    translate_log.addHandler(handler)
    try:
        translator = AmiTranslator(LiveModel(EventBus()))
        frames = b"Asterisk Call Manager/9.0.0\r\n" + b"".join(
            b"Event: QueueCallerJoin\r\nChannel: PJSIP/t-%d\r\nUniqueid: 1.%d\r\n"
            b"CallerIDNum: +7916555%04d\r\nPosition: x\r\n\r\n" % (i, i, i)
            for i in range(20)
        )
        for msg in AmiCodec().feed(frames):
            if msg.kind == "event":
                translator.handle(msg)
    finally:
        translate_log.removeHandler(handler)
    out = stream.getvalue()
    assert translator.bad == 20 and out.count("\n") == 20
    assert "916555" not in out and "***0019" in out


def test_a_line_carrying_an_incident_id_is_never_held_back() -> None:
    log, stream, limiter, _ = _rig(burst=1)
    for i in range(20):
        log.warning("GET /api/calls: db down [incident %s]", f"{i:012x}", extra=ALWAYS)
    assert len(stream.getvalue().splitlines()) == 20 and limiter.held == 0
