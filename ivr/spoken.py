"""Texts said once per call (a campaign's «врач Иванова … в четверг, третьего декабря в девять
часов тридцать минут»): synthesised locally on first use, kept as sound files Asterisk plays.

``SpokenTexts.media(text, lang)`` → ``sound:<prefix>/spoken/<digest>``: the file
``<sounds_dir>/<lang>/<prefix>/spoken/<digest>.wav`` is made with ``ivr.prompt_sounds.synthesize``
(espeak-ng + sox, in a thread; the same tools and format as the bot's fixed prompts) unless it
exists. The digest covers the language and the text, so a text is synthesised once and then
reused by every call that says it (the campaign's questions and goodbyes), while a patient's own
sentence (doctor, date, time) is made at the answer. Dates and times arrive already in words
(``campaigns.speech``). Synthesis failing (tool missing, directory not writable) is one WARNING
per text and ``""`` (the session skips that prompt). The text goes to espeak-ng as one argument
after ``--``: no shell, no option injection. Files are never deleted here (``spoken/`` can be
emptied at any time; texts are re-made on demand).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

from callserver.asterisk.ari_rest import clean
from ivr.errors import PromptBuildError
from ivr.prompt_sounds import prompt_path, synthesize

log = logging.getLogger(__name__)
SUBDIR = "spoken"
MAX_TEXT = 1000


class SpokenTexts:
    """The resolver ``BotSession`` plays campaign texts with (see the module doc)."""

    def __init__(self, sounds_dir: str, prefix: str = "callserver") -> None:
        self._sounds = Path(sounds_dir) if sounds_dir else None
        self._prefix = prefix
        self._making: dict[Path, asyncio.Task[bool]] = {}
        self.made = self.failed = 0

    def path(self, text: str, lang: str) -> tuple[Path | None, str]:
        """Where ``text`` in ``lang`` is kept and its prompt id (``spoken/<digest>``)."""
        digest = hashlib.sha256(f"{lang}\n{text}".encode()).hexdigest()[:32]
        prompt = f"{SUBDIR}/{digest}"
        if self._sounds is None:
            return None, prompt
        return prompt_path(self._sounds, lang, self._prefix, prompt), prompt

    async def media(self, text: str, lang: str) -> str:
        """The ARI media URI saying ``text`` (``""`` when it cannot be made)."""
        text = " ".join(text.split())[:MAX_TEXT]
        lang = "en" if lang == "en" else "ru"
        path, prompt = self.path(text, lang)
        if path is None or not text:
            return ""
        if not path.exists():
            task = self._making.get(path)
            if task is None:
                task = asyncio.create_task(self._make(text, lang, path), name="ivr-synthesis")
                self._making[path] = task
                task.add_done_callback(lambda _t: self._making.pop(path, None))
            if not await asyncio.shield(task):
                return ""
        return f"sound:{self._prefix}/{prompt}"

    async def _make(self, text: str, lang: str, path: Path) -> bool:
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.wav")
        try:
            await asyncio.to_thread(synthesize, text, lang, tmp)
            await asyncio.to_thread(os.replace, tmp, path)  # readers never see half a file
        except (PromptBuildError, OSError) as exc:
            self.failed += 1
            log.warning("ivr: text not synthesised (%s): %s", lang, clean(str(exc))[:200])
            return False
        self.made += 1
        return True
