"""The runtime: config, composition root, dispatch, transports, outbox, scheduler and CLI."""
