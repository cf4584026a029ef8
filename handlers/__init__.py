"""What the bot does, free of any transport: routes, handlers and Chinese text understanding."""
