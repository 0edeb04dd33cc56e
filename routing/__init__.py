"""routing: where each inbound call goes (FastAGI ``route`` and the ARI line), and the call
tracking record of every decision. See routing/README.md."""
