"""``[ivr]``: the voice bot's settings (a frozen dataclass; ``validate`` names the bad key).

Every key can be overridden by ``CALLSERVER_IVR_<KEY>`` (e.g. ``CALLSERVER_IVR_BACKEND=none``).
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.errors import ConfigError

BACKENDS = ("pocketsphinx", "vosk", "none")
CODECS = ("ulaw", "alaw", "slin16")


@dataclass(frozen=True)
class IvrConfig:
    """The ``[ivr]`` section.

    * ``backend``: pocketsphinx | vosk | none (none: keypad-only menu);
    * ``model_path``: a vosk model directory (pocketsphinx: empty = the wheel's en-us model);
    * ``language``: ru | en, the prompts' and recogniser's language when routing names none
      (``use_route_language``: take ``ROUTE_LANG`` when it is ru or en);
    * ``prompts``: Asterisk sound id prefix of the prompt set (``sound:<prompts>/<id>`` played
      with ``lang``; ``python -m ivr.prompt_sounds`` builds it);
    * ``silence_s``: no-input timeout after a prompt ends (seconds); ``trailing_pause_ms`` /
      ``max_utterance_ms``: end of speech after this pause / utterance cap (milliseconds);
    * ``rtp_host``, ``rtp_port_min``..``rtp_port_max``: where externalMedia sends the caller's
      audio (one UDP port per call); ``codec``: ulaw | alaw | slin16;
    * ``max_calls``: bot calls at once (more go back to their queue); ``workers``: recogniser
      threads (vosk) or processes (pocketsphinx); ``prewarm``: pocketsphinx decoders made per
      worker at start-up (~0.17 s CPU and ~28 MB each; callers speaking at the same moment beyond
      ``workers × prewarm`` wait ~0.17 s for a new one, once); ``max_call_s``: a bot call's
      hard limit.
    """

    enabled: bool = True
    backend: str = "pocketsphinx"
    model_path: str = ""
    language: str = "en"
    use_route_language: bool = True
    prompts: str = "callserver"
    silence_s: float = 5.0
    trailing_pause_ms: int = 400
    max_utterance_ms: int = 8000
    rtp_host: str = "127.0.0.1"
    rtp_port_min: int = 40000
    rtp_port_max: int = 40999
    codec: str = "ulaw"
    max_calls: int = 40
    workers: int = 2
    prewarm: int = 8
    max_call_s: float = 300.0
    load_at_start: bool = False
    """Load the recogniser (worker processes, decoders: seconds, ~250 MB per pocketsphinx
    worker) when the server starts; by default it loads with the first bot call, while the
    greeting plays, so a server that sends no call to the bot never pays for it."""
    priority_boost: int = 10
    sounds_dir: str = "/var/lib/asterisk/sounds"
    """Asterisk's sounds directory as this host sees it: campaign calls' texts are synthesised
    into ``<sounds_dir>/<lang>/<prompts>/spoken/`` (``ivr.spoken``); empty: not synthesised."""
    recordings_dir: str = "/var/lib/callserver/recordings/feedback"
    """Where feedback comments are recorded (``dial-<dial id>.wav``, 16 kHz mono 16-bit; the
    directory is made with mode 0700); empty: comments are transcribed but not recorded."""
    comment_max_s: float = 60.0
    """A comment's longest recording (seconds)."""
    comment_pause_ms: int = 1500
    """A comment ends after this pause (milliseconds; an answer to a menu after
    ``trailing_pause_ms``)."""


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(message=f"ivr.{key}: {message}", key=f"ivr.{key}")


def validate_ivr(c: IvrConfig) -> None:
    """Raise ``ConfigError`` (``details['key']`` = ``ivr.<key>``) for the first bad value."""
    _check(c.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}")
    _check(c.language in ("ru", "en"), "language", "must be ru or en")
    _check(c.codec in CODECS, "codec", f"must be one of {', '.join(CODECS)}")
    _check(bool(c.prompts) and all(p.isalnum() or p in "_-/" for p in c.prompts)
           and ".." not in c.prompts, "prompts", "letters, digits, _ - / only")
    _check(0.5 <= c.silence_s <= 60, "silence_s", "must be 0.5..60 seconds")
    _check(100 <= c.trailing_pause_ms <= 3000, "trailing_pause_ms", "must be 100..3000 ms")
    _check(1000 <= c.max_utterance_ms <= 30000, "max_utterance_ms", "must be 1000..30000 ms")
    _check(1024 <= c.rtp_port_min <= c.rtp_port_max <= 65535, "rtp_port_min",
           "need 1024 <= rtp_port_min <= rtp_port_max <= 65535")
    _check(1 <= c.max_calls <= 1000, "max_calls", "must be 1..1000")
    _check(c.rtp_port_max - c.rtp_port_min + 1 >= c.max_calls, "rtp_port_max",
           "the port range must hold max_calls ports")
    _check(1 <= c.workers <= 64, "workers", "must be 1..64")
    _check(0 <= c.prewarm <= 64, "prewarm", "must be 0..64")
    _check(10 <= c.max_call_s <= 3600, "max_call_s", "must be 10..3600 seconds")
    _check(0 <= c.priority_boost <= 100, "priority_boost", "must be 0..100")
    for key in ("sounds_dir", "recordings_dir"):
        path = getattr(c, key)
        _check(".." not in path.split("/") and "\n" not in path, key,
               "a directory path without ..")
    _check(1 <= c.comment_max_s <= 300, "comment_max_s", "must be 1..300 seconds")
    _check(300 <= c.comment_pause_ms <= 5000, "comment_pause_ms", "must be 300..5000 ms")
