"""Build the bot's prompt set with espeak-ng and sox — at install or test time, never at run time.

Layout is Asterisk's: ``<sounds>/<lang>/<prefix>/<prompt_id>.wav`` (8 kHz mono 16-bit), so the
session's ``sound:<prefix>/<prompt_id>`` with ``lang=ru|en`` finds it. A clinic may replace any
file with a studio recording of the same name; ``build`` leaves files it did not make alone
unless ``overwrite``. Usage::

    python -m ivr.prompt_sounds /var/lib/asterisk/sounds            # prefix "callserver"
    python -m ivr.prompt_sounds /tmp/sounds --prefix callserver --lang en
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ivr.errors import PromptBuildError
from ivr.prompts import PROMPTS

VOICES = {"ru": "ru", "en": "en-us"}
TIMEOUT_S = 30.0


def prompt_path(sounds: Path, lang: str, prefix: str, prompt_id: str) -> Path:
    """Where Asterisk looks for ``sound:<prefix>/<prompt_id>`` in ``lang``."""
    return sounds / lang / prefix / f"{prompt_id}.wav"


def synthesize(text: str, lang: str, out: Path, *, speed: int = 165) -> None:
    """espeak-ng → sox (8 kHz mono 16-bit WAV at ``out``). Raises ``PromptBuildError`` when a
    tool is missing or fails (``TIMEOUT_S`` each)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise PromptBuildError(message=f"{tool} is not installed", prompt=out.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "p.wav"
        try:
            subprocess.run(["espeak-ng", "-v", VOICES[lang], "-s", str(speed), "-w", str(raw),
                            "--", text], check=True, capture_output=True, timeout=TIMEOUT_S)
            subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out),
                            "norm", "-3"], check=True, capture_output=True, timeout=TIMEOUT_S)
        except (subprocess.SubprocessError, OSError) as exc:
            raise PromptBuildError(message=f"prompt {out.stem}: {exc}"[:300],
                                   prompt=out.stem) from exc


def build(sounds: Path, *, prefix: str = "callserver", langs: Iterable[str] = ("ru", "en"),
          overwrite: bool = False) -> list[Path]:
    """Synthesise every prompt of ``ivr.prompts`` in ``langs``; returns the files written."""
    written = []
    for lang in langs:
        for prompt_id, texts in PROMPTS.items():
            out = prompt_path(sounds, lang, prefix, prompt_id)
            if out.exists() and not overwrite:
                continue
            synthesize(texts[lang], lang, out)
            written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="build the voice bot's prompts (espeak-ng + sox)")
    ap.add_argument("sounds", type=Path, help="Asterisk sounds directory")
    ap.add_argument("--prefix", default="callserver")
    ap.add_argument("--lang", action="append", choices=("ru", "en"))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    made = build(args.sounds, prefix=args.prefix, langs=args.lang or ("ru", "en"),
                 overwrite=args.overwrite)
    print(f"prompt_sounds: {len(made)} files written under {args.sounds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
