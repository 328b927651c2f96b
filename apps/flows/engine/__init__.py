"""The flow engine: plain Python, no ORM and no request. I/O goes through the adapters in
RunContext (an HTTP client and a script sandbox), so a run is fast and testable alone."""
