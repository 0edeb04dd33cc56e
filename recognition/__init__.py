"""Local speech recognition for the voice bot (see README.md).

Entry points for the ARI session:

* start-up: ``workers.start_pool(RecognitionConfig.from_mapping(section))`` → a pool, or
  ``BackendUnavailable`` (keypad-only bot);
* per call: ``AsyncListener(await pool.open_stream(), in_rate=audio.CODEC_RATES[codec], lang=…)``,
  ``listener.start()``, ``listener.listen(state)``;
* per RTP datagram: ``rtp.parse_rtp`` → ``JitterBuffer.push`` → ``audio.decode`` →
  ``listener.feed`` (returns ``SpeechStarted`` for barge-in); finals from
  ``await listener.next_result()``.
"""
