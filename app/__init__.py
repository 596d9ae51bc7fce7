"""The web layer of Chi bộ trực tuyến: settings, auth, routes and the CLI."""
