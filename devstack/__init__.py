"""The one-machine stack for dev runs and tests: server starters the running app never imports."""
